"""Redis: the key layout, the batched load and the atomic batched write.

Key layout (every key starts with the app id; every key of one customer carries the hash tag
`{customer_id}`, so all of a customer's keys stay on one Redis Cluster slot):

  <app>:customer:{<customer_id>}   hash  v = version (int), s = state (msgpack, streams.codec),
                                         ix = the customer's index members, for DELETE
  <app>:open_cases                 zset  "<customer_id>\\x1f<case_id>" scored by effort
  <app>:outbox:<partition>         hash  alert_id → alert JSON, alerts not yet produced

A batch costs one round trip, the script call that writes every customer of the batch, plus
one pipeline of HMGETs for the customers this worker has not seen recently (a worker keeps
the blobs it wrote in a bounded cache: its partitions' customers come back again and again).
The script checks each customer's version before it writes; a customer whose version moved
(another worker took over the partition, a DELETE) is not written and is reported back, so
the caller drops it from the cache, reloads it and applies its events again. Everything a
customer's events cause (state, index, outbox) is written in the same script, so it is
all-or-nothing.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from streams import codec
from streams.insights import BASE_STATS, REASON_PREFIX
from streams.insights import Cell as InsightCell
from streams.journey import CustomerState
from streams.rules import DRIVERS
from streams.surveys import MEAN_STATS, NPS_STATS, Bucket, DropState, SurveyAnswer, cells, cover
from streams.times import DAY, US

DAYS_PER_BLOCK = 64

# All or nothing: if every customer's HGET(KEYS[i], "v") still equals its expected version,
# write them all, then the batch's counter increments and its other commands; else write
# nothing and return the 1-based indexes of the customers whose version moved.
# ARGV: ncustomers; per customer: expected version, state, expire-at (ms), index members;
# nhashes; per hash: key, expire-at (ms), "field\31v1,v2,...\31field\31..." (each vector
# is added element-wise to the field's vector); ncommands; per command: nargs, args...
WRITE_SCRIPT = r"""
local n = tonumber(ARGV[1])
local conflicts = {}
local pos = 2
for i = 1, n do
  if (redis.call('HGET', KEYS[i], 'v') or '0') ~= ARGV[pos] then conflicts[#conflicts + 1] = i end
  pos = pos + 4
end
if #conflicts > 0 then return conflicts end
pos = 2
for i = 1, n do
  redis.call('HSET', KEYS[i], 'v', tonumber(ARGV[pos]) + 1, 's', ARGV[pos + 1], 'ix', ARGV[pos + 3])
  redis.call('PEXPIREAT', KEYS[i], ARGV[pos + 2])
  pos = pos + 4
end
local nh = tonumber(ARGV[pos])
pos = pos + 1
for _ = 1, nh do
  local key, expire = ARGV[pos], ARGV[pos + 1]
  for field, vector in string.gmatch(ARGV[pos + 2], '([^\31]+)\31([^\31]+)') do
    local current = redis.call('HGET', key, field)
    if current then
      local add = {}
      for x in string.gmatch(vector, '[^,]+') do add[#add + 1] = tonumber(x) end
      local sum, i = {}, 1
      for x in string.gmatch(current, '[^,]+') do sum[i] = tonumber(x) + (add[i] or 0); i = i + 1 end
      for j = i, #add do sum[j] = add[j] end
      redis.call('HSET', key, field, table.concat(sum, ','))
    else
      redis.call('HSET', key, field, vector)
    end
  end
  redis.call('PEXPIREAT', key, expire)
  pos = pos + 3
end
local nc = tonumber(ARGV[pos])
pos = pos + 1
for _ = 1, nc do
  local nargs = tonumber(ARGV[pos])
  redis.call(unpack(ARGV, pos + 1, pos + nargs))
  pos = pos + nargs + 1
end
return conflicts
"""


# Erase one customer: their hash and every index entry the hash lists. KEYS: customer key,
# open-cases index. Returns 1 when there was something to erase.
DELETE_SCRIPT = r"""
local ix = redis.call('HGET', KEYS[1], 'ix')
if ix then
  for member in string.gmatch(ix, '[^\30]+') do redis.call('ZREM', KEYS[2], member) end
end
return redis.call('DEL', KEYS[1])
"""
INDEX_SEPARATOR = "\x1e"


def aggregate_key(app_id: str, metric: str, segment: str, bucket: Bucket) -> str:
    """Minute and hour buckets live in one hash per day, day buckets in one hash per 64 days."""
    level, index = bucket
    if level == "d":
        return f"{app_id}:agg:{metric}:{segment}:days:{index // DAYS_PER_BLOCK}"
    day = index // (1440 if level == "m" else 24)
    return f"{app_id}:agg:{metric}:{segment}:day:{day}"


def aggregate_expiry_us(bucket: Bucket, retention_us: int) -> int:
    """When a bucket's hash may go: `retention` after the last moment any of its buckets covers."""
    level, index = bucket
    if level == "d":
        end_day = (index // DAYS_PER_BLOCK + 1) * DAYS_PER_BLOCK
    else:
        end_day = index // (1440 if level == "m" else 24) + 1
    return end_day * DAY + retention_us


def segments_key(app_id: str) -> str:
    return f"{app_id}:segments"


def drop_key(app_id: str, segment: str) -> str:
    return f"{app_id}:npsdrop:{segment}"


# What one hash field holds: a comma-separated vector of these stats (one HGET/HSET per bucket
# instead of one field per stat). Insights keep a second, smaller vector per case reason.
LAYOUTS: dict[str, tuple[str, ...]] = {
    "nps": NPS_STATS,
    "ces": MEAN_STATS,
    "csat": MEAN_STATS,
    "insights": (*BASE_STATS, *(f"d:{d}" for d in DRIVERS)),
}
REASON_LAYOUT = ("cases", "effort")


class Increments:
    """A batch's counter increments, summed per hash and field before they go to Redis (many
    answers and cases of a batch share a bucket), with each hash's expiry and the registries."""

    def __init__(self, app_id: str, retention_us: int) -> None:
        self.app_id = app_id
        self.retention_us = retention_us
        self.hashes: dict[str, tuple[int, dict[str, list[float]]]] = {}  # key → (expire ms, field → vector)
        self.segments: set[str] = set()
        self.reasons: set[str] = set()
        self._index = {metric: {stat: i for i, stat in enumerate(layout)} for metric, layout in LAYOUTS.items()}

    def _vector(self, metric: str, segment: str, bucket: Bucket, group: str, size: int) -> list[float]:
        key = aggregate_key(self.app_id, metric, segment, bucket)
        entry = self.hashes.get(key)
        if entry is None:
            entry = self.hashes[key] = (aggregate_expiry_us(bucket, self.retention_us) // 1000, {})
        name = f"{bucket[0]}{bucket[1]}{group}"
        vector = entry[1].get(name)
        if vector is None:
            vector = entry[1][name] = [0.0] * size
        return vector

    def survey(self, answer: SurveyAnswer) -> None:
        for metric, segment, bucket, stat, amount in cells(answer):
            index = self._index[metric]
            self._vector(metric, segment, bucket, "", len(index))[index[stat]] += amount
        self.segments.update(answer.segments)

    def insights(self, changes: Iterable[InsightCell]) -> None:
        index = self._index["insights"]
        size = len(index)
        for segment, bucket, stats in changes:
            main = self._vector("insights", segment, bucket, "", size)
            for stat, amount in stats.items():
                i = index.get(stat)
                if i is not None:
                    main[i] += amount
                    continue
                # a reason's stat: r:<reason>:cases or r:<reason>:effort
                reason, _, which = stat[len(REASON_PREFIX) :].rpartition(":")
                vec = self._vector("insights", segment, bucket, f":{REASON_PREFIX}{reason}", 2)
                vec[REASON_LAYOUT.index(which)] += amount
                if which == "cases":
                    self.reasons.add(reason)
            self.segments.add(segment)

    def argv(self) -> list[Any]:
        """This batch's part of the write script's ARGV."""
        out: list[Any] = []
        count = 0
        for key, (expire_ms, fields) in self.hashes.items():
            packed = "\x1f".join(
                f"{name}\x1f{','.join(_number(v) for v in vector)}" for name, vector in fields.items() if any(vector)
            )
            if packed:
                out += [key, expire_ms, packed]
                count += 1
        return [count, *out]

    def commands(self) -> list[Sequence[Any]]:
        cmds: list[Sequence[Any]] = []
        if self.segments:
            cmds.append(("SADD", segments_key(self.app_id), *sorted(self.segments)))
        if self.reasons:
            cmds.append(("SADD", reasons_key(self.app_id), *sorted(self.reasons)))
        return cmds


def unpack_field(metric: str, name: str, value: str) -> tuple[str, dict[str, float]]:
    """A stored field as (bucket name, stat → value)."""
    bucket, _, group = name.partition(":")
    numbers = [float(x) for x in value.split(",")]
    if not group:
        return bucket, dict(zip(LAYOUTS[metric], numbers, strict=False))
    reason = group[len(REASON_PREFIX) :]
    return bucket, {f"{REASON_PREFIX}{reason}:{k}": v for k, v in zip(REASON_LAYOUT, numbers, strict=False)}


def _number(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def reasons_key(app_id: str) -> str:
    return f"{app_id}:reasons"


def customer_key(app_id: str, customer_id: str) -> str:
    return f"{app_id}:customer:{{{customer_id}}}"


def open_cases_key(app_id: str) -> str:
    return f"{app_id}:open_cases"


def outbox_key(app_id: str, partition: int) -> str:
    return f"{app_id}:outbox:{partition}"


def index_member(customer_id: str, case_id: str) -> str:
    return f"{customer_id}\x1f{case_id}"


@dataclass(slots=True)
class Loaded:
    """A customer as read from Redis (or kept from this worker's last write): its version (0 when
    absent), its encoded state, and the decoded state when this worker still holds it."""

    version: int
    blob: bytes | None
    held: CustomerState | None = None

    def state(self, customer_id: str, fresh: bool = False) -> CustomerState:
        """The state to apply events to: the one held (unless `fresh`), else decoded from the blob."""
        if self.held is not None and not fresh:
            return self.held
        return codec.decode(self.blob) if self.blob is not None else CustomerState(customer_id)


@dataclass(slots=True)
class CustomerWrite:
    """Everything one customer's events of a batch cause, written all-or-nothing."""

    customer_id: str
    expected_version: int
    state: CustomerState
    expire_at_us: int


class StateStore:
    """The Redis side of the worker and the API."""

    def __init__(self, client: aioredis.Redis, app_id: str, cache_size: int = 0) -> None:
        self.redis = client
        self.app_id = app_id
        self._write = client.register_script(WRITE_SCRIPT)
        self._delete = client.register_script(DELETE_SCRIPT)
        self.cache: OrderedDict[str, Loaded] = OrderedDict()  # what this worker last wrote, LRU
        self.cache_size = cache_size
        self.calls: list[float] = []  # durations of the batched calls since the caller last took them

    def key(self, customer_id: str) -> str:
        return customer_key(self.app_id, customer_id)

    async def load(self, customer_ids: Iterable[str]) -> dict[str, Loaded]:
        """Every given customer's version and state: from the cache, the rest in one round trip;
        absent customers come back as version 0 with no state."""
        out: dict[str, Loaded] = {}
        missing: list[str] = []
        for cid in customer_ids:
            hit = self.cache.get(cid)
            if hit is None:
                missing.append(cid)
            else:
                out[cid] = hit
        if missing:
            pipe = self.redis.pipeline(transaction=False)
            for cid in missing:
                pipe.hmget(self.key(cid), "v", "s")
            started = time.perf_counter()
            rows = await pipe.execute()
            self.calls.append(time.perf_counter() - started)
            for cid, (version, blob) in zip(missing, rows, strict=True):
                out[cid] = Loaded(int(version) if version is not None else 0, blob)
        return out

    def _remember(self, customer_id: str, loaded: Loaded) -> None:
        if self.cache_size <= 0:
            return
        self.cache[customer_id] = loaded
        self.cache.move_to_end(customer_id)
        while len(self.cache) > self.cache_size:
            self.cache.popitem(last=False)

    def forget(self, customer_ids: Iterable[str] | None = None) -> None:
        """Drop customers (or all) from the cache; the next batch reads them from Redis."""
        if customer_ids is None:
            self.cache.clear()
        else:
            for cid in customer_ids:
                self.cache.pop(cid, None)

    async def get(self, customer_id: str) -> CustomerState | None:
        blob = await self.redis.hget(self.key(customer_id), "s")
        return codec.decode(blob) if blob is not None else None

    async def write(
        self,
        writes: Sequence[CustomerWrite],
        increments: Increments | None = None,
        commands: Sequence[Sequence[Any]] = (),
    ) -> set[str]:
        """Write every customer, then the increments and the commands, all or nothing: when some
        customer's version has moved, nothing is written and the ids of those customers come back."""
        keys: list[str] = []
        blobs: list[bytes] = []
        argv: list[Any] = [len(writes)]
        for w in writes:
            keys.append(self.key(w.customer_id))
            blob = codec.encode(w.state)
            blobs.append(blob)
            members = INDEX_SEPARATOR.join(index_member(w.customer_id, c) for c in w.state.cases)
            argv += [w.expected_version, blob, w.expire_at_us // 1000, members]
        argv += increments.argv() if increments is not None else [0]
        all_commands = [*(increments.commands() if increments is not None else []), *commands]
        argv.append(len(all_commands))
        for cmd in all_commands:
            argv.append(len(cmd))
            argv.extend(cmd)
        if len(argv) == 3:
            return set()  # nothing to write
        started = time.perf_counter()
        answer = await self._write(keys=keys, args=argv)
        self.calls.append(time.perf_counter() - started)
        conflicts = {writes[int(i) - 1].customer_id for i in answer}
        if conflicts:
            self.forget(conflicts)
        else:
            for w, blob in zip(writes, blobs, strict=True):
                self._remember(w.customer_id, Loaded(w.expected_version + 1, blob, w.state))
        return conflicts

    async def delete_customer(self, customer_id: str) -> bool:
        """Erase everything held about one customer, index entries included; False if none."""
        erased = await self._delete(keys=[self.key(customer_id), open_cases_key(self.app_id)])
        return bool(erased)

    # --- the alert outbox: alerts are written with the state, removed once Kafka has them
    async def outbox(self, partition: int) -> dict[str, bytes]:
        return await self.redis.hgetall(outbox_key(self.app_id, partition))

    async def clear_outbox(self, entries: Iterable[tuple[int, str]]) -> None:
        by_partition: dict[int, list[str]] = {}
        for partition, alert_id in entries:
            by_partition.setdefault(partition, []).append(alert_id)
        if not by_partition:
            return
        pipe = self.redis.pipeline(transaction=False)
        for partition, ids in by_partition.items():
            pipe.hdel(outbox_key(self.app_id, partition), *ids)
        await pipe.execute()

    async def top_open_cases(self, limit: int) -> list[tuple[CustomerState, str, float]]:
        """The open cases with the most effort: (customer state, case_id, effort), highest first.
        Entries of customers that expired meanwhile are dropped from the index on the way."""
        index = open_cases_key(self.app_id)
        members = await self.redis.zrevrange(index, 0, max(0, limit * 2 - 1), withscores=True)
        pairs = []
        for member, effort in members:
            text = member.decode() if isinstance(member, bytes) else member
            cid, _, case_id = text.partition("\x1f")
            pairs.append((text, cid, case_id, float(effort)))
        pipe = self.redis.pipeline(transaction=False)
        for _, cid, _, _ in pairs:
            pipe.hget(self.key(cid), "s")
        blobs = await pipe.execute() if pairs else []
        out: list[tuple[CustomerState, str, float]] = []
        stale = []
        for (text, _, case_id, effort), blob in zip(pairs, blobs, strict=True):
            if blob is None:
                stale.append(text)
                continue
            state = codec.decode(blob)
            if case_id in state.cases:
                out.append((state, case_id, effort))
        if stale:
            await self.redis.zrem(index, *stale)
        return out[:limit]

    # --- survey aggregates
    async def window_stats(
        self, metric: str, wanted: Iterable[tuple[str, tuple[int, int]]], stats: Sequence[str]
    ) -> dict[tuple[str, tuple[int, int]], dict[str, float]]:
        """Summed stats of each (segment, window) in one round trip. A hash whose buckets are
        wanted by name is read with HMGET; one with many wanted buckets whole, with HGETALL
        (then the fields of other reasons come along, which /insights needs anyway)."""
        requests = list(dict.fromkeys(wanted))
        covers: dict[tuple[str, tuple[int, int]], list[tuple[str, str]]] = {}  # request → (key, bucket name)
        names: dict[str, dict[str, None]] = {}  # key → bucket names wanted
        for req in requests:
            segment, win = req
            parts = []
            for bucket in cover(*win):
                key = aggregate_key(self.app_id, metric, segment, bucket)
                name = f"{bucket[0]}{bucket[1]}"
                names.setdefault(key, {})[name] = None
                parts.append((key, name))
            covers[req] = parts
        whole = metric == "insights"  # reason fields are named after the reasons: read whole hashes
        buckets: dict[str, dict[str, dict[str, float]]] = {}  # key → bucket name → stat → value
        if names:
            pipe = self.redis.pipeline(transaction=False)
            plan = []
            for key, wanted_names in names.items():
                if whole or len(wanted_names) > 200:
                    pipe.hgetall(key)
                    plan.append((key, None))
                else:
                    fields = list(wanted_names)
                    pipe.hmget(key, fields)
                    plan.append((key, fields))
            started = time.perf_counter()
            rows = await pipe.execute()
            self.calls.append(time.perf_counter() - started)
            for (key, fields), row in zip(plan, rows, strict=True):
                pairs = row.items() if fields is None else zip(fields, row, strict=True)
                by_bucket: dict[str, dict[str, float]] = {}
                for raw_name, raw_value in pairs:
                    if raw_value is None:
                        continue
                    name = raw_name.decode() if isinstance(raw_name, bytes) else raw_name
                    value = raw_value.decode() if isinstance(raw_value, bytes) else raw_value
                    bucket_name, stats_here = unpack_field(metric, name, value)
                    by_bucket.setdefault(bucket_name, {}).update(stats_here)
                buckets[key] = by_bucket
        out: dict[tuple[str, tuple[int, int]], dict[str, float]] = {}
        for req, parts in covers.items():
            total = dict.fromkeys(stats, 0.0)
            for key, bucket_name in parts:
                found = buckets[key].get(bucket_name)
                if found:
                    for stat in stats:
                        total[stat] += found.get(stat, 0.0)
            out[req] = total
        return out

    async def drop_states(self, segments: Iterable[str]) -> dict[str, DropState]:
        segs = list(segments)
        pipe = self.redis.pipeline(transaction=False)
        for seg in segs:
            pipe.hmget(drop_key(self.app_id, seg), "latest_at", "last_alert_at")
        rows = await pipe.execute() if segs else []
        return {
            seg: DropState(int(a) if a is not None else None, int(b) if b is not None else None)
            for seg, (a, b) in zip(segs, rows, strict=True)
        }

    def drop_state_command(self, segment: str, state: DropState) -> Sequence[Any]:
        fields: list[Any] = []
        if state.latest_at is not None:
            fields += ["latest_at", state.latest_at]
        if state.last_alert_at is not None:
            fields += ["last_alert_at", state.last_alert_at]
        return ("HSET", drop_key(self.app_id, segment), *fields)

    async def reasons(self) -> list[str]:
        return sorted(
            m.decode() if isinstance(m, bytes) else m for m in await self.redis.smembers(reasons_key(self.app_id))
        )

    async def segments(self) -> set[str]:
        return {m.decode() if isinstance(m, bytes) else m for m in await self.redis.smembers(segments_key(self.app_id))}

    async def ping(self) -> bool:
        return bool(await self.redis.ping())


def expire_at_us(state: CustomerState, retention_us: int) -> int:
    """A customer's state expires `retention` after their latest event (event time)."""
    last = state.last_event_at if state.last_event_at is not None else int(time.time() * US)
    return last + retention_us
