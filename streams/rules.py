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
    # §5 nps.drop
    nps_drop_recent_us: int = 7 * DAY
    nps_drop_baseline_us: int = 28 * DAY
    nps_drop_z: float = -1.96
    nps_drop_z_critical: float = -3.29
    nps_drop_min_responses: int = 30
    nps_drop_cooldown_us: int = 1 * DAY

    def weight(self, driver: str) -> float:
        """The points one occurrence of `driver` is worth."""
        return float(getattr(self, "effort_" + driver))
