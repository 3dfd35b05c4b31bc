"""NPS, CES and CSAT over time (contract §5–§6): the statistics, the time buckets, the windows,
and the nps.drop rule. Pure: counts in, figures out.

Counts are kept per segment and metric in time buckets of three sizes — minutes, hours, days —
so any window, to the minute, is covered by at most 59 + 23 + days + 23 + 59 buckets. The
storage layout (which Redis key holds which bucket) lives in streams.state.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from streams.rules import Rules
from streams.times import DAY, HOUR, MINUTE

METRICS = ("nps", "ces", "csat")
SEGMENT_KINDS = ("channel", "team", "agent", "reason")
NPS_STATS = ("p", "a", "d")  # promoters 9–10, passives 7–8, detractors 0–6
MEAN_STATS = ("n", "s", "t", "q")  # answers, sum of scores, answers in the top share, sum of squares
TOP_SHARE = {"ces": 5, "csat": 4}  # CES: share of 5–7; CSAT: share of 4–5
Z_95 = 1.96


def nps_stat(score: int) -> str:
    return "p" if score >= 9 else "a" if score >= 7 else "d"


def category(score: int) -> str:
    return {"p": "promoter", "a": "passive", "d": "detractor"}[nps_stat(score)]


# ------------------------------------------------------------------------------ statistics


@dataclass(frozen=True, slots=True)
class NpsCounts:
    promoters: int = 0
    passives: int = 0
    detractors: int = 0

    @property
    def n(self) -> int:
        return self.promoters + self.passives + self.detractors

    def __add__(self, other: NpsCounts) -> NpsCounts:
        return NpsCounts(
            self.promoters + other.promoters, self.passives + other.passives, self.detractors + other.detractors
        )

    def __sub__(self, other: NpsCounts) -> NpsCounts:
        return NpsCounts(
            self.promoters - other.promoters, self.passives - other.passives, self.detractors - other.detractors
        )

    @property
    def nps(self) -> float | None:
        """100·(P − D)/n; None when there are no answers."""
        return 100 * (self.promoters - self.detractors) / self.n if self.n else None

    def interval(self) -> tuple[float, float, float, float]:
        """Adjusted Wald (§6): (centre c, margin of error, ci_low, ci_high), on the −100..100 scale."""
        n1 = self.n + 3
        p = (self.promoters + 0.75) / n1
        d = (self.detractors + 0.75) / n1
        c = 100 * (p - d)
        se = 100 * math.sqrt((p + d - (p - d) ** 2) / n1)
        margin = Z_95 * se
        return c, margin, max(-100.0, c - margin), min(100.0, c + margin)

    def plain_se(self) -> float:
        """The standard error of the NPS with p = P/n, d = D/n (used by the z-test of §5)."""
        if not self.n:
            return math.inf
        p, d = self.promoters / self.n, self.detractors / self.n
        return 100 * math.sqrt(max(0.0, p + d - (p - d) ** 2) / self.n)

    def as_dict(self) -> dict[str, float | int | None]:
        """The /nps answer's figures; unrounded; the interval is there even for n = 0 (it is wide)."""
        c, margin, low, high = self.interval()
        return {
            "n": self.n,
            "promoters": self.promoters,
            "passives": self.passives,
            "detractors": self.detractors,
            "nps": self.nps,
            "margin_of_error": margin,
            "ci_low": low,
            "ci_high": high,
        }


@dataclass(frozen=True, slots=True)
class MeanCounts:
    """CES or CSAT answers: how many, their sum, how many in the top share, sum of squares."""

    n: int = 0
    total: int = 0
    top: int = 0
    squares: int = 0

    def __add__(self, other: MeanCounts) -> MeanCounts:
        return MeanCounts(
            self.n + other.n, self.total + other.total, self.top + other.top, self.squares + other.squares
        )

    @property
    def mean(self) -> float | None:
        return self.total / self.n if self.n else None

    @property
    def share(self) -> float | None:
        return self.top / self.n if self.n else None

    def margin_of_error(self) -> float | None:
        """95% margin of the mean (normal approximation with the sample variance); None below n = 2."""
        if self.n < 2:
            return None
        variance = (self.squares - self.total**2 / self.n) / (self.n - 1)
        return Z_95 * math.sqrt(max(0.0, variance) / self.n)

    def as_dict(self) -> dict[str, float | int | None]:
        return {"n": self.n, "mean": self.mean, "share": self.share, "margin_of_error": self.margin_of_error()}


def z_drop(recent: NpsCounts, baseline: NpsCounts) -> float:
    """z = (NPS₁ − NPS₂)/√(SE₁² + SE₂²) with plain SEs; when both are 0, −∞ if NPS₁ < NPS₂."""
    assert recent.nps is not None and baseline.nps is not None
    diff = recent.nps - baseline.nps
    se = math.sqrt(recent.plain_se() ** 2 + baseline.plain_se() ** 2)
    if se == 0:
        return -math.inf if diff < 0 else (math.inf if diff > 0 else 0.0)
    return diff / se


# --------------------------------------------------------------------------------- buckets

# a bucket: (level, index) with level "m" (minute), "h" (hour) or "d" (day) since the epoch
Bucket = tuple[str, int]
LEVEL_US = {"m": MINUTE, "h": HOUR, "d": DAY}


