"""Alert subscriptions through a real worker, a real broker and a real local HTTP server: signed
webhooks, Kafka-topic targets, filters, retries and the undelivered topic, the API token, the CLI."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition

from tests.integration.harness import (
    BIN,
    BOOTSTRAP,
    ROOT,
    Worker,
    event,
    read_topic,
    redis_client,
    timedelta,
    utcnow,
    wait_until,
)

TOKEN = "tok-" + uuid.uuid4().hex
AUTH = {"Authorization": f"Bearer {TOKEN}"}
RETRIES = 2  # so a failing webhook gets 3 tries


# ------------------------------------------------------------------------------ a webhook receiver


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


class Receiver:
    """A real HTTP server on 127.0.0.1: /ok/... answers 200, /fail/... 500, /reject/... 400,
    /slow/<seconds>/... 200 after that many seconds. Every request is kept."""

    def __init__(self) -> None:
        hits: list[Hit] = []
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with lock:
                    hits.append(Hit(self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.monotonic()))
                kind = self.path.split("/")[1]
                if kind == "slow":
                    time.sleep(float(self.path.split("/")[2]))
                status = {"ok": 200, "slow": 200, "fail": 500, "reject": 400}.get(kind, 404)
                answer = b"nope: this receiver does not want it" if status == 400 else b"{}"
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except OSError:
                    pass  # the worker gave up waiting

            def log_message(self, *args: Any) -> None:
                pass

        self.hits = hits
        self.lock = lock
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def to(self, path: str) -> list[Hit]:
        with self.lock:
            return [h for h in self.hits if h.path == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.close()


@pytest.fixture(scope="module")
def worker() -> Iterator[Worker]:
    w = Worker(
        "subs",
        env={
            "EFFORTPULSE_API_TOKEN": TOKEN,
            "EFFORTPULSE_WEBHOOK_ALLOW": "127.0.0.1,localhost",
            "EFFORTPULSE_WEBHOOK_RETRIES": str(RETRIES),
            "EFFORTPULSE_WEBHOOK_TIMEOUT": "1s",
            "EFFORTPULSE_WEBHOOK_BACKOFF_BASE": "50ms",
            "EFFORTPULSE_WEBHOOK_BACKOFF_MAX": "200ms",
        },
    ).start()
    try:
        yield w
    finally:
        w.close()


@pytest.fixture
def subscriptions(worker: Worker) -> Iterator[list[str]]:
    """Ids of the subscriptions a test creates; removed after it, so tests do not see each other's."""
    ids: list[str] = []
    yield ids
    for sub_id in ids:
        call(worker, "DELETE", f"/subscriptions/{sub_id}")


