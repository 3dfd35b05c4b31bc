"""Prometheus for real: Debian's Prometheus server, on loopback with its own data directory,
scrapes a live worker every second with the shipped rules loaded (deploy/prometheus/prometheus.yml,
only its target and intervals changed), while the worker is fed real events through Kafka: an
effort journey that reaches critical, surveys of one team, invalid records and duplicates. The
test asks Prometheus's HTTP API for the series and expects exact values. promtool checks the
shipped config and rules and runs their unit tests.

Prometheus missing is a failure, never a skip: `make test` installs it (deploy/local/prometheus.sh).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.harness import ROOT, Worker, event, free_port, timedelta, utcnow, wait_until
from tests.unit.test_grafana import EXPECTED_RULES, check_expr, dashboard_targets, load_dashboard

DEPLOY = ROOT / "deploy" / "prometheus"
TEAM = "prom-team"
SEGMENT = f"team:{TEAM}"
NPS_ANSWERS = [10, 10, 10, 9, 9, 8, 7, 6, 3, 0]  # 5 promoters, 2 passives, 3 detractors: NPS 20
CES_ANSWERS = [7, 5, 2, 6]  # mean 5
CSAT_ANSWERS = [5, 4, 1]  # mean 10/3


def binary(name: str) -> str:
    path = os.environ.get(name.upper()) or shutil.which(name)
    if not path:
        pytest.fail(
            f"{name} is not installed: run the tests with `make test`, which installs Debian's prometheus package "
            f"(deploy/local/prometheus.sh, as root), or set {name.upper()} to the binary"
        )
    return path


class Prometheus:
    """A Prometheus server of our own: loopback, random port, temporary data directory."""

    def __init__(self, config_text: str) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="effortpulse-prometheus-"))
        self.config = self.dir / "prometheus.yml"
        self.config.write_text(config_text, encoding="utf-8")
        self.port = free_port()
        self.log_path = self.dir / "prometheus.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, wait: float = 60) -> Prometheus:
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [
                    binary("prometheus"),
                    f"--config.file={self.config}",
                    f"--storage.tsdb.path={self.dir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--storage.tsdb.retention.time=1d",
                    "--log.level=warn",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"prometheus exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as r:
                    return r.status == 200
            except OSError:
                return False

        wait_until(ready, timeout=wait, what="Prometheus to be ready")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def api(self, path: str, **params: str) -> Any:
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                doc = json.loads(r.read())
        except urllib.error.HTTPError as e:
            doc = json.loads(e.read())
        assert doc["status"] == "success", f"{path} {params}: {doc}"
        return doc["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        data = self.api("query", query=promql)
        assert data["resultType"] == "vector", data
        return data["result"]

    def value(self, promql: str) -> float | None:
        """The value of a query with one series (None when it has none)."""
        result = self.query(promql)
        assert len(result) <= 1, f"{promql}: {len(result)} series: {result}"
        return float(result[0]["value"][1]) if result else None

    def wait_value(self, promql: str, expected: float, timeout: float = 30) -> None:
        got: list[float | None] = []

        def probe() -> bool:
            got.append(self.value(promql))
            return got[-1] == expected

        try:
            wait_until(probe, timeout=timeout, every=0.5, what=f"{promql} == {expected}")
        except AssertionError:
            raise AssertionError(f"{promql}: expected {expected}, Prometheus says {got[-1]}") from None


def scrape_config(target: str) -> str:
    """The shipped prometheus.yml with the test's target, 1 s intervals and the rules by absolute path."""
    text = (DEPLOY / "prometheus.yml").read_text(encoding="utf-8")
    for old, new in [
        ("scrape_interval: 15s", "scrape_interval: 1s"),
        ("scrape_timeout: 10s", "scrape_timeout: 1s"),
        ("evaluation_interval: 15s", "evaluation_interval: 1s"),
        ("- rules.yml", f"- {DEPLOY / 'rules.yml'}"),
        ("- 127.0.0.1:6066", f"- {target}"),
    ]:
        assert text.count(old) == 1, f"deploy/prometheus/prometheus.yml no longer has exactly one {old!r}"
        text = text.replace(old, new)
    return text


@dataclass
class Scenario:
    worker: Worker
    prometheus: Prometheus
    valid: Counter[str]  # valid events per type
    alerts: Counter[tuple[str, str]]  # (type, severity) of the alerts on the alerts topic


def effort_journey(customer: str) -> list[dict[str, Any]]:
    """chat → email → phone on one case within 40 hours, two ended unresolved: 80 points, critical."""
    t = utcnow() - timedelta(days=3)
    return [
        event(t, "contact.started", customer, contact_id=f"{customer}-1", channel="chat", case_id=f"{customer}-k"),
        event(t + timedelta(minutes=9), "contact.ended", customer, contact_id=f"{customer}-1", resolved=False),
        event(t + timedelta(hours=20), "contact.started", customer, contact_id=f"{customer}-2", channel="email",
              case_id=f"{customer}-k"),
        event(t + timedelta(hours=21), "contact.ended", customer, contact_id=f"{customer}-2", resolved=False),
        event(t + timedelta(hours=40), "contact.started", customer, contact_id=f"{customer}-3", channel="phone",
              case_id=f"{customer}-k"),
    ]  # fmt: skip


