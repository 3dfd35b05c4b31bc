"""Two workers with different app ids and topics on one Kafka and one Redis never touch each other."""

from __future__ import annotations

from kafka import KafkaAdminClient

from streams.kafka import ensure_topics
from streams.settings import Settings
from tests.integration.harness import BOOTSTRAP, Worker, event, redis_client, timedelta, utcnow, wait_until


def test_two_differently_configured_workers_are_isolated_and_start_from_the_earliest_record() -> None:
    a, b = Worker("iso-a"), Worker("iso-b", env={"EFFORTPULSE_TOPIC_PARTITIONS": "2"})
    t = utcnow() - timedelta(hours=2)
    try:
        # records produced before either worker ever ran: a new group starts from the earliest
        for w in (a, b):
            ensure_topics(Settings(**{k[12:].lower(): v for k, v in w.env.items() if k.startswith("EFFORTPULSE_")}))
        a.produce([event(t, "contact.started", "same-id", contact_id="a-1", channel="chat")])
        b.produce([event(t, "contact.started", "same-id", contact_id="b-1", channel="phone"),
                   event(t + timedelta(minutes=1), "contact.started", "same-id", contact_id="b-2", channel="email")])  # fmt: skip
        a.start()
        b.start()
        doc_a = wait_until(lambda: a.customer("same-id"), what="customer in a")
        doc_b = wait_until(lambda: (d := b.customer("same-id")) and d["events"] == 2 and d, what="customer in b")
        assert [c["contact_id"] for case in doc_a["cases"] for c in case["contacts"]] == ["a-1"]
        assert [c["contact_id"] for case in doc_b["cases"] for c in case["contacts"]] == ["b-1", "b-2"]
        r = redis_client()
        keys_a = {k.decode() for k in r.scan_iter(match=f"{a.app_id}:*")}
        keys_b = {k.decode() for k in r.scan_iter(match=f"{b.app_id}:*")}
        assert f"{a.app_id}:customer:{{same-id}}" in keys_a and f"{b.app_id}:customer:{{same-id}}" in keys_b
        assert keys_a.isdisjoint(keys_b)
        admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
        try:
            described = {t["name"]: len(t["partitions"]) for t in admin.describe_topics(list(b.topics.values()))}
        finally:
            admin.close()
        assert described == dict.fromkeys(b.topics.values(), 2)  # created with the configured partitions
        # deleting in one leaves the other alone
        assert a.http("DELETE", "/customers/same-id")[0] == 204
        assert a.customer("same-id") is None
        assert b.customer("same-id")["events"] == 2
    finally:
        a.close()
        b.close()
