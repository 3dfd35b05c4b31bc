"""`effortpulse demo` (`make demo`): the main job, live, in a world of its own.

One run = one isolated world on the configured Kafka and Redis: app id `demo-<8 hex>`, topics
`demo.<8 hex>.events|.alerts|.dlq|.undelivered` and a free web port, so it never reads or
touches anybody else's data. In it:

1. `effortpulse worker` runs as a child process (its log goes to a temporary file whose path
   is printed); the demo waits until /health answers 200 and the consumer has its partitions
   ("Worker ready" in the log).
2. `effortpulse simulate` runs as a second child: a seeded contact centre of --customers
   customers at --rate events per second, event time advancing --speedup simulated seconds a
   wall second, starting (--start) so that a timed run's contact-centre clock ends about now.
3. The view: on a terminal a rich Live view refreshed twice a second; otherwise a plain-text
   snapshot every 10 s. Its figures come from the worker's HTTP API (/metrics, /nps, /ces,
   /csat, /cases/open) and from the demo's alerts topic, read by a background consumer.
   Scores are taken over the 7 days up to the contact centre's clock (the newest event time
   seen), not the wall clock: the simulated events are hours and days apart.
4. The end: --duration seconds after the view went live, or at Ctrl-C / SIGTERM. The simulator
   and then the worker get SIGTERM (SIGKILL after a grace period; a second Ctrl-C hurries it),
   the demo waits for the worker to catch up with what was sent, prints a plain-text summary,
   and deletes the world's Redis keys (SCAN MATCH "<app id>:*"), topics and consumer group,
   unless --keep. The children also get SIGTERM if the demo itself dies (PR_SET_PDEATHSIG).

The summary's score lines have a fixed format that tests parse:
    `  channel:phone     NPS  +12.3  [ -1.5, +25.0]  n=118`
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import math
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import IO, Any

from schemas.events import CONTACT_CHANNELS as CHANNELS
from streams.settings import Settings
from streams.simulate import TEAMS as SIMULATED_TEAMS

TEAMS = tuple(SIMULATED_TEAMS)  # the simulator's teams
ALERT_TYPES = ("effort.high", "nps.detractor", "churn.risk", "nps.drop")
WINDOW = "7d"
# effortpulse_case_effort_points is a Prometheus histogram (cumulative `le` buckets every 10
# points), so the bins are (lo, hi] ranges: 0–20 holds 0 and everything up to 20 inclusive
EFFORT_BINS = ((None, 20.0, "0–20"), (20.0, 40.0, "21–40"), (40.0, 60.0, "41–60"), (60.0, 80.0, "61–80"),
               (80.0, None, "81–100"))  # fmt: skip

READY_TIMEOUT_S = 120
STOP_GRACE_S = 40  # SIGTERM → SIGKILL; the worker finishes the batch in hand first (up to 30 s)
CATCH_UP_S = 15  # at the end, how long to wait for the worker to process what was sent
PLAIN_EVERY_S = 10.0
SIM_WARMUP_S = 2.0  # the simulator's start-up (imports, building its stream, topics) before it sends
REFRESH_S = 0.5
SCORES_EVERY_S = 2.0  # /nps /ces /csat: 16 requests a round
WIDE = 150  # terminal columns for the two-column view


@dataclass(frozen=True)
class DemoOptions:
    duration: float | None = None
    keep: bool = False
    customers: int = 4000
    rate: float = 400.0
    speedup: float = 3600.0
    seed: int = 42


# --- the world ---------------------------------------------------------------------------------


@dataclass
class World:
    """One demo's own app id, topics, port and files."""

    short: str
    app_id: str
    topics: dict[str, str]
    port: int
    workdir: Path
    env: dict[str, str]

    @classmethod
    def create(cls, settings: Settings) -> World:
        short = secrets.token_hex(4)
        app_id = f"demo-{short}"
        topics = {kind: f"demo.{short}.{kind}" for kind in ("events", "alerts", "dlq", "undelivered")}
        port = _free_port()
        workdir = Path(tempfile.mkdtemp(prefix=f"effortpulse-{app_id}-"))
        env = {k: v for k, v in os.environ.items() if k != "EFFORTPULSE_API_TOKEN"}  # the demo's own API is open
        env |= {
            "EFFORTPULSE_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "EFFORTPULSE_REDIS_URL": settings.redis_url,
            "EFFORTPULSE_APP_ID": app_id,
            "EFFORTPULSE_EVENTS_TOPIC": topics["events"],
            "EFFORTPULSE_ALERTS_TOPIC": topics["alerts"],
            "EFFORTPULSE_DLQ_TOPIC": topics["dlq"],
            "EFFORTPULSE_UNDELIVERED_TOPIC": topics["undelivered"],
            "EFFORTPULSE_WEB_PORT": str(port),
            "EFFORTPULSE_WEB_HOST": "127.0.0.1",
            "PYTHONUNBUFFERED": "1",
        }
        return cls(short, app_id, topics, port, workdir, env)

    @property
    def worker_log(self) -> Path:
        return self.workdir / "worker.log"

    @property
    def simulator_log(self) -> Path:
        return self.workdir / "simulate.log"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def exports(self) -> str:
        names = ("APP_ID", "EVENTS_TOPIC", "ALERTS_TOPIC", "DLQ_TOPIC", "UNDELIVERED_TOPIC")
        return "export " + " ".join(f"EFFORTPULSE_{n}={self.env['EFFORTPULSE_' + n]}" for n in names)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _command() -> list[str]:
    """How to run `effortpulse`: the console script beside this Python, else `python -m`."""
    script = Path(sys.executable).with_name("effortpulse")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "streams.cli"]


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Child:
    """A child process in its own session (so a terminal's Ctrl-C reaches only the demo, which
    then stops it in order), its output in a log file."""

    def __init__(self, name: str, args: list[str], world: World, log: Path) -> None:
        self.name = name
        self.log = log
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                args,
                cwd=world.workdir,  # faust's data directory lands there, not in the user's tree
                env=world.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def running(self) -> bool:
        return self.proc.poll() is None

    def stop(self, grace: float = STOP_GRACE_S) -> int | None:
        """SIGTERM to its process group, SIGKILL after `grace` seconds; returns the exit code."""
        if self.running():
            self._signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(10)
        return self.proc.returncode

    def _signal(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)

    def tail(self, n: int = 25) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