def surveys() -> list[dict[str, Any]]:
    t = utcnow() - timedelta(hours=2)
    out = []
    for i, nps in enumerate(NPS_ANSWERS):
        scores: dict[str, int] = {"nps": nps}
        if i < len(CES_ANSWERS):
            scores["ces"] = CES_ANSWERS[i]
        elif i - len(CES_ANSWERS) < len(CSAT_ANSWERS):
            scores["csat"] = CSAT_ANSWERS[i - len(CES_ANSWERS)]
        out.append(event(t + timedelta(minutes=i), "survey.responded", f"pm-s{i}", team_id=TEAM, channel="chat",
                         **scores))  # fmt: skip
    return out


@pytest.fixture(scope="module")
def scenario() -> Iterator[Scenario]:
    worker = Worker("prom", env={"EFFORTPULSE_SCORE_GAUGES_INTERVAL": "1s"})
    prometheus = Prometheus(scrape_config(f"127.0.0.1:{worker.port}"))
    try:
        worker.start()
        prometheus.start()
        journey = effort_journey("pm-effort")
        answers = surveys()
        worker.produce(journey + answers)
        not_json = b"{not json"
        no_contact = json.dumps(
            {
                "event_id": "pm-bad",
                "type": "contact.started",
                "occurred_at": journey[0]["occurred_at"],
                "customer_id": "pm-bad",
                "channel": "chat",
            }
        ).encode()
        worker.produce_raw([(b"pm-bad", not_json), (b"pm-bad", no_contact)])
        valid = Counter(e["type"] for e in journey + answers)
        prometheus.wait_value("sum(effortpulse_events_processed_total)", sum(valid.values()), timeout=60)
        prometheus.wait_value("sum(effortpulse_events_invalid_total)", 2)
        worker.produce(journey[:3])  # the same event ids again: duplicates
        prometheus.wait_value("effortpulse_events_duplicate_total", 3)
        alerts = Counter((a["type"], a["severity"]) for a in worker.read("alerts", idle=2))
        yield Scenario(worker, prometheus, valid, alerts)
    finally:
        prometheus.stop()
        worker.close()
        shutil.rmtree(ROOT / f"{worker.app_id}-data", ignore_errors=True)  # faust's data dir, in the cwd
        assert prometheus.proc is None or prometheus.proc.poll() is not None, "Prometheus is still running"


def test_prometheus_scrapes_the_worker(scenario: Scenario) -> None:
    p = scenario.prometheus
    assert p.value('up{job="effortpulse"}') == 1
    [target] = p.api("targets", state="active")["activeTargets"]
    assert target["labels"]["job"] == "effortpulse"
    assert target["scrapeUrl"] == f"http://127.0.0.1:{scenario.worker.port}/metrics"
    assert target["health"] == "up" and target["lastError"] == ""


def test_counters_count_every_event_once(scenario: Scenario) -> None:
    p, valid = scenario.prometheus, scenario.valid
    assert p.value("sum(effortpulse_events_processed_total)") == sum(valid.values()) == 15
    for type_, n in valid.items():
        assert p.value(f'effortpulse_events_processed_total{{type="{type_}"}}') == n, type_
    assert p.value('effortpulse_events_processed_total{type="customer.churned"}') == 0  # there from the start
    assert p.value('effortpulse_events_invalid_total{reason="not_json"}') == 1
    assert p.value('effortpulse_events_invalid_total{reason="missing_field"}') == 1
    assert p.value("sum(effortpulse_events_invalid_total)") == 2
    assert p.value("effortpulse_events_duplicate_total") == 3


def test_alerts_are_counted_as_they_reach_the_alerts_topic(scenario: Scenario) -> None:
    p, on_topic = scenario.prometheus, scenario.alerts
    assert on_topic[("effort.high", "critical")] == 1
    assert p.value('effortpulse_alerts_total{type="effort.high",severity="critical"}') == 1
    assert p.value('effortpulse_alerts_total{type="effort.high",severity="warning"}') == 0
    counted = {
        (r["metric"]["type"], r["metric"]["severity"]): float(r["value"][1])
        for r in p.query("effortpulse_alerts_total > 0")
    }
    assert counted == {k: float(n) for k, n in on_topic.items()}
    # every alert's latency is observed once
    assert p.value("effortpulse_alert_latency_seconds_count") == sum(on_topic.values())
    # the journey's case ended the batches at 80 points at most, and at least once in (70, 80]
    # (prometheus_client writes the bounds as floats: le="80.0")
    bucket = 'effortpulse_case_effort_points_bucket{{le="{}"}}'.format
    assert p.value(f"{bucket('+Inf')} - ignoring (le) {bucket('80.0')}") == 0
    assert p.value(f"{bucket('80.0')} - ignoring (le) {bucket('70.0')}") >= 1  # type: ignore[operator]


