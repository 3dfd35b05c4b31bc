"""How long an /insights answer takes for a segment with 100,000 cases (issue: under 100 ms).

Writes the insights aggregates of N cases (EFFORTPULSE_BENCH_INSIGHT_CASES, default 100,000),
spread over 60 days, through the same code the worker writes them with (insights.contribution
→ Increments → the write script), then times queries.insights for several windows. Prints one
JSON object; run by `make bench` (tests/perf/bench.py), or alone:
`.venv/bin/python -m tests.perf.bench_insights`.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import time
import uuid
from typing import Any

from streams import insights, queries
from streams.app import redis_client
from streams.cases import Case, Contact
from streams.rules import Rules
from streams.settings import Settings
from streams.state import Increments, StateStore
from streams.times import DAY, MINUTE, iso

CASES = int(os.environ.get("EFFORTPULSE_BENCH_INSIGHT_CASES", "100000"))


def synthetic_cases(n: int, now_us: int, seed: int = 3) -> list[tuple[Case, dict[str, Contact]]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        start = now_us - rng.randrange(0, 60 * DAY // MINUTE) * MINUTE
        contacts: dict[str, Contact] = {}
        case = Case(f"k{i}")
        for j in range(rng.choice([1, 1, 1, 2, 3])):
            c = Contact(f"c{i}-{j}", case_id=case.case_id, channel=rng.choice(["phone", "chat", "email"]),
                        started_at=start + j * 3600 * 1_000_000, reason=rng.choice(["refund", "delivery", "invoice"]),
                        transfers=rng.choice([0, 0, 1, 2]), ever_unresolved=rng.random() < 0.3)  # fmt: skip
            c.add_team(c.started_at or 0, "bench-team")  # every case in the one segment measured
            c.add_agent(c.started_at or 0, f"a{rng.randrange(50)}")
            contacts[c.contact_id] = c
            case.add_contact(c)
        if rng.random() < 0.6:
            case.resolved_marks.append(start + 7200 * 1_000_000)
        out.append((case, contacts))
    return out


async def run() -> dict[str, Any]:
    settings = Settings(app_id=f"bench-ins-{uuid.uuid4().hex[:6]}")
    rules = Rules()
    client = redis_client(settings)
    store = StateStore(client, settings.app_id)
    now = time.time_ns() // 1000
    try:
        started = time.perf_counter()
        cases = synthetic_cases(CASES, now)
        for i in range(0, len(cases), 2000):
            inc = Increments(settings.app_id, rules.retention_us)
            for case, contacts in cases[i : i + 2000]:
                inc.insights(insights.delta(None, insights.contribution(case, contacts, rules)))
            await store.write([], inc)
        load_s = time.perf_counter() - started
        timings: dict[str, float] = {}
        answer: dict[str, Any] = {}
        for window in ("7d", "30d", "60d", "400d"):
            samples = []
            for _ in range(20):
                t = time.perf_counter()
                answer = await queries.insights(store, settings, "team:bench-team", window, iso(now))
                samples.append((time.perf_counter() - t) * 1000)
            timings[window] = round(statistics.median(samples), 2)
        assert answer["cases"] == CASES, answer["cases"]
        return {"insight_cases": CASES, "insight_load_s": round(load_s, 1),
                "insight_answer_ms_p50": timings, "insight_answer_ms_max": round(max(timings.values()), 2)}  # fmt: skip
    finally:
        keys = [k async for k in client.scan_iter(match=f"{settings.app_id}:*", count=5000)]
        for i in range(0, len(keys), 5000):
            await client.delete(*keys[i : i + 5000])
        await client.aclose()


def main() -> dict[str, Any]:
    result = asyncio.run(run())
    print(f"[bench] insights over {CASES:,} cases of one segment: median answer {result['insight_answer_ms_p50']} ms")
    return result


if __name__ == "__main__":
    print(json.dumps(main()))
