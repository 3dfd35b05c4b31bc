"""`make bench`: how fast effortpulse is on this machine, against the real broker and Redis.

One run measures, on a fresh topic loaded with N simulated events (EFFORTPULSE_BENCH_EVENTS,
default 500,000):
  (a) raw_consume_eps   aiokafka alone reading the topic, no processing: the ceiling;
  (b) e2e_eps           one worker, from its first event applied to its last, state checked complete;
  (e) two_workers_eps   two workers in one consumer group, same topic, state equal to (b)'s;
  (c) alert latency     p50 / p99 from a triggering record's Kafka timestamp to its alert's,
                        with events produced at a steady 2,000 events/s (EFFORTPULSE_BENCH_RATE);
  (d) redis_bytes_per_customer   MEMORY USAGE of a customer's state, averaged;
  and the /insights answer time for one segment of 100,000 cases (tests/perf/bench_insights.py).
The last line printed is one JSON object with those figures; it is also saved under
.local/bench/. Topics and Redis keys of the run are deleted at the end.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import statistics
import sys
import threading
import time
import uuid
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from streams import codec
from streams.simulate import generate
from tests.integration.harness import BOOTSTRAP, ROOT, Worker, redis_client, wait_until
from tests.perf import bench_insights

N = int(os.environ.get("EFFORTPULSE_BENCH_EVENTS", "500000"))
RATE = float(os.environ.get("EFFORTPULSE_BENCH_RATE", "2000"))
LATENCY_SECONDS = float(os.environ.get("EFFORTPULSE_BENCH_LATENCY_SECONDS", "30"))
PARTITIONS = int(os.environ.get("EFFORTPULSE_BENCH_PARTITIONS", "4"))
RUN = uuid.uuid4().hex[:6]


def say(text: str) -> None:
    print(f"[bench] {text}", flush=True)


def events_for(n: int, seed: int) -> list[dict[str, Any]]:
    sim = generate(max(1, n // 9 + 1), seed, end_us=time.time_ns() // 1000)
    return sim.events[:n]


def create_topics(*names: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    try:
        admin.create_topics([NewTopic(name, PARTITIONS, 1) for name in names], timeout_ms=30_000)
    finally:
        admin.close()


def delete_topics(names: list[str]) -> None:
    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    try:
        existing = set(admin.list_topics())
        gone = [n for n in names if n in existing]
        if gone:
            admin.delete_topics(gone, timeout_ms=30_000)
    finally:
        admin.close()


async def load(topic: str, events: list[dict[str, Any]]) -> float:
    """Produce the events (key = customer_id); returns events per second of the load."""
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, linger_ms=20, max_batch_size=512 * 1024, acks=1)
    await producer.start()
    started = time.perf_counter()
    try:
        futures = []
        for i, e in enumerate(events):
            futures.append(await producer.send(topic, json.dumps(e).encode(), key=e["customer_id"].encode()))
            if len(futures) >= 20_000:
                await asyncio.gather(*futures)
                futures.clear()
                say(f"loaded {i + 1:,} / {len(events):,}")
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return len(events) / (time.perf_counter() - started)


async def raw_consume(topic: str, n: int) -> float:
    """(a) aiokafka alone: from the first record to the n-th, no processing."""
    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest", max_partition_fetch_bytes=4 * 1024 * 1024)  # fmt: skip
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        seen = 0
        first = None
        while seen < n:
            batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for records in batch.values():
                if records and first is None:
                    first = time.perf_counter()
                seen += len(records)
        assert first is not None
        return n / (time.perf_counter() - first)
    finally:
        await consumer.stop()


def counted(worker: Worker) -> float:
    """Records the worker has finished: applied, duplicates and dead letters."""
    try:
        _, text = worker.http("GET", "/metrics")
    except OSError:
        return 0
    total = 0.0
    for name in ("effortpulse_events_processed_total", "effortpulse_events_invalid_total",
                 "effortpulse_events_duplicate_total"):  # fmt: skip
        total += sum(float(v) for v in re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M))
    return total


def run_workers(name: str, topic: str, n: int, count: int) -> tuple[float, str]:
    """Start `count` workers in one group on `topic`; events per second from first to last applied."""
    app_id = f"bench-{name}-{RUN}"
    env = {"EFFORTPULSE_EVENTS_TOPIC": topic, "EFFORTPULSE_SCORE_GAUGES_INTERVAL": "3600s"}
    workers = [Worker(name, env=env, app_id=app_id) for _ in range(count)]
    for w in workers[1:]:
        w.topics, w.env = workers[0].topics, {**workers[0].env, "EFFORTPULSE_WEB_PORT": str(w.port)}
    try:
        for w in workers:
            w.start(wait=180, healthy=False)
        first = None
        last_report = time.monotonic()
        while True:
            done = sum(counted(w) for w in workers)
            if done and first is None:
                first = time.perf_counter()
            if done >= n:
                elapsed = time.perf_counter() - (first or time.perf_counter())
                return n / elapsed, app_id
            if time.monotonic() - last_report > 5:
                say(f"{name}: {done:,.0f} / {n:,} records")
                last_report = time.monotonic()
            for w in workers:
                if w.proc and w.proc.poll() is not None:
                    raise SystemExit(f"worker exited: {w.log_tail()}")
            time.sleep(0.05)
    finally:
        for w in workers:
            w.close()


def states(app_id: str, customers: list[str]) -> dict[str, Any]:
    r = redis_client()
    pipe = r.pipeline(transaction=False)
    for cid in customers:
        pipe.hget(f"{app_id}:customer:{{{cid}}}", "s")
    return {cid: (codec.decode(b) if b is not None else None) for cid, b in zip(customers, pipe.execute(), strict=True)}


def memory_per_customer(app_id: str, customers: list[str]) -> float:
    r = redis_client()
    sample = customers[:: max(1, len(customers) // 2000)]
    pipe = r.pipeline(transaction=False)
    for cid in sample:
        pipe.memory_usage(f"{app_id}:customer:{{{cid}}}", samples=0)
    sizes = [s for s in pipe.execute() if s]
    return statistics.fmean(sizes)


def latency(topic: str) -> tuple[float, float, int]:
    """(c) a worker fed at a steady RATE; alert latency from the triggering record's timestamp."""
    events = events_for(int(RATE * LATENCY_SECONDS), seed=7)
    app_id = f"bench-lat-{RUN}"
    w = Worker("lat", env={"EFFORTPULSE_EVENTS_TOPIC": topic}, app_id=app_id).start(wait=180)
    sent_ms: dict[str, int] = {}
    try:

        async def pace() -> None:
            producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, linger_ms=1, acks=1)
            await producer.start()
            try:
                start = time.perf_counter()
                pending = []
                for i, e in enumerate(events):
                    due = start + i / RATE
                    delay = due - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    fut = await producer.send(topic, json.dumps(e).encode(), key=e["customer_id"].encode())
                    pending.append((e["event_id"], fut))
                for event_id, fut in pending:
                    sent_ms[event_id] = (await fut).timestamp
            finally:
                await producer.stop()

        say(f"latency: producing {len(events):,} events at {RATE:,.0f}/s")
        asyncio.run(pace())
        wait_until(lambda: counted(w) >= len(events), timeout=120, what="the latency run to be applied")
        alerts = w.read_timed("alerts", idle=2)
        lat = sorted(ts - sent_ms[a["trigger_event_id"]] for _, a, ts in alerts if a.get("trigger_event_id") in sent_ms)
        if not lat:
            return float("nan"), float("nan"), 0
        p50 = lat[len(lat) // 2]
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        return float(p50), float(p99), len(lat)
    finally:
        w.close()


def cleanup(app_ids: list[str], topics: list[str]) -> None:
    r = redis_client()
    for app_id in app_ids:
        keys = list(r.scan_iter(match=f"{app_id}:*", count=5000))
        for i in range(0, len(keys), 5000):
            r.delete(*keys[i : i + 5000])
    delete_topics(topics)


def main() -> int:
    topic, lat_topic = f"bench.{RUN}.events", f"bench.{RUN}.latency"
    app_ids: list[str] = []
    topics = [topic, lat_topic]
    results: dict[str, Any] = {"events": N, "partitions": PARTITIONS}
    try:
        say(f"generating {N:,} simulated events")
        events = events_for(N, seed=42)
        customers = sorted({e["customer_id"] for e in events})
        create_topics(topic, lat_topic)
        results["load_eps"] = round(asyncio.run(load(topic, events)))
        say(f"loaded {N:,} events into {topic} ({results['load_eps']:,}/s)")

        results["raw_consume_eps"] = round(asyncio.run(raw_consume(topic, N)))
        say(f"(a) raw consume: {results['raw_consume_eps']:,} events/s")

        e2e, one = run_workers("one", topic, N, 1)
        app_ids.append(one)
        results["e2e_eps"] = round(e2e)
        single = states(one, customers)
        expected_events = len({e["event_id"] for e in events})
        applied = sum(s.events for s in single.values() if s is not None)
        assert applied == expected_events, f"state incomplete: {applied} events applied of {expected_events}"
        results["ratio"] = round(e2e / results["raw_consume_eps"], 3)
        say(f"(b) one worker: {results['e2e_eps']:,} events/s ({results['ratio']:.0%} of raw); state complete")

        two, pair = run_workers("two", topic, N, 2)
        app_ids.append(pair)
        results["two_workers_eps"] = round(two)
        paired = states(pair, customers)
        differ = [c for c in customers if paired[c] != single[c]]
        assert not differ, f"{len(differ)} customers differ between one and two workers, e.g. {differ[:3]}"
        say(f"(e) two workers: {results['two_workers_eps']:,} events/s; state equal to the one-worker run")

        results["redis_bytes_per_customer"] = round(memory_per_customer(one, customers))
        say(f"(d) Redis: {results['redis_bytes_per_customer']:,} bytes per customer")

        p50, p99, n_alerts = latency(lat_topic)
        app_ids.append(f"bench-lat-{RUN}")
        results.update(alert_latency_p50_ms=p50, alert_latency_p99_ms=p99, latency_alerts=n_alerts)
        say(f"(c) alert latency at {RATE:,.0f} events/s: p50 {p50:.0f} ms, p99 {p99:.0f} ms over {n_alerts} alerts")

        results.update(bench_insights.main())
    finally:
        cleanup(app_ids, topics)
    out = ROOT / ".local" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    say(f"saved {path.relative_to(ROOT)}")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    threading.excepthook = lambda args: None
    sys.exit(main())
