"""A worker killed with SIGKILL in the middle of a stream loses nothing and applies nothing twice."""

from __future__ import annotations

import json
import random
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.events import event_adapter
from streams import codec
from streams.journey import CustomerState, apply_event
from streams.kafka import ensure_topics
from streams.rules import Rules
from streams.settings import Settings
from tests.integration.harness import Worker, redis_client, ts, wait_until

CHANNELS = ["phone", "chat", "email", "messaging"]


def journeys(customers: int, seed: int) -> list[dict[str, Any]]:
    """Deterministic journeys: each customer has 1–3 cases of 1–4 contacts with transfers, holds,
    repeated information and unresolved ends, so a lost or doubled event changes the state."""
    rng = random.Random(seed)
    base = datetime(2026, 11, 1, tzinfo=UTC)
    out: list[dict[str, Any]] = []
    n = 0

    def ev(t: datetime, type_: str, cust: str, **kw: Any) -> None:
        nonlocal n
        n += 1
        out.append({"event_id": f"k{seed}-{n}", "type": type_, "occurred_at": ts(t), "customer_id": cust, **kw})

    for c in range(customers):
        cust = f"kill-{seed}-{c}"
        t = base + timedelta(minutes=rng.randrange(0, 20_000))
        for k in range(rng.randint(1, 3)):
            case = f"{cust}-case{k}"
            for i in range(rng.randint(1, 4)):
                contact = f"{case}-c{i}"
                t += timedelta(hours=rng.randint(1, 30))
                ev(t, "contact.started", cust, contact_id=contact, channel=rng.choice(CHANNELS), case_id=case)
                for j in range(rng.randint(0, 3)):
                    kind = rng.choice(["contact.transferred", "contact.held", "contact.info_repeated"])
                    extra = {"hold_seconds": rng.choice([30, 90, 200])} if kind == "contact.held" else {}
                    ev(t + timedelta(minutes=j + 1), kind, cust, contact_id=contact, **extra)
                ev(t + timedelta(minutes=9), "contact.ended", cust, contact_id=contact, resolved=rng.random() < 0.4)
    # interleave customers the way a live stream does, keeping each customer's order
    rng2 = random.Random(seed + 1)
    by_customer: dict[str, list[dict[str, Any]]] = {}
    for e in out:
        by_customer.setdefault(e["customer_id"], []).append(e)
    queues = list(by_customer.values())
    mixed = []
    while queues:
        q = rng2.choice(queues)
        mixed.append(q.pop(0))
        if not q:
            queues.remove(q)
    return mixed


def expected_states(events: list[dict[str, Any]], rules: Rules) -> tuple[dict[str, CustomerState], set[str]]:
    """Apply the events in memory with the same pure core: the state Redis must end up with."""
    states: dict[str, CustomerState] = {}
    alert_ids: set[str] = set()
    for e in events:
        state = states.setdefault(e["customer_id"], CustomerState(e["customer_id"]))
        alert_ids.update(a.alert_id for a in apply_event(state, event_adapter.validate_python(e), rules).alerts)
    return states, alert_ids


def processed(worker: Worker) -> float:
    try:
        code, text = worker.http("GET", "/metrics")
    except OSError:
        return 0
    return sum(float(v) for v in re.findall(r"^effortpulse_events_processed_total\{[^}]*\} (\S+)$", text, re.M))


def test_sigkill_in_the_middle_of_a_stream_loses_nothing_and_applies_nothing_twice() -> None:
    events = journeys(customers=2500, seed=7)
    expected, expected_alerts = expected_states(events, Rules())
    assert len(events) > 15_000 and len(expected_alerts) > 100

    first = Worker("kill").start()
    try:
        first.produce(events[: len(events) // 2])
        wait_until(lambda: processed(first) >= len(events) // 6, timeout=120, every=0.05, what="a sixth applied")
        first.produce(events[len(events) // 2 :])
        wait_until(lambda: processed(first) >= len(events) // 3, timeout=120, every=0.05, what="a third applied")
        killed_at = processed(first)
        first.kill()
    finally:
        first.close()

    # the same app id and topics: the new worker resumes from the last committed offsets
    second = first.successor().start()
    try:
        r = redis_client()
        keys = {cid: f"{first.app_id}:customer:{{{cid}}}" for cid in expected}

        def all_applied() -> bool:
            pipe = r.pipeline(transaction=False)
            for key in keys.values():
                pipe.hget(key, "s")
            blobs = pipe.execute()
            return all(
                b is not None and codec.decode(b).events == expected[c].events for c, b in zip(keys, blobs, strict=True)
            )

        wait_until(all_applied, timeout=240, every=1, what="every event applied after the restart")
        pipe = r.pipeline(transaction=False)
        for key in keys.values():
            pipe.hget(key, "s")
        got = {cid: codec.decode(b) for cid, b in zip(keys, pipe.execute(), strict=True)}
        mismatched = [cid for cid in expected if got[cid] != expected[cid]]
        assert not mismatched, f"{len(mismatched)} customers differ from the in-memory run, e.g. {mismatched[:3]}"

        alerts = second.read("alerts", count=len(expected_alerts), idle=4, timeout=120)
        ids = [a["alert_id"] for a in alerts]
        assert set(ids) == expected_alerts
        assert len(ids) == len(set(ids)), "an alert was produced twice"
        assert 0 < killed_at < len(events)
    finally:
        second.close()


def test_alerts_left_in_the_outbox_by_a_crash_are_produced_once_by_the_next_owner() -> None:
    w = Worker("outbox")
    r = redis_client()
    emitted = ts(datetime.now(UTC))
    left = {"alert_id": "left-behind", "type": "effort.high", "severity": "warning", "customer_id": "c-left",
            "case_id": "k", "contact_id": None, "segment": None, "segments": [], "score": 60, "threshold": 60,
            "reasons": [], "trigger_event_id": "e1", "occurred_at": emitted, "emitted_at": emitted, "due_at": None}  # fmt: skip
    already = {**left, "alert_id": "already-sent", "customer_id": "c-sent"}
    # the crash came after `already` reached the alerts topic but before the outbox was cleared
    ensure_topics(Settings(**{k[12:].lower(): v for k, v in w.env.items() if k.startswith("EFFORTPULSE_")}))
    w.produce([already], topic="alerts")
    r.hset(f"{w.app_id}:outbox:0", mapping={"left-behind": json.dumps(left), "already-sent": json.dumps(already)})
    w.start()
    try:
        wait_until(lambda: not r.exists(f"{w.app_id}:outbox:0"), what="the outbox to be emptied")
        alerts = w.read("alerts", idle=2)
        assert sorted(a["alert_id"] for a in alerts) == ["already-sent", "left-behind"]
    finally:
        w.close()
