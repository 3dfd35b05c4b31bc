"""The alert of contract §5, as produced on EFFORTPULSE_ALERTS_TOPIC."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict

AlertType = Literal["effort.high", "nps.detractor", "churn.risk", "nps.drop"]
Severity = Literal["warning", "critical"]


class Reason(BaseModel):
    """One reason an alert fired: a driver, a line a team lead understands, and its weight."""

    model_config = ConfigDict(extra="forbid")

    driver: str
    detail: str
    contribution: float


class Alert(BaseModel):
    """One alert. `alert_id` is deterministic: the same events never yield a new id."""

    model_config = ConfigDict(extra="forbid")

    alert_id: str
    type: AlertType
    severity: Severity
    customer_id: str | None
    case_id: str | None
    contact_id: str | None
    segment: str | None
    segments: list[str]
    score: float
    threshold: float
    reasons: list[Reason]
    trigger_event_id: str | None
    occurred_at: AwareDatetime
    emitted_at: AwareDatetime
    due_at: AwareDatetime | None
