"""The HTTP API (contract §7) as faust web pages. Thin: parse, ask the store, render with report."""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import faust
from faust.web import Request, Response, View

from streams import delivery, metrics, queries, report

if TYPE_CHECKING:
    from streams.app import Context

log = logging.getLogger(__name__)
OPEN_PATHS = {"/health", "/metrics"}


def register(app: faust.App, ctx: Callable[[], Context]) -> None:
    """Add the API's pages to the app."""

    def guarded(handler: Callable[..., Awaitable[Response]]) -> Callable[..., Awaitable[Response]]:
        async def wrapper(view: View, request: Request, **kwargs: Any) -> Response:
            token = ctx().settings.api_token
            if token and request.path not in OPEN_PATHS:
                given = request.headers.get("Authorization", "")
                if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                    return view.json(
                        {"error": "unauthorized: send Authorization: Bearer <EFFORTPULSE_API_TOKEN>"},
                        status=401,
                        headers={"WWW-Authenticate": "Bearer"},
                    )
            return await handler(view, request, **kwargs)

        return wrapper

    delivery.register_pages(app, ctx, guarded)  # /subscriptions, behind the same token

    @app.page("/health")
    class Health(View):
        async def get(self, request: Request) -> Response:
            c = ctx()
            problems: dict[str, str] = {}
            try:
                await asyncio.wait_for(c.store.ping(), 3)
            except Exception as exc:
                problems["redis"] = f"not answering: {exc or type(exc).__name__}"
            try:
                await asyncio.wait_for(c.kafka_metadata(), 3)
            except Exception as exc:
                problems["kafka"] = f"not answering: {exc or type(exc).__name__}"
            if problems:
                return self.json({"status": "unavailable", **problems}, status=503)
            return self.json({"status": "ok"})

    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Request) -> Response:
            body, content_type = metrics.exposition()
            return self.bytes(body, content_type=content_type)

    def params(request: Request) -> tuple[str | None, str | None, str | None]:
        q = request.query
        return q.get("segment"), q.get("window"), q.get("at")

    def query_view(name: str, answer: Callable[..., Awaitable[dict[str, Any]]]) -> type[View]:
        """A GET page answering `answer(store, settings, segment, window, at)`; 400 on bad parameters."""

        class QueryView(View):
            @guarded
            async def get(self, request: Request) -> Response:
                c = ctx()
                try:
                    return self.json(await answer(c.store, c.settings, *params(request)))
                except queries.QueryError as exc:
                    return self.json({"error": str(exc)}, status=400)

        QueryView.__name__ = name  # faust names routes after the view class
        return QueryView

    app.page("/nps")(query_view("Nps", queries.nps))
    app.page("/ces")(query_view("Ces", partial(queries.mean_score, metric="ces")))
    app.page("/csat")(query_view("Csat", partial(queries.mean_score, metric="csat")))
    app.page("/insights")(query_view("Insights", queries.insights))

    @app.page("/cases/open")
    class OpenCases(View):
        @guarded
        async def get(self, request: Request) -> Response:
            """The open cases with the most effort, for a team lead's queue (`limit`, default 10)."""
            c = ctx()
            try:
                limit = int(request.query.get("limit", "10"))
                if not 1 <= limit <= 1000:
                    raise ValueError
            except ValueError:
                return self.json({"error": "limit: a whole number from 1 to 1000"}, status=400)
            rows = await c.store.top_open_cases(limit)
            listed = [report.open_case_row(st, case_id, c.pipeline.rules) for st, case_id, _ in rows]
            # the index and the states are read one after the other: a case resolved in between is left out
            return self.json({"cases": [row for row in listed if row["status"] == "open"]})

    @app.page("/customers/{customer_id}")
    class Customer(View):
        @guarded
        async def get(self, request: Request, customer_id: str) -> Response:
            c = ctx()
            state = await c.store.get(customer_id)
            if state is None:
                return self.json({"error": f"no customer {customer_id!r}"}, status=404)
            return self.json(report.customer_view(state, c.pipeline.rules))

        @guarded
        async def delete(self, request: Request, customer_id: str) -> Response:
            await ctx().store.delete_customer(customer_id)
            return self.bytes(b"", status=204)