def buckets_of(t_us: int) -> list[Bucket]:
    """The minute, hour and day a timestamp counts in."""
    return [(level, t_us // size) for level, size in LEVEL_US.items()]


def cover(after_minute: int, upto_minute: int) -> list[Bucket]:
    """The fewest buckets covering minutes after_minute < m ≤ upto_minute."""
    lo, hi = after_minute + 1, upto_minute + 1  # [lo, hi) in minutes
    parts: list[Bucket] = []
    while lo < hi and lo % 60:
        parts.append(("m", lo))
        lo += 1
    while lo + 60 <= hi and (lo // 60) % 24:
        parts.append(("h", lo // 60))
        lo += 60
    while lo + 1440 <= hi:
        parts.append(("d", lo // 1440))
        lo += 1440
    while lo + 60 <= hi:
        parts.append(("h", lo // 60))
        lo += 60
    while lo < hi:
        parts.append(("m", lo))
        lo += 1
    return parts


def window(at_us: int, length_us: int) -> tuple[int, int]:
    """A window as (after_minute, upto_minute): answers with at − length < occurred_at ≤ at, to the minute."""
    return (at_us - length_us) // MINUTE, at_us // MINUTE


def in_window(t_us: int, win: tuple[int, int]) -> bool:
    return win[0] < t_us // MINUTE <= win[1]


# ---------------------------------------------------------------------------- observations


@dataclass(frozen=True, slots=True)
class SurveyAnswer:
    """One applied survey as the aggregates see it: when, where (segments) and the scores."""

    occurred_at: int
    segments: tuple[str, ...]  # always starts with "all"
    nps: int | None = None
    ces: int | None = None
    csat: int | None = None


# one increment of the aggregates: (metric, segment, bucket, stat, amount)
Cell = tuple[str, str, Bucket, str, int]


def cells(answer: SurveyAnswer) -> list[Cell]:
    """The increments one answer makes, in every segment and bucket it counts in."""
    out: list[Cell] = []
    bucket_list = buckets_of(answer.occurred_at)
    for segment in answer.segments:
        for bucket in bucket_list:
            if answer.nps is not None:
                out.append(("nps", segment, bucket, nps_stat(answer.nps), 1))
            for metric, score in (("ces", answer.ces), ("csat", answer.csat)):
                if score is None:
                    continue
                out.append((metric, segment, bucket, "n", 1))
                out.append((metric, segment, bucket, "s", score))
                if score >= TOP_SHARE[metric]:
                    out.append((metric, segment, bucket, "t", 1))
                out.append((metric, segment, bucket, "q", score * score))
    return out


def nps_from(values: dict[str, float]) -> NpsCounts:
    return NpsCounts(int(values.get("p", 0)), int(values.get("a", 0)), int(values.get("d", 0)))


def mean_from(values: dict[str, float]) -> MeanCounts:
    g = values.get
    return MeanCounts(int(g("n", 0)), int(g("s", 0)), int(g("t", 0)), int(g("q", 0)))


# ------------------------------------------------------------------------------ segments


def parse_segment(text: str, channels: Iterable[str]) -> str:
    """A segment as the API takes it (`all`, `channel:chat`, `team:billing`, ...); raises ValueError."""
    if text == "all":
        return text
    kind, sep, value = text.partition(":")
    if not sep or kind not in SEGMENT_KINDS:
        raise ValueError(
            f"segment {text!r} is not one of all, channel:<channel>, team:<team>, agent:<agent>, reason:<reason>"
        )
    if not value:
        raise ValueError(f"segment {text!r} names no {kind}")
    if kind == "channel" and value not in set(channels):
        raise ValueError(f"segment {text!r}: channel must be one of {', '.join(channels)}")
    return text


# ------------------------------------------------------------------------------ nps.drop


@dataclass(slots=True)
class DropState:
    """What the nps.drop rule remembers of a segment: the latest answer time seen, the last alert."""

    latest_at: int | None = None
    last_alert_at: int | None = None


@dataclass(frozen=True, slots=True)
class Drop:
    """A significant NPS drop of a segment at `at`."""

    segment: str
    at: int
    recent: NpsCounts
    baseline: NpsCounts
    z: float


@dataclass(slots=True)
class DropCheck:
    """Evaluates nps.drop for one segment after each answer (§5), on counts that combine what
    Redis held before the batch with the batch's own earlier answers."""

    segment: str
    state: DropState
    base: dict[tuple[int, int], NpsCounts]  # window → counts in Redis before the batch
    rules: Rules
    seen: list[tuple[int, str]] = field(default_factory=list)  # this batch's answers so far: (time, stat)

    def _counts(self, win: tuple[int, int]) -> NpsCounts:
        extra = {"p": 0, "a": 0, "d": 0}
        for t, stat in self.seen:
            if in_window(t, win):
                extra[stat] += 1
        return self.base[win] + nps_from(extra)

    def after(self, occurred_at: int, nps: int) -> Drop | None:
        """Record one answer and evaluate the rule at the segment's latest answer time."""
        self.seen.append((occurred_at, nps_stat(nps)))
        st = self.state
        st.latest_at = occurred_at if st.latest_at is None else max(st.latest_at, occurred_at)
        at = st.latest_at
        if st.last_alert_at is not None and at < st.last_alert_at + self.rules.nps_drop_cooldown_us:
            return None
        recent_w, baseline_w = drop_windows(at, self.rules)
        recent, baseline = self._counts(recent_w), self._counts(baseline_w)
        if min(recent.n, baseline.n) < self.rules.nps_drop_min_responses:
            return None
        assert recent.nps is not None and baseline.nps is not None
        if recent.nps >= baseline.nps:
            return None
        z = z_drop(recent, baseline)
        if z > self.rules.nps_drop_z:
            return None
        st.last_alert_at = at
        return Drop(self.segment, at, recent, baseline, z)


def drop_windows(at: int, rules: Rules) -> tuple[tuple[int, int], tuple[int, int]]:
    """The two windows nps.drop compares at `at`: the recent one and the baseline before it."""
    recent = window(at, rules.nps_drop_recent_us)
    return recent, window(at - rules.nps_drop_recent_us, rules.nps_drop_baseline_us)