# --- reading the worker ------------------------------------------------------------------------


def _get(url: str, timeout: float = 3.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _get_json(url: str) -> Any:
    status, body = _get(url)
    if status != 200:
        raise OSError(f"{url}: HTTP {status}: {body[:200]!r}")
    return json.loads(body)


@dataclass
class Metrics:
    processed: float = 0.0
    invalid: float = 0.0
    duplicates: float = 0.0
    lag: float | None = None  # effortpulse_consumer_lag_records, summed; None when not exported
    effort_le: dict[float, float] = field(default_factory=dict)  # cumulative histogram buckets

    @classmethod
    def parse(cls, text: str) -> Metrics:
        from prometheus_client.parser import text_string_to_metric_families

        m = cls()
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name == "effortpulse_events_processed_total":
                    m.processed += s.value
                elif s.name == "effortpulse_events_invalid_total":
                    m.invalid += s.value
                elif s.name == "effortpulse_events_duplicate_total":
                    m.duplicates += s.value
                elif s.name == "effortpulse_consumer_lag_records" and not math.isnan(s.value):
                    m.lag = (m.lag or 0.0) + s.value
                elif s.name == "effortpulse_case_effort_points_bucket":
                    m.effort_le[float(s.labels["le"])] = s.value
        return m

    def effort_bins(self) -> list[tuple[str, int]]:
        """Counts per EFFORT_BINS range from the cumulative buckets."""

        def upto(le: float | None) -> float:
            if le is None:
                return 0.0
            return self.effort_le.get(le, 0.0)

        total = self.effort_le.get(math.inf, 0.0)
        out = []
        for lo, hi, label in EFFORT_BINS:
            top = total if hi is None else upto(hi)
            out.append((label, int(top - upto(lo))))
        return out


@dataclass
class Scores:
    at: str
    nps: dict[str, dict[str, Any]]  # segment → the /nps answer
    ces: dict[str, Any] | None
    csat: dict[str, Any] | None


@dataclass
class Snapshot:
    taken: float  # monotonic
    metrics: Metrics
    events_per_s: float
    open_cases: list[dict[str, Any]]
    scores: Scores | None
    error: str | None = None


class Poller(threading.Thread):
    """Reads the worker's API in the background: /metrics and /cases/open every REFRESH_S,
    the scores every SCORES_EVERY_S; the view renders the latest Snapshot."""

    def __init__(self, world: World, clock: Callable[[], str]) -> None:
        super().__init__(name="demo-poller", daemon=True)
        self.world = world
        self.clock = clock
        self.snapshot: Snapshot | None = None
        self._halt = threading.Event()
        self._samples: deque[tuple[float, float]] = deque()
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="demo-http")
        self._scores: Scores | None = None
        self._last_scores = 0.0

    def stop(self) -> None:
        """Stop polling in the background (poll() and fetch_scores() still work)."""
        self._halt.set()
        self.join(5)

    def close(self) -> None:
        self.stop()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def run(self) -> None:
        while not self._halt.is_set():
            started = time.monotonic()
            with contextlib.suppress(Exception):
                self.poll(scores=started - self._last_scores >= SCORES_EVERY_S)
            self._halt.wait(max(0.05, REFRESH_S - (time.monotonic() - started)))

    def poll(self, scores: bool = True) -> Snapshot:
        base = self.world.base_url
        error = None
        try:
            _, body = _get(f"{base}/metrics")
            metrics = Metrics.parse(body.decode())
            rows = _get_json(f"{base}/cases/open?limit=6").get("cases", [])
            # the index and the states are read one after the other: a case resolved in between shows up
            cases = [c for c in rows if c.get("status", "open") == "open"][:5]
        except (OSError, ValueError) as exc:
            previous = self.snapshot
            metrics = previous.metrics if previous else Metrics()
            cases = previous.open_cases if previous else []
            error = f"worker API: {exc}"
        now = time.monotonic()
        if error is None:
            self._samples.append((now, metrics.processed))
            while len(self._samples) > 2 and now - self._samples[0][0] > 3.0:
                self._samples.popleft()
        if scores:
            try:
                self._scores = self.fetch_scores(self.clock())
                self._last_scores = now
            except (OSError, ValueError) as exc:
                error = f"worker API: {exc}"
        snap = Snapshot(now, metrics, self._rate(), cases, self._scores, error)
        self.snapshot = snap
        return snap

    def _rate(self) -> float:
        if len(self._samples) < 2:
            return 0.0
        (t0, n0), (t1, n1) = self._samples[0], self._samples[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0

    def fetch_scores(self, at: str) -> Scores:
        base = self.world.base_url
        q = f"window={WINDOW}&at={urllib.parse.quote(at)}"
        segments = ["all", *(f"channel:{c}" for c in CHANNELS), *(f"team:{t}" for t in TEAMS)]
        urls = {("nps", s): f"{base}/nps?segment={urllib.parse.quote(s)}&{q}" for s in segments}
        urls[("ces", "all")] = f"{base}/ces?segment=all&{q}"
        urls[("csat", "all")] = f"{base}/csat?segment=all&{q}"
        futures = {k: self._pool.submit(_get_json, u) for k, u in urls.items()}
        got = {k: f.result(timeout=10) for k, f in futures.items()}
        nps = {s: got[("nps", s)] for s in segments}
        return Scores(at, nps, got[("ces", "all")], got[("csat", "all")])


class AlertFeed(threading.Thread):
    """Reads the demo's alerts topic from its beginning (kafka-python, no consumer group):
    counts by type and severity, the latest few, the churn alerts, the newest event time."""

    def __init__(self, settings: Settings, world: World) -> None:
        super().__init__(name="demo-alerts", daemon=True)
        self.bootstrap = settings.kafka_bootstrap
        self.topic = world.topics["alerts"]
        self.client_id = f"{world.app_id}-view"
        self.lock = threading.Lock()
        self.counts: Counter[tuple[str, str]] = Counter()
        self.latest: deque[dict[str, Any]] = deque(maxlen=8)
        self.churn_latest: dict[str, Any] | None = None
        self.newest_at: datetime | None = None
        self.error: str | None = None
        self._halt = threading.Event()
        self._drain = threading.Event()
        self.drained = threading.Event()

    def run(self) -> None:
        from kafka import KafkaConsumer, TopicPartition

        try:
            consumer = KafkaConsumer(
                bootstrap_servers=self.bootstrap,
                client_id=self.client_id,
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
            )
        except Exception as exc:
            self.error = f"alerts: {exc}"
            self.drained.set()
            return
        try:
            partitions: set[int] = set()
            while not partitions and not self._halt.is_set():
                partitions = consumer.partitions_for_topic(self.topic) or set()
                if not partitions:
                    self._halt.wait(0.5)
            tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
            consumer.assign(tps)
            consumer.seek_to_beginning(*tps)
            ends: dict[Any, int] | None = None
            deadline = 0.0
            while not self._halt.is_set():
                for records in consumer.poll(timeout_ms=200).values():
                    for m in records:
                        self._add(m.value)
                if self._drain.is_set():
                    if ends is None:
                        ends = consumer.end_offsets(tps)
                        deadline = time.monotonic() + 10
                    if all(consumer.position(tp) >= ends[tp] for tp in tps) or time.monotonic() > deadline:
                        break
        except Exception as exc:
            self.error = f"alerts: {exc}"
        finally:
            self.drained.set()
            with contextlib.suppress(Exception):
                consumer.close()

    def drain(self, timeout: float = 15) -> None:
        """Read to the topic's current end, then stop."""
        self._drain.set()
        self.drained.wait(timeout)
        self._halt.set()
        self.join(5)

    def stop(self) -> None:
        self._halt.set()
        self.join(5)

    def _add(self, raw: bytes | None) -> None:
        try:
            alert = json.loads(raw or b"")
            kind, severity = alert["type"], alert["severity"]
        except (ValueError, KeyError, TypeError):
            return
        at = _parse_time(alert.get("occurred_at"))
        with self.lock:
            self.counts[(kind, severity)] += 1
            self.latest.append(alert)
            if kind == "churn.risk":
                self.churn_latest = alert
            if at is not None and (self.newest_at is None or at > self.newest_at):
                self.newest_at = at

    def view(self) -> tuple[Counter[tuple[str, str]], list[dict[str, Any]], dict[str, Any] | None]:
        with self.lock:
            return Counter(self.counts), list(self.latest), self.churn_latest


def _parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


_PROGRESS = re.compile(r"^simulate: (\d+)/(\d+) events sent .* event time (\S+)$")
_FINAL = re.compile(r"^sent to \S+ in ([\d.]+) s \(\d+/s\): (\d+) events, .*?(?:, (\S+) → (\S+))?$")


@dataclass
class SimProgress:
    sent: int = 0
    total: int | None = None
    newest: datetime | None = None
    finished: bool = False

    @classmethod
    def read(cls, log: Path) -> SimProgress:
        p = cls()
        try:
            lines = log.read_text(errors="replace").splitlines()
        except OSError:
            return p
        for line in lines:
            if m := _PROGRESS.match(line):
                p.sent, p.total, p.newest = int(m[1]), int(m[2]), _parse_time(m[3])
            elif m := _FINAL.match(line):
                p.sent, p.finished = int(m[2]), True
                if m[4]:
                    p.newest = _parse_time(m[4])
        return p


# --- rendering -----------------------------------------------------------------------------------


def _reason_text(alert: dict[str, Any]) -> str:
    reasons = alert.get("reasons") or []
    if not reasons:
        return ""
    top = reasons[0]
    return str(top.get("detail") or top.get("driver") or "")


def _who(alert: dict[str, Any]) -> str:
    return str(alert.get("customer_id") or alert.get("segment") or "")


def _score_text(alert: dict[str, Any]) -> str:
    score = alert.get("score")
    if not isinstance(score, int | float):
        return ""
    return f"{score:.2f}" if alert.get("type") == "churn.risk" else f"{score:g}"


def _nps_rows(scores: Scores | None) -> list[tuple[str, dict[str, Any]]]:
    """Segments with answers, `all` first, then channels and teams by n."""
    if scores is None:
        return []
    rows = [(s, d) for s, d in scores.nps.items() if d.get("n") and d.get("nps") is not None]
    return sorted(rows, key=lambda r: (r[0] != "all", r[0].split(":")[0] != "channel", -r[1]["n"], r[0]))


def nps_line(segment: str, d: dict[str, Any]) -> str:
    """`  channel:phone     NPS  +12.3  [ -1.5, +25.0]  n=118` — the format tests parse."""
    return f"  {segment:<17} NPS {d['nps']:+6.1f}  [{d['ci_low']:+6.1f}, {d['ci_high']:+6.1f}]  n={d['n']}"


def mean_line(name: str, d: dict[str, Any] | None, top: str) -> str:
    if not d or not d.get("n") or d.get("mean") is None:
        return f"{name} (all, {WINDOW}): no answers"
    return f"{name} (all, {WINDOW}): mean {d['mean']:.2f}, share {top} {100 * d['share']:.1f}%, n={d['n']}"


def _bar(count: int, most: int, width: int) -> str:
    if most <= 0 or count <= 0:
        return ""
    return "█" * max(1, round(width * count / most))


def _interval_bar(low: float, high: float, point: float, width: int = 21) -> str:
    """The −100..100 scale with the interval as ━ and the NPS as ●."""

    def pos(x: float) -> int:
        return max(0, min(width - 1, round((x + 100) / 200 * (width - 1))))

    cells = ["·"] * width
    cells[pos(0)] = "┊"
    for i in range(pos(low), pos(high) + 1):
        cells[i] = "━"
    cells[pos(point)] = "●"
    return "".join(cells)


@dataclass
class ViewState:
    """Everything one frame shows."""

    world: World
    options: DemoOptions
    live_for: float
    snapshot: Snapshot | None
    counts: Counter[tuple[str, str]]
    latest: list[dict[str, Any]]
    churn_latest: dict[str, Any] | None
    clock: str | None
    sim: SimProgress
    note: str | None = None


def _alert_totals(counts: Counter[tuple[str, str]]) -> list[tuple[str, int, int]]:
    kinds = list(ALERT_TYPES) + sorted({k for k, _ in counts} - set(ALERT_TYPES))
    return [(k, counts[(k, "warning")], counts[(k, "critical")]) for k in kinds]


def _mmss(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 60:02d}:{s % 60:02d}"


def plain_snapshot(v: ViewState) -> str:
    """The text a non-terminal gets every PLAIN_EVERY_S seconds."""
    snap = v.snapshot
    m = snap.metrics if snap else Metrics()
    lag = "" if m.lag is None else f"  lag {int(m.lag)}"
    out = [
        f"--- {v.world.app_id}  live {_mmss(v.live_for)}  {snap.events_per_s if snap else 0:.0f} events/s  "
        f"{int(m.processed)} events  DLQ {int(m.invalid)}{lag}  contact-centre time {v.clock or '-'}  "
        f"simulator {v.sim.sent}/{v.sim.total or '?'} sent"
    ]
    totals = ", ".join(f"{k} {w + c} ({w} warning, {c} critical)" for k, w, c in _alert_totals(v.counts))
    out.append(f"alerts: {totals}")
    for a in reversed(v.latest[-5:]):
        out.append(f"  {a.get('severity', ''):<8} {a.get('type', ''):<13} {_who(a):<12} {_score_text(a):>6}  "
                   f"{_reason_text(a)}")  # fmt: skip
    rows = _nps_rows(snap.scores if snap else None)
    if rows:
        out.append(f"NPS over {WINDOW} up to {snap.scores.at if snap and snap.scores else '-'}:")
        out += [nps_line(s, d) for s, d in rows]
    if snap and snap.scores:
        out.append(mean_line("CES", snap.scores.ces, "5–7"))
    bins = m.effort_bins()
    most = max((n for _, n in bins), default=0)
    out.append("effort of updated cases: " + "  ".join(f"{label} {n}" for label, n in bins))
    out += [f"  {label:>6} {_bar(n, most, 40)} {n}" for label, n in bins]
    if snap and snap.open_cases:
        out.append("open cases with the highest effort:")
        out += [
            f"  {c['effort']:>5g}  {c['customer_id']}  {c['case_id']}  {c.get('summary', '')}" for c in snap.open_cases
        ]
    churn = sum(n for (k, _), n in v.counts.items() if k == "churn.risk")
    out.append(f"churn.risk alerts: {churn}" + (f"; latest: {_churn_text(v.churn_latest)}" if v.churn_latest else ""))
    if snap and snap.error:
        out.append(f"(!) {snap.error}")
    return "\n".join(out)


def _churn_text(alert: dict[str, Any]) -> str:
    reasons = [r for r in alert.get("reasons") or [] if r.get("detail")]
    why = "; ".join(str(r["detail"]) for r in reasons[:3])
    return f"{alert.get('customer_id')} ({alert.get('severity')}, risk {_score_text(alert)}): {why}"


def rich_view(v: ViewState, width: int = 160) -> Any:
    """The Live view: header, alert feed, scores, effort bars, open cases, churn; in two columns
    on a terminal at least WIDE columns wide, else stacked."""
    from rich import box
    from rich.console import Group
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    snap = v.snapshot
    m = snap.metrics if snap else Metrics()
    sev_style = {"critical": "bold red", "warning": "yellow"}

    header = Text()
    header.append(f"{snap.events_per_s if snap else 0:,.0f}", "bold green")
    header.append(" events/s   ")
    header.append(f"{int(m.processed):,}", "bold")
    header.append(" events   DLQ ")
    header.append(f"{int(m.invalid):,}", "bold red" if m.invalid else "bold")
    if m.lag is not None:
        header.append(f"   lag {int(m.lag):,}", "bold red" if m.lag > 2 * v.options.rate else "")
    header.append(f"   live {_mmss(v.live_for)}")
    if v.options.duration:
        header.append(f" of {_mmss(v.options.duration)}")
    header.append(f"   contact-centre time {v.clock or '-'}", "cyan")
    sim = "finished" if v.sim.finished else f"{v.sim.sent:,}/{v.sim.total or 0:,} events sent"
    header.append(f"   simulator: {sim}", "dim")
    if snap and snap.error:
        header.append(f"\n{snap.error}", "red")
    if v.note:
        header.append(f"\n{v.note}", "yellow")
    top = Panel(header, title=f"effortpulse demo · {v.world.app_id}", subtitle="Ctrl-C stops", box=box.ROUNDED)

    feed = Table(box=box.SIMPLE_HEAD, expand=True, pad_edge=False)
    for col, kw in (("type", {}), ("severity", {}), ("customer", {}), ("score", {"justify": "right"}),
                    ("top reason", {"ratio": 1, "overflow": "ellipsis", "no_wrap": True})):  # fmt: skip
        feed.add_column(col, **kw)
    for a in reversed(v.latest):
        sev = str(a.get("severity", ""))
        feed.add_row(str(a.get("type", "")), Text(sev, sev_style.get(sev, "")), _who(a), _score_text(a),
                     _reason_text(a))  # fmt: skip
    totals = "  ".join(f"{k} {w + c}" for k, w, c in _alert_totals(v.counts) if w + c)
    alerts = Panel(feed, title="alerts (latest 8)", subtitle=totals or None, box=box.ROUNDED)

    nps = Table(box=box.SIMPLE_HEAD, expand=True, pad_edge=False)
    nps.add_column("segment", no_wrap=True, min_width=17)
    nps.add_column("n", justify="right", no_wrap=True, min_width=4)
    nps.add_column("NPS", justify="right", no_wrap=True, min_width=6)
    nps.add_column("95% interval", justify="right", no_wrap=True, min_width=15)
    nps.add_column("−100 ┊ +100", no_wrap=True, overflow="crop", ratio=1)
    for seg, d in _nps_rows(snap.scores if snap else None):
        style = "red" if d["nps"] < 0 else "green"
        nps.add_row(seg, str(d["n"]), Text(f"{d['nps']:+.1f}", style), f"[{d['ci_low']:+.1f}, {d['ci_high']:+.1f}]",
                    _interval_bar(d["ci_low"], d["ci_high"], d["nps"]))  # fmt: skip
    if not nps.rows:
        nps.caption = "no answers yet"
    ces_text = mean_line("CES", snap.scores.ces if snap and snap.scores else None, "5–7")
    scores = Panel(Group(nps, Text(ces_text, "dim")), title=f"NPS over {WINDOW}", box=box.ROUNDED)

    bins = m.effort_bins()
    most = max((n for _, n in bins), default=0)
    hist = Table.grid(padding=(0, 1))
    hist.add_column(justify="right")
    hist.add_column()
    hist.add_column(justify="right")
    colours = ("green", "green", "yellow", "dark_orange", "red")
    for (label, n), colour in zip(bins, colours, strict=True):
        hist.add_row(label, Text(_bar(n, most, 24), colour), f"{n:,}")
    effort = Panel(hist, title="effort of updated cases", box=box.ROUNDED)

    cases = Table(box=box.SIMPLE_HEAD, expand=True, pad_edge=False)
    cases.add_column("effort", justify="right")
    cases.add_column("customer")
    cases.add_column("case")
    cases.add_column("summary", ratio=1, overflow="ellipsis", no_wrap=True)
    for c in snap.open_cases if snap else []:
        cases.add_row(Text(f"{c['effort']:g}", "bold red" if c["effort"] >= 80 else "yellow"), c["customer_id"],
                      c["case_id"], str(c.get("summary", "")))  # fmt: skip
    open_cases = Panel(cases, title="open cases with the highest effort", box=box.ROUNDED)

    churn_n = sum(n for (k, _), n in v.counts.items() if k == "churn.risk")
    churn_text = Text()
    churn_text.append(f"{churn_n}", "bold")
    churn_text.append(" churn.risk alerts")
    if v.churn_latest:
        churn_text.append(f"\nlatest: {v.churn_latest.get('customer_id')} ")
        sev = str(v.churn_latest.get("severity"))
        churn_text.append(sev, sev_style.get(sev, ""))
        churn_text.append(f", risk {_score_text(v.churn_latest)}")
        for r in (v.churn_latest.get("reasons") or [])[:3]:
            if r.get("detail"):
                churn_text.append(f"\n  · {r['detail']}", "dim")
    churn = Panel(churn_text, title="churn", box=box.ROUNDED)

    if width < WIDE:
        return Group(top, alerts, scores, open_cases, effort, churn)
    grid = Table.grid(expand=True)
    grid.add_column(ratio=1)
    grid.add_column(ratio=1)
    grid.add_row(alerts, scores)
    grid.add_row(open_cases, Group(effort, churn))
    return Group(top, grid)


# --- the summary ---------------------------------------------------------------------------------


@dataclass
class Outcome:
    live_for: float
    ready_after: float
    snapshot: Snapshot | None
    counts: Counter[tuple[str, str]]
    churn_latest: dict[str, Any] | None
    sim: SimProgress


def summary_text(world: World, o: Outcome) -> str:
    """The plain-text summary printed at the end (format parsed by tests/integration/test_demo.py)."""
    snap = o.snapshot
    m = snap.metrics if snap else Metrics()
    avg = m.processed / o.live_for if o.live_for > 0 else 0.0
    behind = o.sim.sent - int(m.processed + m.invalid + m.duplicates)
    out = [
        f"=== effortpulse demo summary ({world.app_id}) ===",
        f"live for {o.live_for:.1f} s (ready after {o.ready_after:.1f} s)",
        f"events processed: {int(m.processed)} ({avg:.1f}/s average); invalid (DLQ): {int(m.invalid)}; "
        f"simulator sent: {o.sim.sent}" + (f" ({behind} not processed yet when it stopped)" if behind > 0 else ""),
        f"alerts: {sum(o.counts.values())}",
    ]
    out += [f"  {k:<15} total {w + c} (warning {w}, critical {c})" for k, w, c in _alert_totals(o.counts)]
    scores = snap.scores if snap else None
    rows = _nps_rows(scores)
    if scores and rows:
        out.append(f"NPS over {WINDOW} up to {scores.at}, 95% interval (adjusted Wald):")
        out += [nps_line(s, d) for s, d in rows]
    else:
        out.append(f"NPS over {WINDOW}: no answers")
    out.append(mean_line("CES", scores.ces if scores else None, "5–7"))
    out.append(mean_line("CSAT", scores.csat if scores else None, "4–5"))
    out.append("effort of updated cases: " + ", ".join(f"{label}: {n}" for label, n in m.effort_bins()))
    cases = (snap.open_cases if snap else [])[:3]
    out.append("top open cases by effort:" if cases else "top open cases by effort: none")
    for i, c in enumerate(cases, 1):
        out.append(f"  {i}. effort {c['effort']:g}  {c['customer_id']} / {c['case_id']}: {c.get('summary', '')}")
    churn = sum(n for (k, _), n in o.counts.items() if k == "churn.risk")
    out.append(f"churn.risk alerts: {churn}")
    if o.churn_latest:
        out.append(f"  latest: {_churn_text(o.churn_latest)}")
    return "\n".join(out)


# --- clean-up ---------------------------------------------------------------------------------------


def cleanup(settings: Settings, world: World) -> tuple[int, list[str], list[str]]:
    """Delete the world's Redis keys, topics and consumer group. Returns (keys deleted, topics
    deleted, problems)."""
    import redis
    from kafka import KafkaAdminClient

    problems: list[str] = []
    deleted_keys = 0
    try:
        client = redis.Redis.from_url(settings.redis_url, socket_timeout=10)
        try:
            batch: list[bytes] = []
            for key in client.scan_iter(match=f"{world.app_id}:*", count=1000):
                batch.append(key)
                if len(batch) >= 500:
                    deleted_keys += int(client.delete(*batch))
                    batch = []
            if batch:
                deleted_keys += int(client.delete(*batch))
        finally:
            client.close()
    except Exception as exc:
        problems.append(f"Redis keys {world.app_id}:*: {exc}")
    deleted_topics: list[str] = []
    try:
        admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, client_id=f"{world.app_id}-cleanup")
        try:
            present = [t for t in world.topics.values() if t in set(admin.list_topics())]
            if present:
                admin.delete_topics(present, timeout_ms=30_000)
                deleted_topics = present
            delete_groups = getattr(admin, "delete_groups", None) or admin.delete_consumer_groups  # kafka-python 3 / 2
            with contextlib.suppress(Exception):  # none when the worker never committed; Kafka also drops an
                delete_groups([world.app_id])  # empty group once its topics are gone
        finally:
            admin.close()
    except Exception as exc:
        problems.append(f"topics {', '.join(world.topics.values())}: {exc}")
    return deleted_keys, deleted_topics, problems