def test_score_gauges_show_the_team_nps_with_its_interval(scenario: Scenario) -> None:
    p, worker = scenario.prometheus, scenario.worker
    promoters = sum(a >= 9 for a in NPS_ANSWERS)
    detractors = sum(a <= 6 for a in NPS_ANSWERS)
    expected = 100 * (promoters - detractors) / len(NPS_ANSWERS)
    assert expected == 20.0
    for window in ("7d", "28d"):
        p.wait_value(f'effortpulse_nps{{segment="{SEGMENT}",window="{window}"}}', expected)
        assert p.value(f'effortpulse_nps_responses{{segment="{SEGMENT}",window="{window}"}}') == len(NPS_ANSWERS)
    p.wait_value('effortpulse_nps{segment="all",window="7d"}', expected)
    p.wait_value(f'effortpulse_ces_mean{{segment="{SEGMENT}",window="7d"}}', sum(CES_ANSWERS) / len(CES_ANSWERS))
    assert p.value(f'effortpulse_ces_responses{{segment="{SEGMENT}",window="7d"}}') == len(CES_ANSWERS)
    assert p.value(f'effortpulse_csat_responses{{segment="{SEGMENT}",window="7d"}}') == len(CSAT_ANSWERS)
    csat = p.value(f'effortpulse_csat_mean{{segment="{SEGMENT}",window="7d"}}')
    assert csat is not None and abs(csat - sum(CSAT_ANSWERS) / len(CSAT_ANSWERS)) < 1e-9
    # the band is the one GET /nps gives, to the last digit
    code, doc = worker.http("GET", f"/nps?segment={SEGMENT}&window=7d")
    assert code == 200 and doc["nps"] == expected
    low = p.value(f'effortpulse_nps_ci_low{{segment="{SEGMENT}",window="7d"}}')
    high = p.value(f'effortpulse_nps_ci_high{{segment="{SEGMENT}",window="7d"}}')
    moe = p.value(f'effortpulse_nps_margin_of_error{{segment="{SEGMENT}",window="7d"}}')
    assert (low, high, moe) == (doc["ci_low"], doc["ci_high"], doc["margin_of_error"])
    assert low is not None and high is not None and low < expected < high
    # the insights gauges: the journey's case, with three contacts, is the one case of the last 7 days
    p.wait_value('effortpulse_cases{segment="all"}', 1)
    assert p.value('effortpulse_repeat_contact_ratio{segment="all"}') == 1
    assert p.value('effortpulse_case_effort_mean_points{segment="all"}') == 80


def test_consumer_lag_is_zero_per_owned_partition_after_catching_up(scenario: Scenario) -> None:
    p = scenario.prometheus
    topic = scenario.worker.topics["events"]
    p.wait_value(f'count(effortpulse_consumer_lag_records{{topic="{topic}"}})', 4)  # one worker owns all 4
    p.wait_value(f'sum(effortpulse_consumer_lag_records{{topic="{topic}"}})', 0)
    assert p.value("effortpulse_last_applied_timestamp_seconds") > time.time() - 300  # type: ignore[operator]


def test_the_shipped_rules_are_loaded_and_evaluate_without_errors(scenario: Scenario) -> None:
    p = scenario.prometheus

    def rules() -> list[dict[str, Any]] | None:
        groups = p.api("rules")["groups"]
        found = [r for g in groups for r in g["rules"]]
        return groups if found and all(r["health"] == "ok" for r in found) else None

    groups = wait_until(rules, timeout=30, what="every rule evaluated with health ok")
    assert {g["name"] for g in groups} == {"effortpulse-operations", "effortpulse-cx"}
    found = {r["name"]: r for g in groups for r in g["rules"]}
    assert set(found) == EXPECTED_RULES
    for name, rule in found.items():
        assert rule["type"] == "alerting" and not rule.get("lastError"), name
        check_expr(rule["query"], name)  # as Prometheus parsed it
    firing = {a["labels"]["alertname"] for a in p.api("alerts")["alerts"] if a["state"] == "firing"}
    assert "EffortpulseWorkerDown" not in firing and "EffortpulseNoEvents" not in firing


def test_every_dashboard_query_runs_on_prometheus_and_finds_data(scenario: Scenario) -> None:
    p = scenario.prometheus
    values = {"job": ".*", "segment": ".*", "window": "7d", "__rate_interval": "1m", "__range": "10m"}
    empty = []
    for where, target in dashboard_targets(load_dashboard()):
        expr = target["expr"]
        for name, value in values.items():
            expr = expr.replace("${" + name + "}", value).replace("$" + name, value)
        assert "$" not in expr, (where, expr)
        if not p.query(expr):  # a parse or evaluation error fails in p.api
            empty.append(where)
    assert empty == [], f"no data for {empty}"


def test_promtool_accepts_the_shipped_config_and_rules_and_their_unit_tests() -> None:
    promtool = binary("promtool")
    for args in (
        ["check", "config", "prometheus.yml"],
        ["check", "rules", "rules.yml"],
        ["test", "rules", "rules_test.yml"],
    ):
        r = subprocess.run([promtool, *args], cwd=DEPLOY, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, f"promtool {' '.join(args)}:\n{r.stdout}\n{r.stderr}"
        assert "SUCCESS" in r.stdout + r.stderr, r.stdout + r.stderr
