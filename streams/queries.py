"""The read side shared by the HTTP API and the CLI: parameters in, the contract's answers out."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from schemas.events import CONTACT_CHANNELS, RFC3339
from streams.rules import DRIVERS
from streams.settings import Settings, format_duration, parse_duration
from streams.state import StateStore
from streams.surveys import MEAN_STATS, NPS_STATS, mean_from, nps_from, parse_segment, window
from streams.times import US, iso, to_us


class QueryError(ValueError):
    """A bad query parameter; the message says which and why (HTTP 400)."""


def parse_params(settings: Settings, segment: str | None, window_text: str | None, at_text: str | None,
                 default_window: str = "7d") -> tuple[str, float, int]:  # fmt: skip
    """(segment, window seconds, at µs) from query text; raises QueryError."""
    try:
        seg = parse_segment(segment if segment is not None else "all", CONTACT_CHANNELS)
    except ValueError as exc:
        raise QueryError(str(exc)) from None
    try:
        seconds = parse_duration(window_text if window_text is not None else default_window)
    except ValueError as exc:
        raise QueryError(f"window: {exc}") from None
    if seconds < 60:
        raise QueryError("window: must be at least 1m (figures are kept to the minute)")
    if seconds > settings.retention:
        raise QueryError(f"window: at most the retention, {format_duration(settings.retention)}")
    if at_text is None or at_text == "":
        at = time.time_ns() // 1000
    else:
        if not RFC3339.fullmatch(at_text):
            raise QueryError(f"at: {at_text!r} is not an RFC 3339 timestamp with an offset, like 2026-11-25T10:00:00Z")
        try:
            at = to_us(datetime.fromisoformat(at_text.replace("z", "Z").replace("t", "T")))
        except ValueError as exc:
            raise QueryError(f"at: {exc}") from None
    return seg, seconds, at


async def nps(store: StateStore, settings: Settings, segment: str | None, window_text: str | None,
              at_text: str | None) -> dict[str, Any]:  # fmt: skip
    seg, seconds, at = parse_params(settings, segment, window_text, at_text)
    win = window(at, round(seconds * US))
    stats = (await store.window_stats("nps", [(seg, win)], NPS_STATS))[(seg, win)]
    figures = nps_from(stats).as_dict()
    return {"segment": seg, "window": format_duration(seconds), "at": iso(at), **figures}


async def mean_score(store: StateStore, settings: Settings, segment: str | None, window_text: str | None,
                     at_text: str | None, *, metric: str) -> dict[str, Any]:  # fmt: skip
    """/ces and /csat: mean and share of the top answers (CES 5–7, CSAT 4–5)."""
    seg, seconds, at = parse_params(settings, segment, window_text, at_text)
    win = window(at, round(seconds * US))
    stats = (await store.window_stats(metric, [(seg, win)], MEAN_STATS))[(seg, win)]
    return {"segment": seg, "window": format_duration(seconds), "at": iso(at), **mean_from(stats).as_dict()}


async def insights(store: StateStore, settings: Settings, segment: str | None, window_text: str | None,
                   at_text: str | None) -> dict[str, Any]:  # fmt: skip
    """/insights: cases whose first contact lies in the window (to the hour), for one segment."""
    from streams import insights as ins

    seg, seconds, at = parse_params(settings, segment, window_text, at_text, default_window="30d")
    win = ins.hour_window(at, round(seconds * US))
    reasons = await store.reasons()
    stats = [*ins.BASE_STATS, *(f"d:{d}" for d in DRIVERS)]
    stats += [f"{ins.REASON_PREFIX}{r}:{k}" for r in reasons for k in ("cases", "effort")]
    summed = (await store.window_stats("insights", [(seg, win)], stats))[(seg, win)]
    return {"segment": seg, "window": format_duration(seconds), "at": iso(at), **ins.answer(summed, reasons)}


def gauge_segments(segments: set[str], agents: bool, limit: int) -> list[str]:
    """The segments whose scores go to Prometheus: all, every channel and team, agents only when
    allowed; at most `limit` in all (all first, then channels, teams, agents, each sorted)."""
    order = {"all": 0, "channel": 1, "team": 2, "agent": 3}
    chosen = [s for s in segments if s.partition(":")[0] in order and (agents or not s.startswith("agent:"))]
    chosen.sort(key=lambda s: (order[s.partition(":")[0]], s))
    return chosen[:limit]


async def score_figures(store: StateStore, segments: list[str], windows: tuple[str, ...], at: int
                        ) -> dict[tuple[str, str], dict[str, dict[str, Any]]]:  # fmt: skip
    """NPS, CES and CSAT of each segment over each window at `at`, in three round trips."""
    wins = {w: window(at, round(parse_duration(w) * US)) for w in windows}
    wanted = [(seg, win) for seg in segments for win in wins.values()]
    nps_stats = await store.window_stats("nps", wanted, NPS_STATS)
    ces_stats = await store.window_stats("ces", wanted, MEAN_STATS)
    csat_stats = await store.window_stats("csat", wanted, MEAN_STATS)
    return {
        (seg, name): {
            "nps": nps_from(nps_stats[(seg, win)]).as_dict(),
            "ces": mean_from(ces_stats[(seg, win)]).as_dict(),
            "csat": mean_from(csat_stats[(seg, win)]).as_dict(),
        }
        for seg in segments
        for name, win in wins.items()
    }


async def insight_figures(store: StateStore, segments: list[str], at: int) -> dict[str, dict[str, Any]]:
    """The /insights answer over 7 days for each segment, in one round trip."""
    from streams import insights as ins

    win = ins.hour_window(at, 7 * 86400 * US)
    stats = [*ins.BASE_STATS, *(f"d:{d}" for d in DRIVERS)]
    summed = await store.window_stats("insights", [(seg, win) for seg in segments], stats)
    return {seg: ins.answer(summed[(seg, win)], []) for seg in segments} if segments else {}
