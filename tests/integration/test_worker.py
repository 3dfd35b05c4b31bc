"""The worker against the real broker and Redis: journey state, duplicates, DLQ, health, CLI."""

from __future__ import annotations

import base64
import json
import re
import subprocess

from tests.integration.harness import BIN, ROOT, Worker, event, redis_client, timedelta, utcnow, wait_until


def reference_journey(customer: str, case: str) -> list[dict]:
    t = utcnow() - timedelta(days=3)
    return [
        event(t, "contact.started", customer, contact_id=f"{customer}-r1", channel="chat", case_id=case,
              reason="refund", agent_id="a1", team_id="billing"),
        event(t + timedelta(minutes=9), "contact.ended", customer, contact_id=f"{customer}-r1", resolved=False),
        event(t + timedelta(hours=20), "contact.started", customer, contact_id=f"{customer}-r2", channel="email",
              case_id=case, agent_id="a2", team_id="billing"),
        event(t + timedelta(hours=21), "contact.ended", customer, contact_id=f"{customer}-r2", resolved=False),
        event(t + timedelta(hours=40), "contact.started", customer, contact_id=f"{customer}-r3", channel="phone",
              case_id=case, agent_id="a3", team_id="billing", queue_wait_seconds=30),
        event(t + timedelta(hours=40, minutes=2), "contact.transferred", customer, contact_id=f"{customer}-r3",
              from_agent_id="a3", to_agent_id="a4", from_team_id="billing", to_team_id="tech"),
        event(t + timedelta(hours=40, minutes=4), "contact.info_repeated", customer, contact_id=f"{customer}-r3",
              info="order number"),
        event(t + timedelta(hours=40, minutes=9), "contact.ended", customer, contact_id=f"{customer}-r3",
              resolved=True),
    ]  # fmt: skip


def test_journey_is_kept_exactly_and_duplicates_change_nothing(worker: Worker) -> None:
    events = reference_journey("w-ref", "w-ref-case")
    worker.produce(events + events[:3])  # the last three are duplicates (same event_id)
    doc = wait_until(lambda: (d := worker.customer("w-ref")) and d["events"] == 8 and d, what="8 events applied")
    t0 = events[0]["occurred_at"]
    assert doc["customer_id"] == "w-ref"
    assert len(doc["cases"]) == 1
    case = doc["cases"][0]
    assert case["case_id"] == "w-ref-case"
    assert case["status"] == "resolved"
    assert case["reason"] == "refund"
    assert case["effort"] == 100
    assert case["drivers"] == {
        "repeat_contact": 30, "channel_switch": 30, "transfer": 10, "repeated_info": 10, "unresolved": 20,
        "policy_friction": 0, "hassle": 0, "scripted_service": 0, "self_service_failure": 0,
    }  # fmt: skip
    assert [r["driver"] for r in case["reasons"]] == [
        "repeat_contact", "channel_switch", "unresolved", "transfer", "repeated_info"
    ]  # fmt: skip
    assert [c["contact_id"] for c in case["contacts"]] == ["w-ref-r1", "w-ref-r2", "w-ref-r3"]
    assert [c["channel"] for c in case["contacts"]] == ["chat", "email", "phone"]
    assert case["contacts"][0]["started_at"] == t0
    assert case["contacts"][0]["resolved"] is False
    assert case["contacts"][2]["agents"] == ["a3", "a4"]
    assert case["contacts"][2]["teams"] == ["billing", "tech"]
    assert case["contacts"][2]["repeated_info"] == ["order number"]
    # nothing more arrives for the duplicates
    worker.produce(events)
    alerts = worker.read("alerts", idle=3)
    mine = [a for a in alerts if a["customer_id"] == "w-ref" and a["type"] == "effort.high"]
    assert [(a["type"], a["severity"], a["case_id"]) for a in mine] == [("effort.high", "critical", "w-ref-case")]
    assert worker.customer("w-ref")["events"] == 8


