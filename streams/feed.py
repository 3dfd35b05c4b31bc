"""`effortpulse simulate`'s shell: the simulated contact centre of `streams.simulate`, sent to
Kafka at a steady rate or written to a JSON-lines file.

How the options play together (see `streams.simulate` for what the stream holds):
- --rate and --speedup set how densely the stream is packed: one event per speedup / rate
  simulated seconds on average, so that sent at --rate events per wall second, event time
  advances about --speedup simulated seconds per wall second (defaults 200 and 3600: a
  contact-centre day in 24 s, ~4,800 events a simulated day).
- To Kafka: events go to EFFORTPULSE_EVENTS_TOPIC (created like the worker creates it when
  missing), key = customer_id, at --rate per second, for --duration wall seconds or until the
  stream ends. Ctrl-C or SIGTERM stops cleanly: what was sent is flushed and summarised.
- To a file (--out): written at once, no waiting: the first rate × duration events — what
  Kafka would have received in --duration seconds — or, without --duration, all of them.
- Event time: the whole stream ends at the last full UTC hour before now, so a file written
  twice within the same hour is byte-identical; --start pins the beginning instead.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from types import FrameType
from typing import IO, Any

from streams.settings import Settings
from streams.simulate import Simulation, generate, to_json
from streams.times import HOUR, to_us

PROGRESS_EVERY_S = 5.0


def _now() -> datetime:
    return datetime.now(UTC)


def build(customers: int, seed: int, rate: float, speedup: float, start: datetime | None = None) -> Simulation:
    """The simulated stream: packed at speedup / rate simulated seconds per event, beginning at
    `start`, or else ending at the last full UTC hour."""
    spacing = speedup / rate
    if start is not None:
        return generate(customers, seed, seconds_per_event=spacing, start_us=to_us(start))
    end_us = to_us(_now()) // HOUR * HOUR
    return generate(customers, seed, seconds_per_event=spacing, end_us=end_us)


def write_file(sim: Simulation, path: str, limit: int | None) -> str:
    """Write the first `limit` events (all when None) as JSON lines to `path` (- is stdout);
    returns the summary line."""
    if path == "-":
        _write(sim, sys.stdout, limit)
        sys.stdout.flush()
    else:
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            _write(sim, f, limit)
    return sim.summary(limit)


def _write(sim: Simulation, out: IO[str], limit: int | None) -> None:
    for line in sim.lines(limit):
        out.write(line)
        out.write("\n")


def send(
    settings: Settings,
    sim: Simulation,
    rate: float,
    duration: float | None,
    report: IO[str] = sys.stdout,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[int, float, int]:
    """Produce the stream to the events topic at `rate` events per second for `duration`
    seconds (None: to its end), printing progress every few seconds. Returns (sent, seconds
    taken, failed sends). Stops cleanly on Ctrl-C or SIGTERM."""
    from streams.kafka import ensure_topics, producer

    ensure_topics(settings)
    p = producer(settings)
    topic = settings.events_topic
    events = sim.events
    failed: list[BaseException] = []
    sent = 0
    t0 = clock()
    next_report = t0 + PROGRESS_EVERY_S
    try:
        with _sigterm_as_interrupt():
            while sent < len(events):
                now = clock()
                if duration is not None and now - t0 >= duration:
                    break
                due = min(len(events), int((now - t0) * rate) + 1)
                while sent < due:
                    event = events[sent]
                    future = p.send(topic, key=event["customer_id"].encode(), value=to_json(event).encode())
                    future.add_errback(failed.append)
                    sent += 1
                if now >= next_report:
                    elapsed = now - t0
                    print(
                        f"simulate: {sent}/{len(events)} events sent to {topic} ({sent / elapsed:.0f}/s), "
                        f"event time {events[sent - 1]['occurred_at']}",
                        file=report,
                        flush=True,
                    )
                    next_report += PROGRESS_EVERY_S
                wake = t0 + sent / rate
                if duration is not None:
                    wake = min(wake, t0 + duration)
                sleep(max(0.0, wake - clock()))
    except KeyboardInterrupt:
        print("simulate: stopping", file=report, flush=True)
    finally:
        p.flush()
        p.close()
    return sent, clock() - t0, len(failed)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM stops the sending like Ctrl-C does, so what was sent is flushed."""

    def interrupt(signum: int, frame: FrameType | None) -> Any:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(
    settings: Settings,
    *,
    customers: int,
    seed: int,
    rate: float,
    speedup: float,
    duration: float | None,
    start: datetime | None,
    out: str | None,
) -> int:
    """`effortpulse simulate`: to the file `out` when given, else to Kafka."""
    sim = build(customers, seed, rate, speedup, start)
    if out is not None:
        limit = None if duration is None else round(rate * duration)
        summary = write_file(sim, out, limit)
        where = "standard output" if out == "-" else out
        print(f"wrote to {where}: {summary}", file=sys.stderr if out == "-" else sys.stdout)
        return 0
    sent, took, failed = send(settings, sim, rate, duration)
    summary = sim.summary(sent)
    print(f"sent to {settings.events_topic} in {took:.1f} s ({sent / max(took, 1e-9):.0f}/s): {summary}")
    if failed:
        print(f"effortpulse: {failed} events were not accepted by Kafka", file=sys.stderr)
        return 1
    return 0
