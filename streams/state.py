"""Redis: the key layout, the batched load and the atomic batched write.

Key layout (every key starts with the app id; every key of one customer carries the hash tag
`{customer_id}`, so all of a customer's keys stay on one Redis Cluster slot):

  <app>:customer:{<customer_id>}   hash  v = version (int), s = state (msgpack, streams.codec),
                                         ix = the customer's index members, for DELETE
  <app>:open_cases                 zset  "<customer_id>\\x1f<case_id>" scored by effort
  <app>:outbox:<partition>         hash  alert_id → alert JSON, alerts not yet produced

A batch costs two round trips: one pipeline of HMGETs to load every customer of the batch,
one script call that writes them all. The script checks each customer's version before it
writes; a customer whose version moved (another worker, a DELETE) is not written and is
reported back, so the caller reloads and applies its events again. Everything a customer's
events cause (state, index, outbox) is written in the same script, so it is all-or-nothing.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from streams import codec
from streams.journey import CustomerState
from streams.times import US

# For each customer group: if HGET(key, "v") still equals the expected version, run the
# group's commands. ARGV: ngroups, then per group: expected version, ncommands, and per
# command: nargs, args... KEYS[i] is group i's customer key. Returns the 1-based indexes of
# groups that were skipped because their version moved.
WRITE_SCRIPT = """
local conflicts = {}
local pos = 2
for g = 1, tonumber(ARGV[1]) do
  local expected = ARGV[pos]
  local ncmd = tonumber(ARGV[pos + 1])
  pos = pos + 2
  local current = redis.call('HGET', KEYS[g], 'v') or '0'
  local ok = current == expected
  if not ok then conflicts[#conflicts + 1] = g end
  for _ = 1, ncmd do
    local nargs = tonumber(ARGV[pos])
    if ok then redis.call(unpack(ARGV, pos + 1, pos + nargs)) end
    pos = pos + nargs + 1
  end
end
return conflicts
"""


# Erase one customer: their hash and every index entry the hash lists. KEYS: customer key,
# open-cases index. Returns 1 when there was something to erase.
DELETE_SCRIPT = """
local ix = redis.call('HGET', KEYS[1], 'ix')
if ix then
  for member in string.gmatch(ix, '[^\30]+') do redis.call('ZREM', KEYS[2], member) end
end
return redis.call('DEL', KEYS[1])
"""
INDEX_SEPARATOR = "\x1e"


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
    """A customer as read from Redis: its version (0 when absent) and its encoded state."""

    version: int
    blob: bytes | None

    def state(self, customer_id: str) -> CustomerState:
        return codec.decode(self.blob) if self.blob is not None else CustomerState(customer_id)


@dataclass(slots=True)
class CustomerWrite:
    """Everything one customer's events of a batch cause, written all-or-nothing."""

    customer_id: str
    expected_version: int
    state: CustomerState
    expire_at_us: int
    commands: list[Sequence[Any]] = field(default_factory=list)  # extra writes (index, outbox)


class StateStore:
    """The Redis side of the worker and the API."""

    def __init__(self, client: aioredis.Redis, app_id: str) -> None:
        self.redis = client
        self.app_id = app_id
        self._write = client.register_script(WRITE_SCRIPT)
        self._delete = client.register_script(DELETE_SCRIPT)
        self.last_call_seconds = 0.0

    def key(self, customer_id: str) -> str:
        return customer_key(self.app_id, customer_id)

    async def load(self, customer_ids: Iterable[str]) -> dict[str, Loaded]:
        """Every given customer's state in one round trip; absent customers come back empty."""
        ids = list(customer_ids)
        pipe = self.redis.pipeline(transaction=False)
        for cid in ids:
            pipe.hmget(self.key(cid), "v", "s")
        started = time.perf_counter()
        rows = await pipe.execute()
        self.last_call_seconds = time.perf_counter() - started
        out: dict[str, Loaded] = {}
        for cid, (version, blob) in zip(ids, rows, strict=True):
            out[cid] = Loaded(int(version) if version is not None else 0, blob)
        return out

    async def get(self, customer_id: str) -> CustomerState | None:
        blob = await self.redis.hget(self.key(customer_id), "s")
        return codec.decode(blob) if blob is not None else None

    async def write(self, writes: Sequence[CustomerWrite]) -> set[str]:
        """Write every customer whose version has not moved; return the ids of those that had."""
        if not writes:
            return set()
        keys: list[str] = []
        argv: list[Any] = [len(writes)]
        for w in writes:
            key = self.key(w.customer_id)
            keys.append(key)
            members = INDEX_SEPARATOR.join(index_member(w.customer_id, c) for c in w.state.cases)
            cmds: list[Sequence[Any]] = [
                ("HSET", key, "v", w.expected_version + 1, "s", codec.encode(w.state), "ix", members),
                ("PEXPIREAT", key, w.expire_at_us // 1000),
                *w.commands,
            ]
            argv += [w.expected_version, len(cmds)]
            for cmd in cmds:
                argv.append(len(cmd))
                argv.extend(cmd)
        started = time.perf_counter()
        conflicts = await self._write(keys=keys, args=argv)
        self.last_call_seconds = time.perf_counter() - started
        return {writes[int(i) - 1].customer_id for i in conflicts}

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

    async def ping(self) -> bool:
        return bool(await self.redis.ping())


def expire_at_us(state: CustomerState, retention_us: int) -> int:
    """A customer's state expires `retention` after their latest event (event time)."""
    last = state.last_event_at if state.last_event_at is not None else int(time.time() * US)
    return last + retention_us