# --- the run -----------------------------------------------------------------------------------------


class _Signals:
    """SIGINT and SIGTERM set `stop` (a second one sets `hurry`) instead of raising."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.hurry = threading.Event()
        self.received: str | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.stop.is_set():
            self.hurry.set()
        self.received = self.received or signal.Signals(signum).name
        self.stop.set()

    @contextlib.contextmanager
    def installed(self) -> Iterator[_Signals]:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        try:
            yield self
        finally:
            for sig, handler in self._previous.items():
                signal.signal(sig, handler)


def _sim_start(options: DemoOptions) -> datetime:
    """Event time of the simulation's start, on a whole hour, so that the contact-centre clock is
    about now when a timed run ends (after 60 s for an untimed one). The stream's event time
    advances faster at first, while journeys ramp up, so its span is read off the same stream,
    generated here with times from 0 (the simulator's stream is the same, shifted)."""
    from streams.simulate import generate

    sim = generate(options.customers, options.seed, seconds_per_event=options.speedup / options.rate, start_us=0)
    live = max(1.0, (options.duration or 60.0) - SIM_WARMUP_S)
    last = sim.events[min(len(sim.events), max(1, round(options.rate * live))) - 1]
    offset = (_parse_time(last["occurred_at"]) or datetime.fromtimestamp(0, UTC)) - datetime.fromtimestamp(0, UTC)
    return (datetime.now(UTC) - offset).replace(minute=0, second=0, microsecond=0)


def run_demo(settings: Settings, options: DemoOptions, out: IO[str] | None = None) -> int:
    out = out or sys.stdout
    tty = out.isatty()

    def say(text: str) -> None:
        print(text, file=out, flush=True)

    world = World.create(settings)
    signals = _Signals()
    worker: Child | None = None
    simulator: Child | None = None
    feed: AlertFeed | None = None
    poller: Poller | None = None
    rc = 0
    t_start = time.monotonic()
    ready_after = 0.0
    live_for = 0.0
    outcome: Outcome | None = None
    with signals.installed():
        say(f"effortpulse demo {world.app_id}: Kafka {settings.kafka_bootstrap}, Redis {_safe_url(settings.redis_url)}")
        say(f"  topics {', '.join(world.topics.values())}; API on {world.base_url}")
        try:
            worker = Child("worker", [*_command(), "worker"], world, world.worker_log)
            say(f"  worker pid {worker.pid}, log {world.worker_log}")
            with ThreadPoolExecutor(1) as pool:  # while the worker starts; no thread runs at the next fork
                planned = pool.submit(_sim_start, options)
                failure = _wait_ready(world, worker, signals, say)
                start = planned.result()
            if failure:
                say(failure)
                rc = 1
            elif not signals.stop.is_set():
                ready_after = time.monotonic() - t_start
                sim_args = [*_command(), "simulate", "--customers", str(options.customers), "--rate",
                            f"{options.rate:g}", "--speedup", f"{options.speedup:g}", "--seed", str(options.seed),
                            "--start", _iso(start)]  # fmt: skip
                simulator = Child("simulator", sim_args, world, world.simulator_log)
                say(
                    f"  worker ready after {ready_after:.1f} s; simulator pid {simulator.pid}: {options.customers} "
                    f"customers, {options.rate:g} events/s, {options.speedup:g}× time from {_iso(start)}, seed "
                    f"{options.seed}; log {world.simulator_log}"
                )
                feed = AlertFeed(settings, world)
                feed.start()

                def clock() -> str:
                    sim = SimProgress.read(world.simulator_log)
                    times = [t for t in (feed.newest_at if feed else None, sim.newest) if t is not None]
                    return _iso(max(times)) if times else _iso(start)

                poller = Poller(world, clock)
                poller.start()
                live_for, rc = _live(world, options, worker, simulator, feed, poller, clock, signals, tty, out)
                if signals.received:
                    say(f"stopping ({signals.received})")
        finally:
            outcome = _finish(world, options, worker, simulator, feed, poller, signals, say, ready_after, live_for)
            if outcome is None and rc == 0:
                rc = 130 if signals.received else 1  # stopped before it went live
            if outcome is not None and live_for > 0:
                say("")
                say(summary_text(world, outcome))
            rc = _tidy(settings, world, options, worker, outcome, rc, say)
    return rc


def _safe_url(url: str) -> str:
    return re.sub(r"//[^@/]*@", "//***@", url)


def _wait_ready(world: World, worker: Child, signals: _Signals, say: Callable[[str], None]) -> str | None:
    """Wait for /health 200 and "Worker ready" in the log; a message when it failed."""
    t0 = time.monotonic()
    next_note = t0 + 10
    while not signals.stop.is_set():
        if not worker.running():
            return f"effortpulse demo: the worker exited with {worker.proc.returncode}:\n{worker.tail()}"
        try:
            healthy = _get(f"{world.base_url}/health", timeout=2)[0] == 200
        except OSError:
            healthy = False
        if healthy and "Worker ready" in world.worker_log.read_text(errors="replace"):
            return None
        now = time.monotonic()
        if now - t0 > READY_TIMEOUT_S:
            return f"effortpulse demo: the worker was not ready after {READY_TIMEOUT_S} s:\n{worker.tail()}"
        if now >= next_note:
            say(f"  waiting for the worker ({now - t0:.0f} s) ...")
            next_note += 10
        signals.stop.wait(0.25)
    return None


def _live(world: World, options: DemoOptions, worker: Child, simulator: Child, feed: AlertFeed, poller: Poller,
          clock: Callable[[], str], signals: _Signals, tty: bool, out: IO[str]) -> tuple[float, int]:  # fmt: skip
    """Show the view until --duration, a signal or a failure; returns (seconds live, exit code)."""
    t0 = time.monotonic()
    rc = 0
    note: str | None = None

    def state() -> ViewState:
        counts, latest, churn_latest = feed.view()
        return ViewState(world, options, time.monotonic() - t0, poller.snapshot, counts, latest, churn_latest,
                         clock(), SimProgress.read(world.simulator_log), note)  # fmt: skip

    def step() -> bool:
        """False when the view should end."""
        nonlocal rc, note
        if options.duration is not None and time.monotonic() - t0 >= options.duration:
            return False
        if not worker.running():
            note = f"the worker stopped unexpectedly (exit {worker.proc.returncode}); see {world.worker_log}"
            rc = 1
            return False
        if not simulator.running() and simulator.proc.returncode not in (0, None) and rc == 0:
            note = f"the simulator failed (exit {simulator.proc.returncode}); see {world.simulator_log}"
            rc = 1
            return False
        if not simulator.running() and note is None:
            note = "the simulator has sent its whole stream; Ctrl-C ends the demo"
        return True

    if tty:
        from rich.console import Console
        from rich.live import Live

        console = Console(file=out)
        with Live(rich_view(state(), console.width), console=console, auto_refresh=False, screen=False) as live:
            while not signals.stop.is_set() and step():
                live.update(rich_view(state(), console.width), refresh=True)
                signals.stop.wait(REFRESH_S)
            live.update(rich_view(state(), console.width), refresh=True)
    else:
        print(f"live: a plain-text snapshot every {PLAIN_EVERY_S:g} s", file=out, flush=True)
        next_print = t0 + PLAIN_EVERY_S
        while not signals.stop.is_set() and step():
            if time.monotonic() >= next_print:
                print(plain_snapshot(state()), file=out, flush=True)
                next_print += PLAIN_EVERY_S
            signals.stop.wait(REFRESH_S)
    if note and rc:
        print(f"effortpulse demo: {note}", file=out, flush=True)
        if not worker.running():
            print(worker.tail(), file=out, flush=True)
    return time.monotonic() - t0, rc


def _finish(world: World, options: DemoOptions, worker: Child | None, simulator: Child | None,
            feed: AlertFeed | None, poller: Poller | None, signals: _Signals, say: Callable[[str], None],
            ready_after: float, live_for: float) -> Outcome | None:  # fmt: skip
    """Stop the simulator, let the worker catch up, take the last figures, stop the worker, read
    the alerts to the end. The outcome, or None when there was nothing live."""
    grace = 5 if signals.hurry.is_set() else STOP_GRACE_S
    if simulator is not None:
        simulator.stop(grace)
    sim = SimProgress.read(world.simulator_log)
    snapshot = poller.snapshot if poller else None
    if poller is not None:
        poller.stop()
        if worker is not None and worker.running():
            deadline = time.monotonic() + (0 if signals.hurry.is_set() else CATCH_UP_S)
            while True:
                with contextlib.suppress(Exception):
                    snapshot = poller.poll(scores=False)
                m = snapshot.metrics if snapshot else None
                done = m is not None and m.processed + m.invalid + m.duplicates >= sim.sent
                if done or time.monotonic() > deadline or signals.hurry.is_set() or not worker.running():
                    break
                time.sleep(0.3)
            with contextlib.suppress(Exception):
                at = _iso(sim.newest) if sim.newest else poller.clock()
                snapshot = poller.poll(scores=False)
                snapshot.scores = poller.fetch_scores(at)
        poller.close()
    if worker is not None:
        grace = 5 if signals.hurry.is_set() else STOP_GRACE_S
        code = worker.stop(grace)
        if code not in (0, None, -signal.SIGTERM):
            say(f"(the worker exited with {code}; its log: {world.worker_log})")
    if feed is None:
        return None
    feed.drain()
    counts, _, churn_latest = feed.view()
    return Outcome(live_for, ready_after, snapshot, counts, churn_latest, sim)


def _tidy(settings: Settings, world: World, options: DemoOptions, worker: Child | None, outcome: Outcome | None,
          rc: int, say: Callable[[str], None]) -> int:  # fmt: skip
    """Delete the world (or say how to look at it with --keep); remove the work directory."""
    if options.keep:
        customer = "cust-000001"
        if outcome and outcome.snapshot and outcome.snapshot.open_cases:
            customer = outcome.snapshot.open_cases[0]["customer_id"]
        at = outcome.snapshot.scores.at if outcome and outcome.snapshot and outcome.snapshot.scores else None
        say("")
        say(f"kept the demo's data (--keep): Redis keys {world.app_id}:*, topics {', '.join(world.topics.values())}")
        say("to look at it (the CLI reads Redis and Kafka; for the HTTP API run `.venv/bin/effortpulse worker` too):")
        say(f"  {world.exports()}")
        say(f"  .venv/bin/effortpulse customer {customer}")
        say(f"  .venv/bin/effortpulse nps --segment channel:phone --window {WINDOW}" + (f" --at {at}" if at else ""))
        say("  .venv/bin/effortpulse alerts --from-beginning")
        say(f"to delete it later: redis-cli --scan --pattern '{world.app_id}:*' | xargs -r redis-cli del; and delete "
            f"the topics demo.{world.short}.*")  # fmt: skip
        say(f"logs: {world.workdir}")
        return rc
    keys, topics, problems = cleanup(settings, world)
    say(f"cleaned up: {keys} Redis keys ({world.app_id}:*), {len(topics)} topics (demo.{world.short}.*)")
    for p in problems:
        say(f"effortpulse demo: could not clean up {p}")
    if problems:
        rc = rc or 1
    if rc == 0:
        shutil.rmtree(world.workdir, ignore_errors=True)
    else:
        say(f"logs kept in {world.workdir}")
    return rc