def test_every_invalid_kind_goes_to_the_dlq_with_its_reason_and_the_worker_goes_on(worker: Worker) -> None:
    t = utcnow()
    base = {"event_id": "x", "occurred_at": "2026-11-20T10:00:00Z", "customer_id": "w-bad"}
    not_utf8 = b'{"event_id": "\xff\xfe"}'
    big = json.dumps({**base, "type": "customer.churned", "pad": "x" * (70 * 1024)}).encode()
    bad = [
        (b"w-bad", not_utf8, "not UTF-8"),
        (b"w-bad", b"{not json", "Invalid JSON"),
        (b"w-bad", b"[1, 2]", "Input should be an object"),
        (b"w-bad", big, "over the limit of 65536 bytes"),
        (b"w-bad", json.dumps({**base, "type": "contact.teleported"}).encode(), "does not match any of the expected tags"),
        (b"w-bad", json.dumps({**base, "type": "contact.started", "channel": "chat"}).encode(), "contact_id: Field required"),
        (b"w-bad", json.dumps({**base, "type": "contact.ended", "contact_id": "c", "resolved": "yes"}).encode(),
         "resolved: Input should be a valid boolean"),
        (b"w-bad", json.dumps({**base, "type": "survey.responded", "nps": 11}).encode(),
         "nps: Input should be less than or equal to 10"),
        (b"w-bad", json.dumps({**base, "type": "customer.churned", "occurred_at": "2026-11-20T10:00:00"}).encode(),
         "occurred_at: Timestamp has no offset"),
    ]  # fmt: skip
    worker.produce_raw((k, v) for k, v, _ in bad)
    good = event(t, "customer.churned", "w-after-bad")
    worker.produce([good])
    dlq = worker.read_records("dlq", count=len(bad))
    assert len(dlq) == len(bad)
    by_payload = {}
    for key, doc in dlq:
        assert key == b"w-bad"
        assert set(doc) - {"payload_encoding"} == {
            "error",
            "errors",
            "topic",
            "partition",
            "offset",
            "received_at",
            "payload",
        }
        assert doc["topic"] == worker.topics["events"]
        assert "\n" not in doc["error"]
        raw = base64.b64decode(doc["payload"]) if doc.get("payload_encoding") == "base64" else doc["payload"].encode()
        by_payload[raw] = doc
    for _key, value, expected in bad:
        doc = by_payload[value]
        assert expected in doc["error"], (expected, doc["error"])
        assert doc["errors"] and all({"type", "loc", "msg"} <= set(e) for e in doc["errors"])
    assert by_payload[not_utf8]["payload_encoding"] == "base64"
    assert sorted(d["offset"] for _, d in dlq) == sorted({d["offset"] for _, d in dlq})
    wait_until(lambda: worker.customer("w-after-bad"), what="the valid event after the bad ones to be applied")


def test_delete_erases_the_customer_and_its_index_entries(worker: Worker) -> None:
    t = utcnow() - timedelta(hours=1)
    worker.produce([event(t, "contact.started", "w-del", contact_id="w-del-1", channel="chat"),
                    event(t, "contact.started", "w-del", contact_id="w-del-0", channel="phone", case_id="w-del-k")])  # fmt: skip
    wait_until(lambda: (d := worker.customer("w-del")) and d["events"] == 2, what="customer w-del")
    r = redis_client()
    key = f"{worker.app_id}:customer:{{w-del}}"
    assert r.exists(key)
    assert r.zscore(f"{worker.app_id}:open_cases", "w-del\x1fw-del-1") == 0
    assert r.zscore(f"{worker.app_id}:open_cases", "w-del\x1fw-del-k") == 0
    code, _ = worker.http("DELETE", "/customers/w-del")
    assert code == 204
    assert worker.customer("w-del") is None
    assert not r.exists(key)
    assert r.zscore(f"{worker.app_id}:open_cases", "w-del\x1fw-del-1") is None
    assert r.zscore(f"{worker.app_id}:open_cases", "w-del\x1fw-del-k") is None
    assert worker.http("GET", "/customers/w-del")[0] == 404
    # the worker holds the customer in its cache; a new event after the DELETE starts afresh
    worker.produce([event(t + timedelta(minutes=5), "contact.started", "w-del", contact_id="w-del-2", channel="email")])
    doc = wait_until(lambda: worker.customer("w-del"), what="w-del back after a new event")
    assert doc["events"] == 1
    assert [c["case_id"] for c in doc["cases"]] == ["w-del-2"]


