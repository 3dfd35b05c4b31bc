"""`effortpulse`: the command line (contract §8). Settings come from EFFORTPULSE_* variables."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from pydantic import ValidationError

from streams.settings import Settings, describe_errors

EPILOG = """settings are environment variables (EFFORTPULSE_KAFKA_BOOTSTRAP, EFFORTPULSE_REDIS_URL,
EFFORTPULSE_APP_ID, EFFORTPULSE_EVENTS_TOPIC, ...); the README lists them all."""


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        settings = Settings()
    except ValidationError as exc:
        print(f"effortpulse: bad setting:\n{describe_errors(exc)}", file=sys.stderr)
        return 2
    try:
        return int(args.run(settings, args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="effortpulse",
        description="Live customer-effort, churn-risk and NPS scoring for contact centres (Kafka in, Redis state).",
        epilog=EPILOG,
    )
    sub = p.add_subparsers(title="commands", metavar="COMMAND")

    w = sub.add_parser("worker", help="run the stream processor and its HTTP API", epilog=EPILOG)
    w.set_defaults(run=_worker)

    pr = sub.add_parser(
        "produce",
        help="publish JSON lines to the events topic as they are",
        description="Publish JSON lines, unvalidated, to EFFORTPULSE_EVENTS_TOPIC; the key is each line's "
        "customer_id where it has one. Prints how many were sent.",
    )
    pr.add_argument("file", metavar="FILE|-", help="a JSON-lines file, or - for standard input")
    pr.set_defaults(run=_produce)

    a = sub.add_parser(
        "alerts",
        help="print alerts as JSON lines",
        description="Print alerts from EFFORTPULSE_ALERTS_TOPIC as JSON lines. Without --follow it stops when no "
        "alert came for 5 seconds (or --timeout).",
    )
    a.add_argument("--from-beginning", action="store_true", help="start with the oldest stored alert")
    a.add_argument("--follow", action="store_true", help="keep waiting for new alerts until interrupted")
    a.add_argument("--timeout", type=float, metavar="SECONDS", help="stop when no alert came for this long")
    a.set_defaults(run=_alerts, topic_setting="alerts_topic")

    c = sub.add_parser("customer", help="a customer's journey as JSON (what GET /customers/ID answers)")
    c.add_argument("customer_id", metavar="ID")
    c.set_defaults(run=_customer)

    for metric, what, default_window in (
        ("nps", "NPS with its 95%% interval (adjusted Wald)", "7d"),
        ("ces", "CES: mean and share of 5–7", "7d"),
        ("csat", "CSAT: mean and share of 4–5", "7d"),
        ("insights", "first-contact resolution, repeat contacts and what causes effort", "30d"),
    ):
        q = sub.add_parser(metric, help=f"{what} over a window, as JSON (what GET /{metric} answers)")
        q.add_argument("--segment", default="all", help="all, channel:<c>, team:<t>, agent:<a> or reason:<r>")
        q.add_argument("--window", default=default_window, help=f"e.g. 7d, 28d, 24h (default {default_window})")
        q.add_argument("--at", help="end of the window, RFC 3339 (default now)")
        q.set_defaults(run=_score, metric=metric)

    ev = sub.add_parser(
        "evaluate",
        help="measure the churn risk against churn labels in an event file (no Kafka, no Redis)",
        description="Replay a JSON-lines event file through the same rules in memory and print one JSON object: "
        "customers, churned, roc_auc, brier, precision and recall at the warning threshold "
        "(EFFORTPULSE_CHURN_WARNING). A churner's risk is taken just before its customer.churned event, "
        "everyone else's at the end of the file. Invalid lines are skipped and counted. Tune the model with "
        "the EFFORTPULSE_CHURN_* settings and run it again.",
    )
    ev.add_argument("file", metavar="FILE", help="JSON lines, e.g. from `effortpulse simulate --out FILE`")
    ev.set_defaults(run=_evaluate)

    sim = sub.add_parser(
        "simulate",
        help="a simulated contact centre: events to Kafka at a steady rate, or to a JSON-lines file",
        description=SIMULATE_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EPILOG,
    )
    sim.add_argument("--customers", type=_positive(int), default=1000, metavar="N", help="customers (default 1000)")
    sim.add_argument(
        "--rate", type=_positive(float), default=200.0, metavar="EVENTS_PER_S", help="events per second (default 200)"
    )
    sim.add_argument(
        "--duration",
        type=_positive(float),
        metavar="S",
        help="wall seconds at --rate: how long to send, or with --out how many events to write "
        "(rate × S); default: the whole stream",
    )
    sim.add_argument("--seed", type=int, default=42, metavar="K", help="random seed (default 42)")
    sim.add_argument(
        "--speedup",
        type=_positive(float),
        default=3600.0,
        metavar="X",
        help="simulated seconds per wall second (default 3600: a day in 24 s)",
    )
    sim.add_argument(
        "--start",
        type=_timestamp,
        metavar="T",
        help="event time of the start, RFC 3339 (default: the stream ends at the last full UTC hour)",
    )
    sim.add_argument("--out", metavar="FILE", help="write JSON lines to FILE (- for standard output), not to Kafka")
    sim.set_defaults(run=_simulate)

    d = sub.add_parser(
        "demo",
        help="the main job, live: a worker, a simulated contact centre and a terminal view (make demo)",
        description=DEMO_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    d.add_argument(
        "--duration",
        type=_positive(float),
        metavar="SECONDS",
        help="stop this long after the view goes live and print the summary (default: until Ctrl-C)",
    )
    d.add_argument("--keep", action="store_true", help="keep the demo's Redis keys and topics; say how to read them")
    d.add_argument("--customers", type=_positive(int), default=4000, metavar="N", help="customers (default 4000)")
    d.add_argument(
        "--rate", type=_positive(float), default=400.0, metavar="EVENTS_PER_S", help="events per second (default 400)"
    )
    d.add_argument(
        "--speedup", type=_positive(float), default=3600.0, metavar="X", help="simulated seconds per second (3600)"
    )
    d.add_argument("--seed", type=int, default=42, metavar="K", help="random seed of the simulation (default 42)")
    d.set_defaults(run=_demo)

    _add_subscriptions(sub)

    s = sub.add_parser("schemas", help="JSON Schemas of the events and alerts")
    ssub = s.add_subparsers(title="schemas commands", metavar="COMMAND")
    e = ssub.add_parser("export", help="write one JSON Schema file per event type and one for alerts")
    e.add_argument("directory", metavar="DIR")
    e.set_defaults(run=_schemas_export)
    return p


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    from streams.app import run_worker

    run_worker(settings)
    return 0


def _produce(settings: Settings, args: argparse.Namespace) -> int:
    from streams.kafka import produce_lines

    if args.file == "-":
        sent, blank = produce_lines(settings, sys.stdin)
    else:
        try:
            with open(args.file, encoding="utf-8", errors="surrogateescape") as f:
                sent, blank = produce_lines(settings, f)
        except FileNotFoundError:
            print(f"effortpulse: no such file: {args.file}", file=sys.stderr)
            return 1
    skipped = f" ({blank} blank lines skipped)" if blank else ""
    print(f"sent {sent} records to {settings.events_topic}{skipped}")
    return 0


def _alerts(settings: Settings, args: argparse.Namespace) -> int:
    from streams.kafka import read_topic, write_lines

    write_lines(read_topic(settings, settings.alerts_topic, args.from_beginning, args.follow, args.timeout))
    return 0


def _customer(settings: Settings, args: argparse.Namespace) -> int:
    from streams import report
    from streams.state import StateStore

    state = _with_redis(settings, lambda client: StateStore(client, settings.app_id).get(args.customer_id))
    if state is None:
        print(f"effortpulse: no customer {args.customer_id!r}", file=sys.stderr)
        return 1
    _print_json(report.customer_view(state, settings.rules()))
    return 0


def _score(settings: Settings, args: argparse.Namespace) -> int:
    from streams import queries
    from streams.state import StateStore

    answer = {
        "nps": queries.nps,
        "insights": queries.insights,
        "ces": partial(queries.mean_score, metric="ces"),
        "csat": partial(queries.mean_score, metric="csat"),
    }[args.metric]

    async def fetch(client: Any) -> Any:
        return await answer(StateStore(client, settings.app_id), settings, args.segment, args.window, args.at)

    try:
        _print_json(_with_redis(settings, fetch))
    except queries.QueryError as exc:
        print(f"effortpulse {args.metric}: {exc}", file=sys.stderr)
        return 2
    return 0


def _evaluate(settings: Settings, args: argparse.Namespace) -> int:
    from streams.evaluate import evaluate

    try:
        with open(args.file, encoding="utf-8", errors="replace") as f:
            figures = evaluate(f, settings.rules())
    except FileNotFoundError:
        print(f"effortpulse: no such file: {args.file}", file=sys.stderr)
        return 1
    print(json.dumps(figures))
    return 0


SIMULATE_DESCRIPTION = """\
A simulated contact centre: N customers and their journeys — easy ones, and ones that go
wrong (repeat contacts, channel switches, transfers, repeated information, policy blocks,
holds and queues, failed self-service) — with surveys that follow the effort and churn labels,
as the events of the contract. The same arguments give the same events (ids sim-K-n).

