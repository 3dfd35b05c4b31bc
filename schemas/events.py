"""The input events of contract §3: one pydantic model per type and a union discriminated on `type`.

Validation is strict: a field of the wrong JSON type is an error (no "yes" → True, no "9" → 9),
timestamps must be RFC 3339 strings with an offset, and fields not named in the contract are
allowed and ignored.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    TypeAdapter,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

ContactChannel = Literal["phone", "chat", "email", "messaging", "social", "web_form", "store", "video"]
SelfServiceChannel = Literal["web", "app", "chatbot", "ivr"]
CONTACT_CHANNELS: tuple[str, ...] = ContactChannel.__args__  # type: ignore[attr-defined]
SELF_SERVICE_CHANNELS: tuple[str, ...] = SelfServiceChannel.__args__  # type: ignore[attr-defined]

Id = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=1000)]
Seconds = Annotated[float, Field(ge=0)]

MAX_RECORD_BYTES = 64 * 1024
_NAIVE = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?")
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


class BaseEvent(BaseModel):
    """Fields of every event."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True, allow_inf_nan=False)

    event_id: Id
    occurred_at: Annotated[AwareDatetime, Strict(False)]
    customer_id: Id

    @field_validator("occurred_at", mode="before")
    @classmethod
    def _rfc3339(cls, v: object) -> object:
        # pydantic also takes "2026-01-01 10:00Z" and partial dates; RFC 3339 wants a full
        # date, a "T" and a time.
        if isinstance(v, str) and RFC3339.fullmatch(v):
            return v
        if isinstance(v, str) and _NAIVE.fullmatch(v):
            raise PydanticCustomError("timezone_aware", "Timestamp has no offset; add Z or an offset such as +01:00")
        raise PydanticCustomError(
            "datetime_rfc3339", "Input should be an RFC 3339 timestamp with an offset, like 2026-11-25T10:00:00Z"
        )


class ContactStarted(BaseEvent):
    type: Literal["contact.started"]
    contact_id: Id
    channel: ContactChannel
    case_id: Id | None = None
    reason: Text | None = None
    agent_id: Id | None = None
    team_id: Id | None = None
    queue_wait_seconds: Seconds | None = None


class ContactTransferred(BaseEvent):
    type: Literal["contact.transferred"]
    contact_id: Id
    from_agent_id: Id | None = None
    to_agent_id: Id | None = None
    from_team_id: Id | None = None
    to_team_id: Id | None = None


class ContactInfoRepeated(BaseEvent):
    type: Literal["contact.info_repeated"]
    contact_id: Id
    info: Text | None = None


class ContactHeld(BaseEvent):
    type: Literal["contact.held"]
    contact_id: Id
    hold_seconds: Annotated[float, Field(gt=0)]


class ContactPolicyBlocked(BaseEvent):
    type: Literal["contact.policy_blocked"]
    contact_id: Id
    policy: Text | None = None


class ContactEnded(BaseEvent):
    type: Literal["contact.ended"]
    contact_id: Id
    resolved: bool
    agent_id: Id | None = None
    team_id: Id | None = None
    handle_seconds: Seconds | None = None
    scripted: bool | None = None
    disposition: Text | None = None


class SelfServiceFailed(BaseEvent):
    type: Literal["self_service.failed"]
    channel: SelfServiceChannel | None = None
    reason: Text | None = None
    case_id: Id | None = None


class CaseReopened(BaseEvent):
    type: Literal["case.reopened"]
    case_id: Id


class CaseResolved(BaseEvent):
    type: Literal["case.resolved"]
    case_id: Id
    proactive: bool | None = None


class SurveyResponded(BaseEvent):
    type: Literal["survey.responded"]
    nps: Annotated[int, Field(ge=0, le=10)] | None = None
    ces: Annotated[int, Field(ge=1, le=7)] | None = None
    csat: Annotated[int, Field(ge=1, le=5)] | None = None
    contact_id: Id | None = None
    case_id: Id | None = None
    comment: Annotated[str, StringConstraints(max_length=4000)] | None = None
    channel: ContactChannel | None = None
    team_id: Id | None = None
    agent_id: Id | None = None
    reason: Text | None = None

    @model_validator(mode="after")
    def _one_score(self) -> SurveyResponded:
        if self.nps is None and self.ces is None and self.csat is None:
            raise ValueError("a survey needs at least one of nps, ces, csat")
        return self


class CustomerChurned(BaseEvent):
    type: Literal["customer.churned"]
    reason: Text | None = None


Event = Annotated[
    ContactStarted
    | ContactTransferred
    | ContactInfoRepeated
    | ContactHeld
    | ContactPolicyBlocked
    | ContactEnded
    | SelfServiceFailed
    | CaseReopened
    | CaseResolved
    | SurveyResponded
    | CustomerChurned,
    Field(discriminator="type"),
]

EVENT_MODELS: dict[str, type[BaseEvent]] = {
    m.model_fields["type"].annotation.__args__[0]: m  # type: ignore[union-attr]
    for m in (
        ContactStarted,
        ContactTransferred,
        ContactInfoRepeated,
        ContactHeld,
        ContactPolicyBlocked,
        ContactEnded,
        SelfServiceFailed,
        CaseReopened,
        CaseResolved,
        SurveyResponded,
        CustomerChurned,
    )
}
EVENT_TYPES: tuple[str, ...] = tuple(EVENT_MODELS)

event_adapter: TypeAdapter[Event] = TypeAdapter(Event)


def parse_event(raw: bytes | str) -> Event:
    """Validate one JSON document as an event; raises pydantic.ValidationError."""
    return event_adapter.validate_json(raw)
