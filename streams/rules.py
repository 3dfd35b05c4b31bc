"""The weights, thresholds and windows the pure core decides with (contract §3–§6).

A plain frozen dataclass: the core takes one of these and nothing else from its environment.
`streams.settings.Settings.rules()` builds it from EFFORTPULSE_* variables; the defaults here
are the contract's and the settings take theirs from here.
"""

from __future__ import annotations

from dataclasses import dataclass

from streams.times import DAY, HOUR, US

__all__ = ["DAY", "DRIVERS", "EFFORT_CAP", "HOUR", "US", "Rules"]

DRIVERS: tuple[str, ...] = (
    "repeat_contact",
    "channel_switch",
    "transfer",
    "repeated_info",
    "unresolved",
    "policy_friction",
    "hassle",
    "scripted_service",
    "self_service_failure",
)
EFFORT_CAP = 100.0


@dataclass(frozen=True, slots=True)
class Rules:
    # §3 cases
    repeat_window_us: int = 7 * DAY
    self_service_window_us: int = 1 * DAY
    retention_us: int = 400 * DAY
    # §4 effort weights (points)
    effort_repeat_contact: float = 15
    effort_channel_switch: float = 15
    effort_transfer: float = 10
    effort_repeated_info: float = 10
    effort_unresolved: float = 10
    effort_policy_friction: float = 10
    effort_hassle: float = 5
    effort_scripted_service: float = 5
    effort_self_service_failure: float = 10
    # §4 hassle: a hold or queue wait counts when it is longer than these
    effort_hold_over_s: float = 60
    effort_queue_wait_over_s: float = 120
    # §5 effort.high
    effort_warning: float = 60
    effort_critical: float = 80
    # §5 nps.detractor
    detractor_follow_up_us: int = 48 * HOUR
    detractor_critical_nps: int = 3
    detractor_critical_effort: float = 60
    # §5 churn.risk
    churn_warning: float = 0.7
    churn_critical: float = 0.85
    churn_alert_interval_us: int = 7 * DAY
    # churn model (streams.churn): log-odds intercept and one coefficient per feature
    churn_intercept: float = -2.2
    churn_coef_open_case_effort: float = 2.5  # × effort of the worst open case / 100
    churn_coef_recent_case_effort: float = 1.2  # × effort of the worst resolved case in the lookback / 100
    churn_coef_unresolved_cases: float = 0.4  # × open cases (up to 3)
    churn_coef_second_failure: float = 0.8  # a failed case after a recovered one
    churn_coef_detractor: float = 1.4
    churn_coef_passive: float = 0.3
    churn_coef_promoter: float = -0.8
    churn_coef_hard_effort_answer: float = 0.6  # × (4 − CES)/3 for CES 1–3
    churn_coef_poor_csat: float = 0.4  # × (3 − CSAT)/2 for CSAT 1–2
    churn_coef_recent_contact: float = 0.3  # × e^(−days since the last contact / recency)
    churn_lookback_us: int = 180 * DAY  # cases this recent count as "recent"
    churn_failure_effort: float = 40  # a case with this much effort (or reopened) is a failure
    churn_recency_us: int = 30 * DAY
    churn_label_horizon_us: int = 90 * DAY  # a customer not churned this long after a score is a negative
    # §5 nps.drop
    nps_drop_recent_us: int = 7 * DAY
    nps_drop_baseline_us: int = 28 * DAY
    nps_drop_z: float = -1.96
    nps_drop_z_critical: float = -3.29
    nps_drop_min_responses: int = 30
    nps_drop_cooldown_us: int = 1 * DAY

    def weight(self, driver: str) -> float:
        """The points one occurrence of `driver` is worth."""
        return float(getattr(self, _WEIGHT[driver]))


_WEIGHT = {d: "effort_" + d for d in DRIVERS}