def call(
    worker: Worker, method: str, path: str, body: Any = None, token: str | None = TOKEN, raw: bytes | None = None
) -> tuple[int, Any]:
    """One API request; `token=None` sends none."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(f"http://127.0.0.1:{worker.port}{path}", data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            text = r.read()
            return r.status, json.loads(text) if text.strip() else None
    except urllib.error.HTTPError as e:
        text = e.read()
        try:
            return e.code, json.loads(text)
        except ValueError:
            return e.code, text.decode(errors="replace")


def subscribe(worker: Worker, ids: list[str], **body: Any) -> dict[str, Any]:
    code, doc = call(worker, "POST", "/subscriptions", {"types": [], "segments": [], **body})
    assert code == 201, doc
    ids.append(doc["id"])
    return doc


def webhook(receiver: Receiver, path: str, secret: str) -> dict[str, str]:
    return {"webhook_url": receiver.url(path), "secret": secret}


def verified(hits: list[Hit], secret: str) -> list[dict[str, Any]]:
    """The alerts of these requests, after checking each one's headers and HMAC signature."""
    alerts = []
    for h in hits:
        expected = "sha256=" + hmac.new(secret.encode(), h.body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(h.headers["x-effortpulse-signature"], expected), h
        assert h.headers["content-type"] == "application/json"
        doc = json.loads(h.body)
        assert h.headers["x-effortpulse-alert-id"] == doc["alert_id"]
        alerts.append(doc)
    return alerts


def kinds(alerts: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return sorted((a["customer_id"], a["type"], a["severity"]) for a in alerts)


def committed_to_end(worker: Worker, topic: str) -> bool:
    """Whether the worker's delivery group (faust's, <app id>-delivery) has committed every record of the topic."""
    consumer = KafkaConsumer(
        bootstrap_servers=BOOTSTRAP, group_id=f"{worker.app_id}-delivery", enable_auto_commit=False
    )
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        ends = consumer.end_offsets(tps)
        return all((consumer.committed(tp) or 0) == ends[tp] for tp in tps)
    finally:
        consumer.close()


def undelivered_for(worker: Worker, sub_id: str) -> list[dict[str, Any]]:
    return [d for d in worker.read("undelivered", idle=0.5, timeout=10) if d["subscription_id"] == sub_id]


# ------------------------------------------------------------------------------ the alerts to deliver


def effort_journey(customer: str, team: str, critical: bool) -> list[dict[str, Any]]:
    """critical: chat, email, phone with two unresolved ends → 80 points at the third start, one
    critical effort.high. Else chat, email, chat with no ends → 60 points, one warning."""
    t = utcnow() - timedelta(days=3)
    case = f"{customer}-case"
    third = "phone" if critical else "chat"
    events = [
        event(t, "contact.started", customer, contact_id=f"{customer}-1", channel="chat", case_id=case,
              team_id=team, reason="refund"),
        event(t + timedelta(hours=20), "contact.started", customer, contact_id=f"{customer}-2", channel="email",
              case_id=case, team_id=team),
        event(t + timedelta(hours=40), "contact.started", customer, contact_id=f"{customer}-3", channel=third,
              case_id=case, team_id=team),
    ]  # fmt: skip
    if critical:
        events.insert(1, event(t + timedelta(minutes=9), "contact.ended", customer, contact_id=f"{customer}-1",
                               resolved=False))  # fmt: skip
        events.insert(3, event(t + timedelta(hours=21), "contact.ended", customer, contact_id=f"{customer}-2",
                               resolved=False))  # fmt: skip
    return events


def detractor(customer: str, team: str, nps: int) -> dict[str, Any]:
    """nps 4–6: a warning nps.detractor; 0–3: critical."""
    return event(utcnow() - timedelta(hours=1), "survey.responded", customer, nps=nps, team_id=team, channel="chat")


# ------------------------------------------------------------------------------ tests


def test_alerts_reach_exactly_the_matching_subscriptions_signed_and_to_kafka_topics(
    worker: Worker, receiver: Receiver, subscriptions: list[str]
) -> None:
    kafka_topic = f"{worker.topics['alerts']}.team"
    secrets = {name: f"secret-{name}-{uuid.uuid4().hex}" for name in ("all", "detractors", "critical", "red")}
    subscribe(worker, subscriptions, name="everything", target=webhook(receiver, "/ok/all", secrets["all"]))
    subscribe(worker, subscriptions, name="detractors", types=["nps.detractor"],
              target=webhook(receiver, "/ok/detractors", secrets["detractors"]))  # fmt: skip
    subscribe(worker, subscriptions, name="critical only", min_severity="critical",
              target=webhook(receiver, "/ok/critical", secrets["critical"]))  # fmt: skip
    subscribe(worker, subscriptions, name="team red", segments=["team:t-red"],
              target=webhook(receiver, "/ok/red", secrets["red"]))  # fmt: skip
    subscribe(worker, subscriptions, name="effort to kafka", types=["effort.high"], target={"kafka_topic": kafka_topic})

    worker.produce(
        effort_journey("f-crit", "t-red", critical=True)
        + effort_journey("f-warn", "t-blue", critical=False)
        + [detractor("f-det-red", "t-red", 5), detractor("f-det-blue", "t-blue", 1)]
    )
    produced = worker.read("alerts", count=4, idle=1.5)
    assert kinds(produced) == [
        ("f-crit", "effort.high", "critical"),
        ("f-det-blue", "nps.detractor", "critical"),
        ("f-det-red", "nps.detractor", "warning"),
        ("f-warn", "effort.high", "warning"),
    ]
    by_customer = {a["customer_id"]: a for a in produced}
    expected = {
        "/ok/all": ["f-crit", "f-det-blue", "f-det-red", "f-warn"],
        "/ok/detractors": ["f-det-blue", "f-det-red"],
        "/ok/critical": ["f-crit", "f-det-blue"],
        "/ok/red": ["f-crit", "f-det-red"],
    }
    assert "team:t-red" in by_customer["f-crit"]["segments"] and "team:t-red" in by_customer["f-det-red"]["segments"]
    wait_until(
        lambda: all(len(receiver.to(path)) >= len(c) for path, c in expected.items()),
        timeout=30,
        what="every webhook delivery",
    )
    on_topic = read_topic(kafka_topic, count=2, idle=1.5)
    time.sleep(1)  # room for a delivery that should not happen
    for path, customers in expected.items():
        secret = secrets[path.rsplit("/", 1)[1]]
        delivered = verified(receiver.to(path), secret)
        assert sorted(a["customer_id"] for a in delivered) == customers, path
        for a in delivered:
            assert a == by_customer[a["customer_id"]]  # the alert's JSON as it is on the alerts topic
    assert sorted((k, v["customer_id"]) for k, v, _ in on_topic) == [(b"f-crit", "f-crit"), (b"f-warn", "f-warn")]
    assert all(v == by_customer[v["customer_id"]] for _, v, _ in on_topic)
    # every alert record is acked once its deliveries ended: the group's offsets reach the end
    wait_until(lambda: committed_to_end(worker, worker.topics["alerts"]), timeout=15, what="alert offsets committed")
    code, text = worker.http("GET", "/metrics")
    counts = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line[:1] != "#"}
    assert counts['effortpulse_alert_deliveries_total{outcome="delivered",target="webhook"}'] >= 10
    assert counts['effortpulse_alert_deliveries_total{outcome="delivered",target="kafka"}'] >= 2


def test_a_failing_webhook_gets_every_try_then_the_alert_goes_to_the_undelivered_topic(
    worker: Worker, receiver: Receiver, subscriptions: list[str]
) -> None:
    failing = subscribe(worker, subscriptions, name="always 500", segments=["team:t-fail"],
                        target=webhook(receiver, "/fail/500", "s-fail"))  # fmt: skip
    rejecting = subscribe(worker, subscriptions, name="always 400", segments=["team:t-reject"],
                          target=webhook(receiver, "/reject/400", "s-reject"))  # fmt: skip
    worker.produce([detractor("u-fail", "t-fail", 2), detractor("u-reject", "t-reject", 2)])
    failed = wait_until(lambda: undelivered_for(worker, failing["id"]), timeout=30, what="the 500's undelivered record")
    rejected = wait_until(lambda: undelivered_for(worker, rejecting["id"]), timeout=30, what="the 400's record")
    time.sleep(1)  # no try after the undelivered record
    tries = verified(receiver.to("/fail/500"), "s-fail")
    assert [a["customer_id"] for a in tries] == ["u-fail"] * (RETRIES + 1)
    assert len({a["alert_id"] for a in tries}) == 1
    [record] = failed
    assert set(record) == {"alert", "subscription_id", "subscription_name", "target", "attempts", "error", "failed_at"}
    assert record["alert"] == tries[0]
    assert record["subscription_name"] == "always 500"
    assert record["target"] == receiver.url("/fail/500")
    assert record["attempts"] == RETRIES + 1
    assert record["error"].startswith("HTTP 500")
    assert "s-fail" not in json.dumps(record)
    # a 400 is final: one try
    assert [a["customer_id"] for a in verified(receiver.to("/reject/400"), "s-reject")] == ["u-reject"]
    [record] = rejected
    assert record["attempts"] == 1
    assert record["error"] == "HTTP 400 (not retried): nope: this receiver does not want it"
    keys = {k for k, v in worker.read_records("undelivered", idle=0.5) if v["subscription_id"] == failing["id"]}
    assert keys == {b"u-fail"}


def test_a_slow_webhook_holds_up_neither_other_subscriptions_nor_event_processing(
    worker: Worker, receiver: Receiver, subscriptions: list[str]
) -> None:
    slow = subscribe(worker, subscriptions, name="slow", segments=["team:t-slow"],
                     target=webhook(receiver, "/slow/2.5/a", "s-slow"))  # fmt: skip
    subscribe(worker, subscriptions, name="fast", segments=["team:t-slow"], target=webhook(receiver, "/ok/fast", "s"))
    worker.produce([detractor("s-1", "t-slow", 5)])
    wait_until(lambda: receiver.to("/ok/fast"), timeout=30, what="the fast subscription's delivery")
    fast_at = time.monotonic()
    # the slow one is still trying (3 tries of 1 s each); events go on meanwhile
    worker.produce([event(utcnow(), "customer.churned", "s-after")])
    wait_until(lambda: call(worker, "GET", "/customers/s-after")[0] == 200, timeout=10, what="s-after applied")
    assert undelivered_for(worker, slow["id"]) == []
    [record] = wait_until(lambda: undelivered_for(worker, slow["id"]), timeout=30, what="the slow one to give up")
    assert record["error"] == "no answer within 1s"
    assert record["attempts"] == RETRIES + 1
    assert time.monotonic() - fast_at > 1.0
    assert len(receiver.to("/slow/2.5/a")) == RETRIES + 1


def test_subscriptions_are_created_listed_and_deleted_and_never_show_their_secret(
    worker: Worker, receiver: Receiver, subscriptions: list[str]
) -> None:
    secret = "never-shown-" + uuid.uuid4().hex
    body = {"name": "billing lead", "types": ["effort.high", "nps.detractor"], "min_severity": "critical",
            "segments": ["team:billing", "channel:phone"], "target": webhook(receiver, "/ok/crud", secret)}  # fmt: skip
    code, created = call(worker, "POST", "/subscriptions", body)
    assert code == 201, created
    subscriptions.append(created["id"])
    assert created == {
        "id": created["id"],
        "name": "billing lead",
        "types": ["effort.high", "nps.detractor"],
        "min_severity": "critical",
        "segments": ["team:billing", "channel:phone"],
        "created_at": created["created_at"],
        "target": {"webhook_url": receiver.url("/ok/crud")},
    }
    code, listed = call(worker, "GET", "/subscriptions")
    assert code == 200
    assert created in listed["subscriptions"]
    assert call(worker, "GET", f"/subscriptions/{created['id']}") == (200, created)
    for _, doc in (call(worker, "GET", "/subscriptions"), call(worker, "GET", f"/subscriptions/{created['id']}")):
        assert secret not in json.dumps(doc)
    # kept in Redis under the app id, with the secret, for the worker to sign with
    stored = redis_client().hget(f"{worker.app_id}:subscriptions", created["id"])
    assert json.loads(stored)["target"]["secret"] == secret
    assert call(worker, "DELETE", f"/subscriptions/{created['id']}") == (204, None)
    assert call(worker, "GET", f"/subscriptions/{created['id']}")[0] == 404
    assert call(worker, "DELETE", f"/subscriptions/{created['id']}")[0] == 404
    assert created["id"] not in [s["id"] for s in call(worker, "GET", "/subscriptions")[1]["subscriptions"]]


@pytest.mark.parametrize(
    ("body", "loc", "reason"),
    [
        ({"name": "x", "target": {"kafka_topic": "t", "webhook_url": "http://127.0.0.1/", "secret": "s"}},
         ["target"], "exactly one of them"),
        ({"name": "x", "target": {}}, ["target"], "exactly one of them"),
        ({"name": "x", "types": ["effort.low"], "target": {"kafka_topic": "t"}}, ["types", 0], "'effort.high'"),
        ({"name": "x", "min_severity": "info", "target": {"kafka_topic": "t"}}, ["min_severity"], "'critical'"),
        ({"name": "x", "segments": ["planet:mars"], "target": {"kafka_topic": "t"}}, ["segments", 0], "planet:mars"),
        ({"name": "x", "target": {"webhook_url": "ftp://127.0.0.1/x", "secret": "s"}}, ["target", "webhook_url"],
         "http:// or https://"),
        ({"name": "x", "target": {"webhook_url": "http://metadata.internal/x", "secret": "s"}},
         ["target", "webhook_url"], "EFFORTPULSE_WEBHOOK_ALLOW"),
        ({"name": "x", "target": {"webhook_url": "http://127.0.0.1/x"}}, ["target", "secret"], "Field required"),
        ({"name": "x", "target": {"kafka_topic": "ALERTS"}}, ["target", "kafka_topic"], "worker's own topics"),
    ],
)  # fmt: skip
def test_a_bad_subscription_body_gets_422_with_the_reason(
    worker: Worker, body: dict[str, Any], loc: list[Any], reason: str
) -> None:
    if body["target"].get("kafka_topic") == "ALERTS":
        body = {**body, "target": {"kafka_topic": worker.topics["alerts"]}}
    code, doc = call(worker, "POST", "/subscriptions", body)
    assert code == 422, doc
    assert [e["loc"] for e in doc["errors"]] == [loc]
    assert reason in doc["errors"][0]["msg"] and reason in doc["error"]


def test_a_body_that_is_not_json_gets_422(worker: Worker) -> None:
    code, doc = call(worker, "POST", "/subscriptions", raw=b"{name: x")
    assert code == 422
    assert doc["error"].startswith("the body is not JSON")


def test_the_api_token_guards_every_endpoint_but_health_and_metrics(
    worker: Worker, receiver: Receiver, subscriptions: list[str]
) -> None:
    worker.produce([event(utcnow(), "contact.started", "tok-1", contact_id="tok-1-c", channel="chat")])
    wait_until(lambda: call(worker, "GET", "/customers/tok-1")[0] == 200, timeout=30, what="tok-1 applied")
    sub = subscribe(worker, subscriptions, name="tok", target=webhook(receiver, "/ok/tok", "s"))
    new_sub = {"name": "tok2", "target": webhook(receiver, "/ok/tok2", "s")}
    protected = [
        ("GET", "/customers/tok-1", None, 200),
        ("GET", "/nps?segment=all&window=7d", None, 200),
        ("GET", "/ces", None, 200),
        ("GET", "/csat", None, 200),
        ("GET", "/insights", None, 200),
        ("GET", "/cases/open", None, 200),
        ("GET", "/subscriptions", None, 200),
        ("GET", f"/subscriptions/{sub['id']}", None, 200),
        ("POST", "/subscriptions", new_sub, 201),
        ("DELETE", f"/subscriptions/{sub['id']}", None, 204),
        ("DELETE", "/customers/tok-1", None, 204),
    ]
    for method, path, body, ok in protected:
        for token in (None, "wrong", TOKEN[:-1], TOKEN + "x"):
            code, doc = call(worker, method, path, body, token=token)
            assert code == 401, (method, path, token, code, doc)
            assert "Bearer" in doc["error"]
        code, doc = call(worker, method, path, body)
        assert code == ok, (method, path, code, doc)
        if method == "POST":
            subscriptions.append(doc["id"])
    assert call(worker, "GET", "/customers/tok-1")[0] == 404  # the DELETE above went through
    for path in ("/health", "/metrics"):
        req = urllib.request.Request(f"http://127.0.0.1:{worker.port}{path}")
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 200


def cli(worker: Worker, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([BIN / "effortpulse", "subscriptions", *args], input=stdin, text=True,
                          capture_output=True, env=worker.env, cwd=ROOT, timeout=60)  # fmt: skip


def test_the_cli_adds_lists_and_removes_subscriptions_and_the_worker_delivers_to_them(
    worker: Worker, receiver: Receiver, subscriptions: list[str]
) -> None:
    secret = "cli-secret-" + uuid.uuid4().hex
    r = cli(worker, "add", "--name", "cli hook", "--type", "nps.detractor", "--segment", "team:t-cli",
            "--webhook-url", receiver.url("/ok/cli"), "--secret-file", "-", stdin=secret + "\n")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert secret not in r.stdout
    added = json.loads(r.stdout)
    subscriptions.append(added["id"])
    assert (added["name"], added["types"], added["segments"]) == ("cli hook", ["nps.detractor"], ["team:t-cli"])
    assert added["target"] == {"webhook_url": receiver.url("/ok/cli")}
    listed = cli(worker, "list")
    assert listed.returncode == 0, listed.stderr
    assert secret not in listed.stdout
    assert added in json.loads(listed.stdout)["subscriptions"]
    assert call(worker, "GET", f"/subscriptions/{added['id']}") == (200, added)  # the API sees it too

    worker.produce([detractor("cli-1", "t-cli", 6)])
    hits = wait_until(lambda: receiver.to("/ok/cli"), timeout=30, what="a delivery to the CLI's subscription")
    assert [a["customer_id"] for a in verified(hits, secret)] == ["cli-1"]

    refused = cli(worker, "add", "--name", "x", "--webhook-url", "http://evil.example.com/", "--secret", "s")
    assert refused.returncode == 2
    assert "target.webhook_url: host evil.example.com does not match EFFORTPULSE_WEBHOOK_ALLOW" in refused.stderr
    removed = cli(worker, "remove", added["id"])
    assert (removed.returncode, removed.stdout.strip()) == (0, f"removed {added['id']}")
    again = cli(worker, "remove", added["id"])
    assert again.returncode == 1
    assert "no subscription" in again.stderr
    assert added["id"] not in [s["id"] for s in json.loads(cli(worker, "list").stdout)["subscriptions"]]


@pytest.fixture(scope="module")
def patient() -> Iterator[Worker]:
    """A worker that waits long for webhooks and delivers at most 2 alerts at once."""
    w = Worker("subs-patient", env={"EFFORTPULSE_WEBHOOK_TIMEOUT": "20s", "EFFORTPULSE_DELIVERY_CONCURRENCY": "2"})
    w.start()
    try:
        yield w
    finally:
        w.close()


def test_an_alert_is_acked_only_once_its_delivery_ended(patient: Worker, receiver: Receiver) -> None:
    """While a webhook is still answering, well past the 1 s commit interval, the alert's offset is
    not committed: a crash now would deliver it again (at-least-once). Once the answer came, it is."""
    w = patient
    code, sub = call(w, "POST", "/subscriptions", {"name": "slow", "target": webhook(receiver, "/slow/6/ack", "s")})
    assert code == 201
    try:
        w.produce([detractor("ack-1", "t-ack", 2)])
        wait_until(lambda: receiver.to("/slow/6/ack"), timeout=30, what="the try")
        time.sleep(3)  # an early ack would be committed by now
        assert not committed_to_end(w, w.topics["alerts"])
        wait_until(lambda: committed_to_end(w, w.topics["alerts"]), timeout=15, what="the ack after the answer")
        assert [a["customer_id"] for a in verified(receiver.to("/slow/6/ack"), "s")] == ["ack-1"]
    finally:
        call(w, "DELETE", f"/subscriptions/{sub['id']}")


def test_at_the_concurrency_limit_alerts_wait_their_turn_and_events_go_on(patient: Worker, receiver: Receiver) -> None:
    code, sub = call(w := patient, "POST", "/subscriptions",
                     {"name": "many", "target": webhook(receiver, "/slow/0.7/many", "s")})  # fmt: skip
    assert code == 201
    try:
        w.produce([detractor(f"many-{i}", "t-many", 2) for i in range(8)])
        w.produce([event(utcnow(), "customer.churned", "many-after")])
        wait_until(lambda: call(w, "GET", "/customers/many-after")[0] == 200, timeout=10, what="events to go on")
        assert len(receiver.to("/slow/0.7/many")) < 8  # two at a time, 0.7 s each
        wait_until(lambda: len(receiver.to("/slow/0.7/many")) >= 8, timeout=30, what="all 8, two at a time")
        wait_until(lambda: committed_to_end(w, w.topics["alerts"]), timeout=15, what="every alert acked")
        time.sleep(0.5)
        hits = receiver.to("/slow/0.7/many")
        assert sorted(a["customer_id"] for a in verified(hits, "s")) == sorted(f"many-{i}" for i in range(8))
        arrived = sorted(h.at for h in hits)
        assert all(later - earlier > 0.6 for earlier, later in zip(arrived, arrived[2:], strict=False))
    finally:
        call(w, "DELETE", f"/subscriptions/{sub['id']}")
