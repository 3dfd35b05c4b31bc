"""Drive real effortpulse workers against the real Kafka and Redis that `make test` starts.

Each Worker gets its own app id, topics and port, so tests never see each other's data.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import redis
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"
BOOTSTRAP = os.environ.get("EFFORTPULSE_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
REDIS_URL = os.environ.get("EFFORTPULSE_REDIS_URL", "redis://127.0.0.1:6379/0")
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ts(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def eid() -> str:
    return uuid.uuid4().hex


def event(t: datetime, type_: str, customer: str, **fields: Any) -> dict[str, Any]:
    return {"event_id": eid(), "type": type_, "occurred_at": ts(t), "customer_id": customer, **fields}


def wait_until(probe: Callable[[], T], timeout: float = 60, every: float = 0.25, what: str = "condition") -> T:
    """Call probe until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        got = probe()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value {got!r}")
        time.sleep(every)


class Worker:
    """One `effortpulse worker` process with isolated app id, topics and port."""

    def __init__(self, name: str, env: dict[str, str] | None = None, app_id: str | None = None) -> None:
        sfx = f"{name}-{uuid.uuid4().hex[:8]}"
        self.app_id = app_id or f"test-{sfx}"
        self.port = free_port()
        self.topics = {
            "events": f"test.{sfx}.events",
            "alerts": f"test.{sfx}.alerts",
            "dlq": f"test.{sfx}.dlq",
            "undelivered": f"test.{sfx}.undelivered",
        }
        self.env = {
            **os.environ,
            "EFFORTPULSE_KAFKA_BOOTSTRAP": BOOTSTRAP,
            "EFFORTPULSE_REDIS_URL": REDIS_URL,
            "EFFORTPULSE_APP_ID": self.app_id,
            "EFFORTPULSE_EVENTS_TOPIC": self.topics["events"],
            "EFFORTPULSE_ALERTS_TOPIC": self.topics["alerts"],
            "EFFORTPULSE_DLQ_TOPIC": self.topics["dlq"],
            "EFFORTPULSE_UNDELIVERED_TOPIC": self.topics["undelivered"],
            "EFFORTPULSE_WEB_PORT": str(self.port),
            **(env or {}),
        }
        self.log_path = Path(tempfile.gettempdir()) / f"effortpulse-{sfx}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._producer: KafkaProducer | None = None

    def successor(self) -> Worker:
        """A new process for the same worker: same app id, topics, port and settings."""
        w = Worker.__new__(Worker)
        w.app_id, w.port, w.topics, w.env = self.app_id, self.port, dict(self.topics), dict(self.env)
        w.log_path = self.log_path.with_suffix(".next.log")
        w.proc, w._producer = None, None
        return w

    # --- life cycle
    def start(self, wait: float = 90, healthy: bool = True) -> Worker:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen(
            [str(BIN / "effortpulse"), "worker"],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if healthy:
            self.wait_ready(wait)
        return self

    def wait_ready(self, wait: float = 90) -> None:
        """Healthy, and the consumer has its partitions (so records produced now are read)."""

        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                code, _ = self.http("GET", "/health")
            except OSError:
                return False
            return code == 200 and "Worker ready" in self.log_path.read_text(errors="replace")

        wait_until(ready, timeout=wait, what=f"worker {self.app_id} to be ready")

    def stop(self) -> int | None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(40)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        return self.proc.returncode if self.proc else None

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, nothing is committed on the way out."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def close(self) -> None:
        self.stop()
        if self._producer is not None:
            self._producer.close()
            self._producer = None

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    # --- HTTP
    def http(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json", **(headers or {})},
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                raw = r.read()
                return r.status, _json_or_text(raw)
        except urllib.error.HTTPError as e:
            return e.code, _json_or_text(e.read())

    def customer(self, customer_id: str) -> dict[str, Any] | None:
        code, doc = self.http("GET", f"/customers/{customer_id}")
        if code == 404:
            return None
        assert code == 200, (code, doc)
        return doc

    # --- Kafka
    @property
    def producer(self) -> KafkaProducer:
        if self._producer is None:
            self._producer = KafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=5)
        return self._producer

    def produce(self, events: Iterable[dict[str, Any]], topic: str = "events") -> int:
        n = 0
        for e in events:
            key = e.get("customer_id")
            self.producer.send(
                self.topics[topic], key=key.encode() if isinstance(key, str) else None, value=json.dumps(e).encode()
            )
            n += 1
        self.producer.flush()
        return n

    def produce_raw(self, records: Iterable[tuple[bytes | None, bytes | None]], topic: str = "events") -> None:
        for key, value in records:
            self.producer.send(self.topics[topic], key=key, value=value)
        self.producer.flush()

    def read(self, topic: str, count: int | None = None, idle: float = 3.0, timeout: float = 60) -> list[Any]:
        """Records of one of the worker's topics as (key, parsed JSON value) pairs, read from the
        beginning until `count` are there (then `idle` more seconds to catch extras) or until idle."""
        return [v for _, v in self.read_records(topic, count, idle, timeout)]

    def read_records(
        self, topic: str, count: int | None = None, idle: float = 3.0, timeout: float = 60
    ) -> list[tuple[bytes | None, Any]]:
        return [(k, v) for k, v, _ in read_topic(self.topics.get(topic, topic), count, idle, timeout)]

    def read_timed(
        self, topic: str, count: int | None = None, idle: float = 3.0, timeout: float = 60
    ) -> list[tuple[bytes | None, Any, int]]:
        """(key, value, Kafka record timestamp in ms) of every record of the topic."""
        return read_topic(self.topics.get(topic, topic), count, idle, timeout)


def read_topic(
    topic: str, count: int | None = None, idle: float = 3.0, timeout: float = 60
) -> list[tuple[bytes | None, Any, int]]:
    consumer = KafkaConsumer(
        bootstrap_servers=BOOTSTRAP, enable_auto_commit=False, group_id=None, auto_offset_reset="earliest"
    )
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        out: list[tuple[bytes | None, Any, int]] = []
        deadline = time.monotonic() + timeout
        last_new = time.monotonic()
        while time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=200)
            for records in batch.values():
                for m in records:
                    out.append((m.key, _json_or_text(m.value), m.timestamp))
                    last_new = time.monotonic()
            reached = count is not None and len(out) >= count
            if (reached or count is None) and time.monotonic() - last_new >= idle:
                break
        if count is not None and len(out) < count:
            raise AssertionError(f"{topic}: expected {count} records, found {len(out)} within {timeout}s")
        return out
    finally:
        consumer.close()


def redis_client() -> redis.Redis:
    return redis.Redis.from_url(REDIS_URL)


def _json_or_text(raw: bytes | None) -> Any:
    if raw is None or not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


__all__ = ["Worker", "event", "eid", "ts", "utcnow", "wait_until", "read_topic", "redis_client", "timedelta"]
