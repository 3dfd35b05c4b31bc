"""The events consumer: batches from the events topic into the pipeline, offsets committed after.

It is a plain aiokafka consumer running as a service of the faust worker, not a faust agent:
faust's per-event stream machinery delivered about 5,000 events/s on the 2-core machines this
was built on (no processing at all), while aiokafka's `getmany` delivers several hundred
thousand; and committing explicitly after each batch makes "offsets after state" a fact of
this file rather than of faust's acking internals. The group id is EFFORTPULSE_APP_ID.

Order of a batch: getmany → pipeline.process (state and alerts in Redis, alerts and dead
letters acknowledged by Kafka) → commit the batch's offsets. A crash before the commit means
the batch is read again; its events are then duplicates and change nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import mode
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from aiokafka.structs import OffsetAndMetadata

from streams import metrics, security
from streams.decode import Record

if TYPE_CHECKING:
    from streams.app import Context

log = logging.getLogger("effortpulse.consumer")

# how long a shutdown waits for the batch in hand to reach Redis and Kafka
SHUTDOWN_GRACE_S = 30


class EventsConsumer(mode.Service):
    """Reads the events topic in batches and hands them to the pipeline."""

    def __init__(self, ctx: Callable[[], Context], **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.ctx = ctx
        self.consumer: AIOKafkaConsumer | None = None
        self.batch_lock = asyncio.Lock()  # held while a batch is applied; a rebalance waits for it
        self.pending: dict[TopicPartition, OffsetAndMetadata] = {}  # applied, not yet committed
        self.stopping = False

    async def on_start(self) -> None:
        c = self.ctx()
        s = c.settings
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=s.kafka_bootstrap,
            group_id=s.app_id,
            client_id=f"{s.app_id}-events",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=s.batch_size,
            max_partition_fetch_bytes=4 * 1024 * 1024,
            fetch_max_wait_ms=max(1, int(s.batch_within * 1000)),
            **security.kafka_options(s),
        )
        self.consumer.subscribe([s.events_topic], listener=_Rebalance(self))
        await self.consumer.start()

    @mode.Service.task
    async def _consume(self) -> None:
        assert self.consumer is not None
        c = self.ctx()
        within_ms = max(1, int(c.settings.batch_within * 1000))
        while not self.stopping and not self.should_stop:
            if c.to_recover:
                await self.recover(c)
            try:
                batch = await self.consumer.getmany(timeout_ms=within_ms, max_records=c.settings.batch_size)
            except Exception as exc:
                if self.stopping or self.should_stop:
                    break
                log.warning("fetching events failed (%s); trying again", exc)
                await asyncio.sleep(1)
                continue
            if not batch:
                continue
            records = [
                Record(m.key, m.value, m.topic, m.partition, m.offset, m.timestamp)
                for messages in batch.values()
                for m in messages
            ]
            async with self.batch_lock:
                await _run_batch(c, records)
                for tp, messages in batch.items():
                    self.pending[tp] = OffsetAndMetadata(messages[-1].offset + 1, "")
            await self.commit()

    async def recover(self, c: Context) -> None:
        """Produce the alerts an earlier owner of our partitions left in their outboxes. Done in
        this loop, between batches, so nothing else can interrupt it."""
        partitions = sorted(c.to_recover)
        try:
            await c.pipeline.recover_outbox(partitions)
        except Exception as exc:  # Redis or Kafka not answering: try again before the next batch
            log.warning("could not recover the outbox of partitions %s yet: %s", partitions, exc)
            await asyncio.sleep(1)
            return
        c.to_recover.difference_update(partitions)

    async def commit(self) -> None:
        """Commit what was applied; offsets a rebalance took away are another worker's now."""
        offsets, self.pending = self.pending, {}
        if not offsets or self.consumer is None:
            return
        try:
            await self.consumer.commit(offsets)
        except (CommitFailedError, KafkaError) as exc:
            # the next owner reads these records again; their events are duplicates by then
            log.warning("could not commit offsets %s: %s", {tp.partition: o.offset for tp, o in offsets.items()}, exc)

    async def on_stop(self) -> None:
        self.stopping = True
        async with self.batch_lock:  # the batch in hand is finished first (see _run_batch)
            pass
        await self.commit()
        if self.consumer is not None:
            await self.consumer.stop()

    def highwater(self, partition: int) -> int | None:
        if self.consumer is None:
            return None
        return self.consumer.highwater(TopicPartition(self.ctx().settings.events_topic, partition))

    async def position(self, partition: int) -> int | None:
        if self.consumer is None:
            return None
        try:
            return await self.consumer.position(TopicPartition(self.ctx().settings.events_topic, partition))
        except Exception:
            return None


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Keeps the worker's view of its partitions, and commits before giving partitions away."""

    def __init__(self, service: EventsConsumer) -> None:
        self.service = service

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        svc = self.service
        async with svc.batch_lock:  # let the batch in hand finish, then commit it while we still can
            await svc.commit()
        c = svc.ctx()
        gone = {tp.partition for tp in revoked}
        c.assigned -= gone
        c.to_recover -= gone
        if gone:
            c.store.forget()  # another worker may own these customers now
            metrics.forget_partitions(gone)
            if 0 in gone:  # the global gauges are now for the new owner of partition 0 to export
                metrics.set_scores({})
                metrics.set_insights({})

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        c = self.service.ctx()
        mine = {tp.partition for tp in assigned}
        c.assigned = mine
        c.to_recover = set(mine)  # alerts an earlier owner may have left in their outboxes
        log.info("events partitions assigned: %s", sorted(mine))


async def _run_batch(c: Context, records: list[Record]) -> None:
    """Run one batch to the end, whatever happens around it.

    A shutdown waits for the batch in hand (up to a grace period) so its offsets can be
    committed honestly; an unexpected error stops the process at once, without a commit, so
    the batch is read again on restart.
    """
    task = asyncio.ensure_future(c.pipeline.process(records))
    try:
        result = await asyncio.shield(task)
    except asyncio.CancelledError:
        log.info("shutting down: finishing the batch in hand (%d records) first", len(records))
        try:
            done, _ = await asyncio.wait({task}, timeout=SHUTDOWN_GRACE_S)
        except BaseException:
            done = set()
        if task not in done or task.cancelled() or task.exception() is not None:
            _die("the batch in hand could not be finished during shutdown")
        raise
    except Exception:
        log.exception("batch failed")
        _die("a batch failed; stopping without committing its offsets so it is read again on restart")
    metrics.observe_batch(result, records)


def _die(why: str) -> None:
    log.critical("%s", why)
    logging.shutdown()
    sys.stderr.flush()
    os._exit(70)