Pacing: the stream holds about one event per X / EVENTS_PER_S simulated seconds, so sent at
--rate its event time advances about --speedup simulated seconds per wall second.
  to Kafka (no --out): EFFORTPULSE_EVENTS_TOPIC, key customer_id, --rate events per second for
      --duration seconds or until the stream ends; progress every 5 s; Ctrl-C stops cleanly.
  to a file (--out FILE): written at once: the first rate × duration events, or all of them
      without --duration; then a summary line.
Event time: the stream ends at the last full UTC hour (a file made twice within the hour is
byte-identical), or starts at --start."""


def _positive(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be more than 0: {text!r}")
        return value

    return parse


def _timestamp(text: str) -> Any:
    from datetime import datetime

    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an RFC 3339 timestamp: {text!r}") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"needs an offset, like 2026-11-25T10:00:00Z: {text!r}")
    return value


def _simulate(settings: Settings, args: argparse.Namespace) -> int:
    from streams.feed import run

    return run(
        settings,
        customers=args.customers,
        seed=args.seed,
        rate=args.rate,
        speedup=args.speedup,
        duration=args.duration,
        start=args.start,
        out=args.out,
    )


DEMO_DESCRIPTION = """\
The main job, live, in a world of its own: app id demo-<random>, topics demo.<random>.*, a free
port, on the configured Kafka and Redis. Starts `effortpulse worker` and `effortpulse simulate`
as child processes and shows alerts, NPS per channel and team with 95% intervals, CES, the
effort of cases, the open cases with the most effort and churn alerts (on a terminal a live
view, otherwise a plain-text snapshot every 10 s). Ctrl-C, SIGTERM or --duration end it: the
children are stopped, a summary is printed and the demo's Redis keys and topics are deleted
(unless --keep)."""


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    from streams.demo import DemoOptions, run_demo

    options = DemoOptions(
        duration=args.duration,
        keep=args.keep,
        customers=args.customers,
        rate=args.rate,
        speedup=args.speedup,
        seed=args.seed,
    )
    return run_demo(settings, options)


def _schemas_export(settings: Settings, args: argparse.Namespace) -> int:
    from schemas.export import export

    written = export(args.directory)
    print(f"wrote {len(written)} JSON Schema files to {args.directory}")
    return 0


SUBSCRIPTIONS_DESCRIPTION = """\
Alert subscriptions, as POST/GET/DELETE /subscriptions manage them: which alerts (types, minimum
severity, segments) go where (a Kafka topic, or a webhook URL signed with a secret). The running
workers deliver them. These commands talk to Redis directly (EFFORTPULSE_REDIS_URL,
EFFORTPULSE_APP_ID), like `effortpulse customer`: they need no running worker and no API token,
so keep them to people who may reach Redis anyway. The webhook allow-list checked is
EFFORTPULSE_WEBHOOK_ALLOW of this shell's environment. Secrets are never printed."""