def test_state_keys_carry_the_customer_hash_tag_and_expire_after_retention(worker: Worker) -> None:
    t = utcnow() - timedelta(days=10)
    worker.produce([event(t, "contact.started", "w-ttl", contact_id="w-ttl-1", channel="chat")])
    wait_until(lambda: worker.customer("w-ttl"), what="customer w-ttl")
    r = redis_client()
    keys = [k.decode() for k in r.scan_iter(match=f"{worker.app_id}:*w-ttl*")]
    assert keys == [f"{worker.app_id}:customer:{{w-ttl}}"]
    ttl_days = r.pttl(keys[0]) / 1000 / 86400
    assert 389.9 < ttl_days <= 390.0  # 400 days after the last event, which was 10 days ago


def test_health_answers_ok_when_kafka_and_redis_answer(worker: Worker) -> None:
    assert worker.http("GET", "/health") == (200, {"status": "ok"})


def test_health_says_which_service_is_missing() -> None:
    w = Worker("noredis", env={"EFFORTPULSE_REDIS_URL": "redis://127.0.0.1:1/0"}).start(healthy=False)
    try:
        code, doc = wait_until(lambda: _try_http(w, "/health"), what="/health to answer")
        assert code == 503
        assert doc["status"] == "unavailable"
        assert "redis" in doc and "kafka" not in doc
    finally:
        w.close()


def _try_http(w: Worker, path: str):
    try:
        return w.http("GET", path)
    except OSError:
        return None


def test_cli_produce_sends_lines_keyed_by_customer_and_alerts_prints_them(worker: Worker) -> None:
    events = reference_journey("w-cli", "w-cli-case")
    lines = "".join(json.dumps(e) + "\n" for e in events) + "\n{not json\n"
    r = subprocess.run([BIN / "effortpulse", "produce", "-"], input=lines, text=True, capture_output=True,
                       env=worker.env, cwd=ROOT, timeout=60)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"sent 9 records to {worker.topics['events']} (1 blank lines skipped)"
    keys = {
        k for k, v in worker.read_records("events", idle=2) if isinstance(v, dict) and v.get("customer_id") == "w-cli"
    }
    assert keys == {b"w-cli"}
    wait_until(lambda: (d := worker.customer("w-cli")) and d["events"] == 8, what="w-cli applied")
    out = subprocess.run([BIN / "effortpulse", "alerts", "--from-beginning", "--timeout", "3"], text=True,
                         capture_output=True, env=worker.env, cwd=ROOT, timeout=60)  # fmt: skip
    assert out.returncode == 0, out.stderr
    alerts = [json.loads(line) for line in out.stdout.splitlines()]
    assert [
        (a["type"], a["severity"]) for a in alerts if a["customer_id"] == "w-cli" and a["type"] == "effort.high"
    ] == [("effort.high", "critical")]
    cust = subprocess.run([BIN / "effortpulse", "customer", "w-cli"], text=True, capture_output=True,
                          env=worker.env, cwd=ROOT, timeout=60)  # fmt: skip
    assert cust.returncode == 0, cust.stderr
    assert json.loads(cust.stdout) == worker.customer("w-cli")


def test_metrics_are_served_in_prometheus_text_format(worker: Worker) -> None:
    worker.produce([event(utcnow(), "customer.churned", "w-metrics")])
    wait_until(lambda: worker.customer("w-metrics"), what="w-metrics applied")
    code, text = worker.http("GET", "/metrics")
    assert code == 200
    assert 'effortpulse_events_processed_total{type="customer.churned"}' in text


def test_an_effort_alert_reaches_the_alerts_topic_within_two_seconds_of_its_event(worker: Worker) -> None:
    events = reference_journey("w-fast", "w-fast-case")
    worker.produce(events)
    alerts = wait_until(
        lambda: [
            (k, a, ts_)
            for k, a, ts_ in worker.read_timed("alerts", idle=0.5)
            if a["customer_id"] == "w-fast" and a["type"] == "effort.high"
        ],
        what="the w-fast alert",
    )
    assert len(alerts) == 1
    key, alert, alert_ms = alerts[0]
    assert key == b"w-fast"
    assert alert["trigger_event_id"] == events[4]["event_id"]  # the third contact carries it past 80
    trigger_ms = next(
        ts_
        for _, e, ts_ in worker.read_timed("events", idle=0.5)
        if isinstance(e, dict) and e.get("event_id") == alert["trigger_event_id"]
    )
    assert 0 <= alert_ms - trigger_ms < 2000


