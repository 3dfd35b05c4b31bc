"""One batch of records: decode → load → apply (pure core) → segment rules → write → emit.

The order is what makes delivery trustworthy:
1. customers the worker does not hold are loaded in one round trip and every customer's events
   are applied in arrival order by the pure core (duplicates by event id change nothing);
2. nps.drop is evaluated per segment on the counts Redis holds plus the batch's own answers;
3. all resulting state, counters, index entries and alerts go to Redis in one atomic script
   call — the alerts into an outbox, so a crash after this point cannot lose them;
4. alerts and dead letters are produced to Kafka and acknowledged;
5. only then are the alerts taken out of the outbox and the batch returned, so the caller
   commits its offsets after its state is in Redis (streams.consumer).
A crash anywhere replays the batch: its events are then duplicates (state changes nothing),
and alerts still in the outbox are produced again with the same alert_id.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

import redis.exceptions

from schemas.events import Event
from streams import insights
from streams.alerting import Alert, drop_alert
from streams.cases import OPEN, case_status
from streams.decode import DeadLetter, Record, decode
from streams.journey import CustomerState, apply_event
from streams.rules import Rules
from streams.settings import Settings
from streams.state import (
    CustomerWrite,
    Increments,
    Loaded,
    StateStore,
    expire_at_us,
    index_member,
    open_cases_key,
    outbox_key,
)
from streams.surveys import NPS_STATS, DropCheck, SurveyAnswer, drop_windows, nps_from
from streams.times import DAY, MINUTE, iso

log = logging.getLogger(__name__)
T = TypeVar("T")


class Sink(Protocol):
    """Where records go: `send` queues one and returns an awaitable that resolves once Kafka has it."""

    async def send(self, topic: str, key: bytes | None, value: bytes) -> Awaitable[Any]: ...

    async def alert_ids_since(self, topic: str, since_ms: int) -> set[str]:
        """The alert_id of every alert on `topic` with a record timestamp at or after `since_ms`."""
        ...


def now_us() -> int:
    return time.time_ns() // 1000


@dataclass(slots=True)
class BatchResult:
    """What one batch did, for metrics and logs."""

    records: int = 0
    applied: Counter[str] = field(default_factory=Counter)  # by event type
    duplicates: int = 0
    dead: list[DeadLetter] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    alert_trigger_ms: list[int] = field(default_factory=list)  # Kafka timestamps of the alerts' records
    conflicts: int = 0  # customers written again because their version had moved
    redis_seconds: list[float] = field(default_factory=list)  # duration of each batched Redis call
    answers: list[SurveyAnswer] = field(default_factory=list)  # survey answers applied
    phases: dict[str, float] = field(default_factory=dict)  # seconds spent per phase of the batch
    labels: list[tuple[float, int]] = field(default_factory=list)  # (risk, churned?) of labelled customers
    driver_points: Counter[str] = field(default_factory=Counter)  # effort points gained per driver
    effort: list[float] = field(default_factory=list)  # case efforts after the batch, per touched case


@dataclass(frozen=True, slots=True)
class Item:
    """A valid event of the batch, with its record and its position in the batch."""

    position: int
    record: Record
    event: Event


@dataclass(slots=True)
class _Planned:
    """One customer's events applied to its loaded state, ready to write."""

    write: CustomerWrite | None
    applied: Counter[str]
    duplicates: int
    failed: list[DeadLetter]
    alerts: list[tuple[Record, Alert]]  # (triggering record, alert)
    effort: list[float]
    answers: list[tuple[Item, SurveyAnswer]]  # survey answers applied, for the aggregates
    labels: list[tuple[float, int]]  # churn outcomes that became known
    driver_points: Counter[str]  # effort points each driver gained
    cells: list[insights.Cell]  # changes to the insights aggregates
    commands: list[Sequence[Any]]  # index and outbox writes