def _add_subscriptions(sub: Any) -> None:
    p = sub.add_parser(
        "subscriptions",
        help="add, list or remove alert subscriptions (Kafka topics, signed webhooks)",
        description=SUBSCRIPTIONS_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ssub = p.add_subparsers(title="subscriptions commands", metavar="COMMAND")
    add = ssub.add_parser(
        "add",
        help="add a subscription; prints it with its id",
        description="Add a subscription and print it (with its id, without the secret). --type and --segment "
        "may be given more than once; without them every type and segment matches.",
    )
    add.add_argument("--name", required=True, help="what the subscription is for, e.g. 'billing team lead'")
    add.add_argument(
        "--type", action="append", default=[], dest="types", metavar="TYPE",
        help="effort.high, nps.detractor, churn.risk or nps.drop",
    )  # fmt: skip
    add.add_argument("--min-severity", default="warning", help="warning (default) or critical")
    add.add_argument(
        "--segment", action="append", default=[], dest="segments", metavar="SEGMENT",
        help="all, channel:<c>, team:<t>, agent:<a> or reason:<r>; an alert matches when one of its segments is listed",
    )  # fmt: skip
    where = add.add_mutually_exclusive_group(required=True)
    where.add_argument("--kafka-topic", metavar="TOPIC", help="produce matching alerts to this topic")
    where.add_argument("--webhook-url", metavar="URL", help="POST matching alerts here, signed with the secret")
    add.add_argument("--secret", help="the webhook's signing secret (shows in the process list: prefer --secret-file)")
    add.add_argument("--secret-file", metavar="FILE", help="read the secret from FILE's first line (- for stdin)")
    add.set_defaults(run=_subscriptions_add)
    ls = ssub.add_parser("list", help="print every subscription as JSON (never the secrets)")
    ls.set_defaults(run=_subscriptions_list)
    rm = ssub.add_parser("remove", help="remove subscriptions by id")
    rm.add_argument("ids", nargs="+", metavar="ID")
    rm.set_defaults(run=_subscriptions_remove)


def _subscriptions_add(settings: Settings, args: argparse.Namespace) -> int:
    from streams import delivery
    from streams.subscriptions import WebhookTarget, error_list

    target: dict[str, Any]
    if args.kafka_topic is not None:
        if args.secret is not None or args.secret_file is not None:
            print("effortpulse subscriptions add: a Kafka target takes no secret", file=sys.stderr)
            return 2
        target = {"kafka_topic": args.kafka_topic}
    else:
        secret = args.secret
        if args.secret_file is not None:
            try:
                f = sys.stdin if args.secret_file == "-" else open(args.secret_file, encoding="utf-8")  # noqa: SIM115
                with f:
                    secret = f.readline().rstrip("\r\n")
            except OSError as exc:
                print(f"effortpulse subscriptions add: cannot read the secret: {exc}", file=sys.stderr)
                return 1
        if not secret:
            print("effortpulse subscriptions add: a webhook needs --secret or --secret-file", file=sys.stderr)
            return 2
        target = {"webhook_url": args.webhook_url, "secret": secret}
    body = {
        "name": args.name,
        "types": args.types,
        "min_severity": args.min_severity,
        "segments": args.segments,
        "target": target,
    }
    try:
        created = delivery.new_subscription(body, settings)
    except ValidationError as exc:
        for e in error_list(exc):
            print(f"effortpulse subscriptions add: {'.'.join(map(str, e['loc']))}: {e['msg']}", file=sys.stderr)
        return 2

    async def save(client: Any) -> None:
        if not isinstance(created.target, WebhookTarget):
            await delivery.ensure_topic(settings, created.target.kafka_topic)
        await delivery.SubscriptionStore(client, settings.app_id).add(created)

    _with_redis(settings, save)
    _print_json(created.public())
    return 0


def _subscriptions_list(settings: Settings, args: argparse.Namespace) -> int:
    from streams import delivery

    subscriptions = _with_redis(settings, lambda client: delivery.SubscriptionStore(client, settings.app_id).all())
    _print_json({"subscriptions": [s.public() for s in subscriptions]})
    return 0


def _subscriptions_remove(settings: Settings, args: argparse.Namespace) -> int:
    from streams import delivery

    async def remove(client: Any) -> list[str]:
        store = delivery.SubscriptionStore(client, settings.app_id)
        return [i for i in args.ids if not await store.remove(i)]

    unknown = _with_redis(settings, remove)
    for i in args.ids:
        if i in unknown:
            print(f"effortpulse subscriptions remove: no subscription {i!r}", file=sys.stderr)
        else:
            print(f"removed {i}")
    return 1 if unknown else 0


def _with_redis(settings: Settings, use: Callable[[Any], Awaitable[Any]]) -> Any:
    """Run `use(client)` with a Redis client for these settings, closed afterwards."""
    from streams.app import redis_client

    async def run() -> Any:
        client = redis_client(settings)
        try:
            return await use(client)
        finally:
            await client.aclose()

    return asyncio.run(run())


def _print_json(doc: Any) -> None:
    print(json.dumps(doc, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    sys.exit(main())