def test_churn_risk_is_shown_with_reasons_and_alerts_through_the_broker(worker: Worker) -> None:
    t = utcnow() - timedelta(hours=5)
    events = [event(t, "contact.started", "w-churn", contact_id="w-churn-1", channel="phone", case_id="w-churn-k")]
    events += [
        event(t + timedelta(minutes=i), "contact.transferred", "w-churn", contact_id="w-churn-1") for i in range(1, 9)
    ]
    events += [event(t + timedelta(hours=1), "survey.responded", "w-churn", nps=3, contact_id="w-churn-1")]
    worker.produce(events)
    doc = wait_until(lambda: (d := worker.customer("w-churn")) and d["events"] == 10 and d, what="w-churn applied")
    assert doc["churn"]["risk"] >= 0.7
    assert [r["driver"] for r in doc["churn"]["reasons"]][:2] == ["open_case_effort", "detractor"]
    assert doc["last_survey"]["nps"] == 3 and doc["last_survey"]["nps_category"] == "detractor"
    alerts = wait_until(
        lambda: [
            a for a in worker.read("alerts", idle=0.5) if a["customer_id"] == "w-churn" and a["type"] == "churn.risk"
        ],
        what="the churn.risk alert",
    )
    assert alerts[-1]["score"] == doc["churn"]["risk"]
    assert alerts[-1]["trigger_event_id"] == events[-1]["event_id"]
    assert alerts[-1]["segments"] == ["channel:phone"]


def test_the_live_churn_auc_counts_churners_and_customers_still_there_after_the_horizon(worker: Worker) -> None:
    t = utcnow() - timedelta(days=200)
    churner = [event(t, "contact.started", "w-auc-1", contact_id="w-auc-1a", channel="phone", case_id="k1")]
    churner += [
        event(t + timedelta(minutes=i), "contact.transferred", "w-auc-1", contact_id="w-auc-1a") for i in range(1, 9)
    ]
    churner += [event(t + timedelta(days=3), "customer.churned", "w-auc-1")]
    stayer = [event(t, "contact.started", "w-auc-2", contact_id="w-auc-2a", channel="chat", case_id="k2"),
              event(t + timedelta(minutes=5), "contact.ended", "w-auc-2", contact_id="w-auc-2a", resolved=True),
              event(t + timedelta(days=100), "contact.started", "w-auc-2", contact_id="w-auc-2b", channel="chat")]  # fmt: skip
    worker.produce(churner + stayer)

    def auc() -> float | None:
        _, text = worker.http("GET", "/metrics")
        found = dict(re.findall(r"^(effortpulse_churn_(?:roc_auc|labelled_customers)) (\S+)$", text, re.M))
        return (
            found
            if found.get("effortpulse_churn_labelled_customers", "0") != "0.0"
            and "nan" not in found.get("effortpulse_churn_roc_auc", "nan")
            else None
        )

    found = wait_until(auc, what="the churn AUC gauge")
    assert float(found["effortpulse_churn_roc_auc"]) == 1.0
    assert float(found["effortpulse_churn_labelled_customers"]) >= 2


def test_open_cases_are_listed_by_effort_highest_first(worker: Worker) -> None:
    t = utcnow() - timedelta(hours=3)
    events = [event(t, "contact.started", "w-q1", contact_id="w-q1-a", channel="chat", case_id="w-q1-k", team_id="t1")]
    events += [event(t + timedelta(minutes=i), "contact.transferred", "w-q1", contact_id="w-q1-a") for i in range(1, 4)]
    events += [event(t, "contact.started", "w-q2", contact_id="w-q2-a", channel="phone", case_id="w-q2-k"),
               event(t + timedelta(minutes=1), "contact.transferred", "w-q2", contact_id="w-q2-a"),
               event(t, "contact.started", "w-q3", contact_id="w-q3-a", channel="phone", case_id="w-q3-k"),
               event(t + timedelta(minutes=9), "contact.ended", "w-q3", contact_id="w-q3-a", resolved=True)]  # fmt: skip
    worker.produce(events)
    wait_until(lambda: (d := worker.customer("w-q3")) and d["events"] == 2, what="w-q3 applied")
    code, doc = worker.http("GET", "/cases/open?limit=1000")
    assert code == 200
    mine = [(c["customer_id"], c["case_id"], c["effort"]) for c in doc["cases"] if c["customer_id"].startswith("w-q")]
    assert mine == [("w-q1", "w-q1-k", 30), ("w-q2", "w-q2-k", 10)]  # the resolved case is not in the queue
    assert worker.http("GET", "/cases/open?limit=0")[0] == 400