class Pipeline:
    """Runs batches against Redis and Kafka. One instance per worker; batches run one at a time."""

    def __init__(self, settings: Settings, store: StateStore, sink: Sink, rules: Rules | None = None) -> None:
        self.settings = settings
        self.rules = rules or settings.rules()
        self.store = store
        self.sink = sink
        self.lock = asyncio.Lock()  # held from the state write until its alerts are out
        self.phases: dict[str, float] = {}

    async def process(self, records: Sequence[Record]) -> BatchResult:
        """Apply a batch; returns once its state is in Redis and its alerts and dead letters in Kafka."""
        result = BatchResult(records=len(records))
        self.phases = result.phases
        clock = time.perf_counter()
        received = now_us()
        by_customer: dict[str, list[Item]] = {}
        for position, record in enumerate(records):
            decoded = decode(record, received)
            if isinstance(decoded, DeadLetter):
                result.dead.append(decoded)
            else:
                by_customer.setdefault(decoded.customer_id, []).append(Item(position, record, decoded))
        clock = self._phase("decode", clock)
        async with self.lock:
            planned, drop_alerts = await self._apply_and_write(by_customer)
            outgoing = [p for plan in planned.values() for p in plan.alerts] + drop_alerts
            for plan in planned.values():
                result.dead.extend(plan.failed)
            clock = time.perf_counter()
            await self._emit(outgoing, result.dead)
            clock = self._phase("produce", clock)
            if outgoing:
                await _retrying(
                    "clear the outbox", lambda: self.store.clear_outbox((r.partition, a.alert_id) for r, a in outgoing)
                )
                self._phase("outbox", clock)
        result.redis_seconds, self.store.calls = self.store.calls, []
        for plan in planned.values():
            result.applied.update(plan.applied)
            result.duplicates += plan.duplicates
            result.effort.extend(plan.effort)
            result.answers.extend(answer for _, answer in plan.answers)
            result.labels.extend(plan.labels)
            result.driver_points.update(plan.driver_points)
        result.alerts = [a for _, a in outgoing]
        result.alert_trigger_ms = [r.timestamp_ms for r, _ in outgoing if r.timestamp_ms is not None]
        return result

    def _phase(self, name: str, since: float) -> float:
        now = time.perf_counter()
        self.phases[name] = self.phases.get(name, 0.0) + now - since
        return now

    async def _apply_and_write(
        self, by_customer: dict[str, list[Item]]
    ) -> tuple[dict[str, _Planned], list[tuple[Record, Alert]]]:
        """Plan every customer, evaluate the segment rules, write it all at once; again when some
        customer changed under us (then nothing was written)."""
        fresh = False
        while True:
            clock = time.perf_counter()
            ids = list(by_customer)
            loaded = await _retrying("load state", lambda ids=ids: self.store.load(ids))  # type: ignore[misc]
            clock = self._phase("load", clock)
            planned = {cid: self._plan(cid, loaded[cid], by_customer[cid], fresh) for cid in ids}
            clock = self._phase("apply", clock)
            answers = sorted(
                (item.position, item.record, item.event.event_id, answer)
                for plan in planned.values()
                for item, answer in plan.answers
            )
            drop_commands, drop_alerts = await self._drops(answers)
            clock = self._phase("segments", clock)
            increments = Increments(self.store.app_id, self.rules.retention_us)
            commands: list[Sequence[Any]] = []
            for plan in planned.values():
                for _, answer in plan.answers:
                    increments.survey(answer)
                increments.insights(plan.cells)
                commands += plan.commands
            commands += drop_commands
            writes = [p.write for p in planned.values() if p.write is not None]
            clock = self._phase("aggregate", clock)
            conflicts = await _retrying(
                "write state",
                lambda: self.store.write(writes, increments, commands),  # noqa: B023 - awaited right here
            )
            self._phase("write", clock)
            if not conflicts:
                return planned, drop_alerts
            # nothing was written, but the states held in memory were changed: read them all again
            self.store.forget(ids)
            fresh = True
            log.info(
                "%d customers changed under this batch (another worker or a DELETE); applying again", len(conflicts)
            )

    async def _drops(
        self, answers: list[tuple[int, Record, str, SurveyAnswer]]
    ) -> tuple[list[Sequence[Any]], list[tuple[Record, Alert]]]:
        """nps.drop (§5) after each NPS answer of the batch, per segment, in arrival order.

        The counts at the first evaluation time of a segment are read whole; those at each later
        time follow from the short stretches the windows moved by (at most a few minutes apart
        in a live stream), so a batch reads few buckets however many answers it holds."""
        nps_answers = [a for a in answers if a[3].nps is not None]
        if not nps_answers:
            return [], []
        segments = list(dict.fromkeys(seg for *_, answer in nps_answers for seg in answer.segments))
        states = await _retrying("read segment state", lambda: self.store.drop_states(segments))
        recent, baseline = self.rules.nps_drop_recent_us, self.rules.nps_drop_baseline_us
        times: dict[str, list[int]] = {}  # the distinct evaluation times of each segment, in order
        for seg in segments:
            latest = states[seg].latest_at
            seen: dict[int, None] = {}
            for *_, answer in nps_answers:
                if seg in answer.segments:
                    latest = answer.occurred_at if latest is None else max(latest, answer.occurred_at)
                    seen[latest] = None
            times[seg] = list(seen)

        # Most segments (an agent, a rare reason) have too few answers to ever fire: day buckets
        # bound each window's answers from above, so only segments that could fire are read exactly.
        def days(first: int, last: int) -> tuple[int, int]:
            return (first // DAY) * 1440 - 1, (last // DAY + 1) * 1440 - 1

        bounds = {
            seg: (days(ts[0] - recent, ts[-1]), days(ts[0] - recent - baseline, ts[-1] - recent))
            for seg, ts in times.items()
        }
        in_batch = Counter(seg for *_, answer in nps_answers for seg in answer.segments)
        upper = await _retrying(
            "read NPS day counts",
            lambda: self.store.window_stats("nps", [(s, w) for s, pair in bounds.items() for w in pair], NPS_STATS),
        )
        enough = self.rules.nps_drop_min_responses
        cooldown = self.rules.nps_drop_cooldown_us
        for seg in list(times):
            last = states[seg].last_alert_at
            if last is not None and times[seg][-1] < last + cooldown:
                states[seg].latest_at = times.pop(seg)[-1]  # still cooling down after its last drop
                continue
            recent_n = nps_from(upper[(seg, bounds[seg][0])]).n + in_batch[seg]
            baseline_n = nps_from(upper[(seg, bounds[seg][1])]).n + in_batch[seg]
            if recent_n < enough or baseline_n < enough:
                states[seg].latest_at = times.pop(seg)[-1]  # evaluated, and it cannot fire

        def moved(prev: int, cur: int, back: int) -> tuple[int, int]:
            return (prev - back) // MINUTE, (cur - back) // MINUTE

        wanted: list[tuple[str, tuple[int, int]]] = []
        for seg, ts in times.items():
            wanted += [(seg, w) for w in drop_windows(ts[0], self.rules)]
            for prev, cur in zip(ts, ts[1:], strict=False):
                wanted += [(seg, moved(prev, cur, back)) for back in (0, recent, recent + baseline)]
        counts = (
            await _retrying("read NPS counts", lambda: self.store.window_stats("nps", wanted, NPS_STATS))
            if wanted
            else {}
        )
        checks = {}
        for seg, ts in times.items():
            first_recent, first_baseline = drop_windows(ts[0], self.rules)
            r, b = nps_from(counts[(seg, first_recent)]), nps_from(counts[(seg, first_baseline)])
            base = {first_recent: r, first_baseline: b}
            for prev, cur in zip(ts, ts[1:], strict=False):
                entered, crossed, left = (
                    nps_from(counts[(seg, moved(prev, cur, back))]) for back in (0, recent, recent + baseline)
                )
                r, b = r + entered - crossed, b + crossed - left
                recent_w, baseline_w = drop_windows(cur, self.rules)
                base[recent_w], base[baseline_w] = r, b
            checks[seg] = DropCheck(seg, states[seg], base, self.rules)
        alerts: list[tuple[Record, Alert]] = []
        for _, record, event_id, answer in nps_answers:
            assert answer.nps is not None
            for seg in answer.segments:
                if seg not in checks:
                    continue
                drop = checks[seg].after(answer.occurred_at, answer.nps)
                if drop is not None:
                    alerts.append((record, drop_alert(drop, event_id, self.rules)))
        commands: list[Sequence[Any]] = [self.store.drop_state_command(seg, states[seg]) for seg in segments]
        emitted = now_us()
        for record, alert in alerts:
            commands.append(
                ("HSET", outbox_key(self.store.app_id, record.partition), alert.alert_id, _alert_json(alert, emitted))
            )
        return commands, alerts

    def _plan(self, customer_id: str, loaded: Loaded, items: list[Item], fresh: bool = False) -> _Planned:
        """Apply one customer's events in arrival order. An event the core fails on goes to the
        DLQ with the reason, and the customer's other events are applied again without it."""
        skip: set[int] = set()
        while True:
            state = loaded.state(customer_id, fresh=fresh or bool(skip))
            try:
                return self._apply_all(customer_id, loaded.version, state, items, skip)
            except _EventFailed as failure:
                skip.add(failure.index)
                log.exception("event %s of customer %s failed in the rules", failure.event_id, customer_id)

    def _apply_all(
        self, customer_id: str, version: int, state: CustomerState, items: list[Item], skip: set[int]
    ) -> _Planned:
        applied: Counter[str] = Counter()
        duplicates = 0
        alerts: list[tuple[Record, Alert]] = []
        touched: dict[str, None] = {}
        failed: list[DeadLetter] = []
        answers: list[tuple[Item, SurveyAnswer]] = []
        labels: list[tuple[float, int]] = []
        contributions = state.contributions
        for cid, case in state.cases.items():  # what the aggregates hold of each case now
            if cid not in contributions:
                contributions[cid] = insights.contribution(
                    case, state.contacts, self.rules, state.effort_of(case, self.rules)
                )
        before = dict(contributions)
        for i, item in enumerate(items):
            record, event = item.record, item.event
            if i in skip:
                failed.append(_processing_error(record, event))
                continue
            try:
                outcome = apply_event(state, event, self.rules)
            except Exception as exc:
                raise _EventFailed(i, event.event_id) from exc
            if outcome.duplicate:
                duplicates += 1
                continue
            applied[event.type] += 1
            touched.update(dict.fromkeys(outcome.cases))
            alerts.extend((record, a) for a in outcome.alerts)
            if outcome.answer is not None:
                answers.append((item, outcome.answer))
            if outcome.label is not None:
                labels.append(outcome.label)
        if not applied:
            return _Planned(None, applied, duplicates, failed, alerts, [], answers, labels, Counter(), [], [])
        commands: list[Sequence[Any]] = []
        efforts: list[float] = []
        cells: list[insights.Cell] = []
        growth: Counter[str] = Counter()
        index = open_cases_key(self.store.app_id)
        for case_id in touched:
            case = state.cases[case_id]
            if not case.visible():
                continue
            effort = state.effort_of(case, self.rules)
            efforts.append(effort.total)
            member = index_member(customer_id, case_id)
            if case_status(case, state.contacts) == OPEN:
                commands.append(("ZADD", index, effort.total, member))
            else:
                commands.append(("ZREM", index, member))
            after = contributions[case_id] = insights.contribution(case, state.contacts, self.rules, effort)
            cells += insights.delta(before.get(case_id), after)
            growth.update(insights.driver_growth(before.get(case_id), after))
        emitted = now_us()
        for record, alert in alerts:
            outbox = outbox_key(self.store.app_id, record.partition)
            commands.append(("HSET", outbox, alert.alert_id, _alert_json(alert, emitted)))
        write = CustomerWrite(
            customer_id=customer_id,
            expected_version=version,
            state=state,
            expire_at_us=expire_at_us(state, self.rules.retention_us),
        )
        return _Planned(write, applied, duplicates, failed, alerts, efforts, answers, labels, growth, cells, commands)

    async def _emit(self, alerts: list[tuple[Record, Alert]], dead: list[DeadLetter]) -> None:
        emitted = now_us()
        outgoing: list[tuple[str, bytes | None, bytes]] = [
            (self.settings.alerts_topic, a.key.encode(), _alert_json(a, emitted)) for _, a in alerts
        ]
        outgoing += [(self.settings.dlq_topic, d.record.key, json.dumps(d.value()).encode()) for d in dead]
        await self.send_all(outgoing)

    async def send_all(self, outgoing: list[tuple[str, bytes | None, bytes]]) -> None:
        """Produce records and wait until Kafka has all of them, retrying what failed."""
        while outgoing:
            futures = [await self.sink.send(topic, key, value) for topic, key, value in outgoing]
            results = await asyncio.gather(*futures, return_exceptions=True)
            failed = [o for o, r in zip(outgoing, results, strict=True) if isinstance(r, BaseException)]
            if failed:
                log.warning("%d records not accepted by Kafka (%r); sending them again", len(failed), results[0])
                await asyncio.sleep(1)
            outgoing = failed

    async def recover_outbox(self, partitions: Sequence[int]) -> int:
        """Produce the alerts an earlier run left in the outbox of these partitions (it stopped
        between writing a batch and clearing its alerts). Alerts that reached the alerts topic
        before the stop are not produced again. Returns how many were produced."""
        async with self.lock:
            entries: list[tuple[int, str, dict[str, Any]]] = []
            for p in partitions:
                for alert_id, raw in (await self.store.outbox(p)).items():
                    aid = alert_id.decode() if isinstance(alert_id, bytes) else alert_id
                    entries.append((p, aid, json.loads(raw)))
            if not entries:
                return 0
            # an alert is produced after its outbox entry is written; look a minute further back
            written_ms = min(_ms(doc["emitted_at"]) for _, _, doc in entries)
            published = await self.sink.alert_ids_since(self.settings.alerts_topic, written_ms - 60_000)
            emitted = iso(now_us())
            outgoing: list[tuple[str, bytes | None, bytes]] = []
            for _, aid, doc in entries:
                if aid in published:
                    continue
                doc["emitted_at"] = emitted
                key = doc["customer_id"] if doc["customer_id"] is not None else f"segment:{doc['segment']}"
                outgoing.append((self.settings.alerts_topic, key.encode(), json.dumps(doc).encode()))
            await self.send_all(outgoing)
            await self.store.clear_outbox((p, aid) for p, aid, _ in entries)
            log.warning(
                "outbox of partitions %s: %d alerts left by an earlier run, %d of them not yet on %s, now produced",
                list(partitions),
                len(entries),
                len(outgoing),
                self.settings.alerts_topic,
            )
            return len(outgoing)


class _EventFailed(Exception):
    def __init__(self, index: int, event_id: str) -> None:
        super().__init__(event_id)
        self.index = index
        self.event_id = event_id


def _processing_error(record: Record, event: Event) -> DeadLetter:
    msg = f"the rules failed on this {event.type} event; see the worker log for event_id {event.event_id}"
    return DeadLetter(record, "processing_error", msg, [{"type": "processing_error", "loc": [], "msg": msg}], now_us())


def _ms(rfc3339: str) -> int:
    return int(datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp() * 1000)


def _alert_json(alert: Alert, emitted: int) -> bytes:
    return json.dumps(alert.to_dict(emitted)).encode()


async def _retrying(what: str, call: Callable[[], Awaitable[T]]) -> T:
    """Call until Redis answers: a batch is never given up, because giving up would commit it."""
    delay = 0.1
    while True:
        try:
            return await call()
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
            log.warning("Redis unavailable (%s) while trying to %s; retrying in %.1fs", exc, what, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


__all__ = ["BatchResult", "Pipeline", "Record", "Sink"]
