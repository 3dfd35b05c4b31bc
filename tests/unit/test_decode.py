"""From a Kafka record to an event or a dead letter (contract §3, streams/decode.py).

Every invalid kind of §3 goes through `decode()` and comes out as a DeadLetter with a stable
reason label, a one-line `error`, pydantic-style `errors` and the DLQ JSON `value()`.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.events import EVENT_MODELS, MAX_RECORD_BYTES
from streams.decode import DeadLetter, Record, decode
from streams.times import to_us
from tests.unit.test_events import ALL_TYPES, MODELS, OPTIONAL, REQUIRED, event

TOPIC = "cx.events"
PARTITION = 3
OFFSET = 4242
KEY = b"cu-1"
RECEIVED_AT = to_us(datetime(2026, 11, 22, 10, 0, 5, 123456, tzinfo=UTC))
RECEIVED_AT_TEXT = "2026-11-22T10:00:05.123456Z"
DLQ_KEYS = {"error", "errors", "topic", "partition", "offset", "received_at", "payload"}
RFC3339_Z = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z")


def record(value: bytes | None, key: bytes | None = KEY) -> Record:
    return Record(key, value, TOPIC, PARTITION, OFFSET)


def encode(doc: Any) -> bytes:
    return json.dumps(doc).encode()


def dead(value: bytes | None, key: bytes | None = KEY) -> DeadLetter:
    out = decode(record(value, key), RECEIVED_AT)
    assert isinstance(out, DeadLetter), f"expected a dead letter, got {out!r}"
    assert_dlq_shape(out)
    return out


def dead_doc(doc: Any) -> DeadLetter:
    return dead(encode(doc))


def first(dl: DeadLetter) -> dict[str, Any]:
    return dl.errors[0]


def assert_dlq_shape(dl: DeadLetter) -> None:
    """What every dead letter must look like, whatever the input."""
    assert isinstance(dl.reason, str) and dl.reason
    assert isinstance(dl.error, str) and dl.error
    assert "\n" not in dl.error
    assert isinstance(dl.errors, list) and dl.errors
    for e in dl.errors:
        assert isinstance(e, dict)
        assert {"type", "loc", "msg"} <= set(e)
        assert isinstance(e["type"], str) and e["type"]
        assert isinstance(e["loc"], list)
        assert all(isinstance(x, str | int) for x in e["loc"])
        assert isinstance(e["msg"], str) and e["msg"]
    value = dl.value()
    expected = DLQ_KEYS | ({"payload_encoding"} if "payload_encoding" in value else set())
    assert set(value) == expected
    assert value["error"] == dl.error
    assert value["errors"] == dl.errors
    assert value["topic"] == dl.record.topic
    assert value["partition"] == dl.record.partition
    assert value["offset"] == dl.record.offset
    assert RFC3339_Z.fullmatch(value["received_at"])
    assert isinstance(value["payload"], str)
    json.dumps(value)


# --- valid records ---------------------------------------------------------------------------


@pytest.mark.parametrize("type_", ALL_TYPES)
def test_decode_valid_event_with_required_fields(type_: str) -> None:
    out = decode(record(encode(event(type_))), RECEIVED_AT)
    assert type(out) is MODELS[type_]


@pytest.mark.parametrize("type_", ALL_TYPES)
def test_decode_valid_event_with_all_optional_fields_and_extras(type_: str) -> None:
    out = decode(record(encode(event(type_, **OPTIONAL[type_], x_extra={"a": 1}))), RECEIVED_AT)
    assert type(out) is MODELS[type_]


def test_decode_accepts_trailing_whitespace() -> None:
    out = decode(record(encode(event("customer.churned")) + b"\n"), RECEIVED_AT)
    assert type(out) is EVENT_MODELS["customer.churned"]


# --- not UTF-8 --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"\xff\xfe\x00garbage",
        # a valid event, but Latin-1 encoded: "José" as 4a 6f 73 e9
        json.dumps(event("customer.churned", customer_id="José"), ensure_ascii=False).encode("latin-1"),
        b'{"event_id": "\xed\xa0\x80"}',  # a UTF-16 surrogate encoded in UTF-8 is not UTF-8
        b'{"event_id": "\xc0\xaf"}',  # overlong encoding of "/"
        b'{"a": "\xe2\x82"}',  # truncated sequence
    ],
    ids=["garbage", "latin1_event", "encoded_surrogate", "overlong", "truncated"],
)
def test_not_utf8_goes_to_dlq_with_base64_payload(raw: bytes) -> None:
    dl = dead(raw)
    assert dl.reason == "not_utf8"
    assert first(dl)["type"] == "utf8"
    assert first(dl)["loc"] == []
    value = dl.value()
    assert value["payload_encoding"] == "base64"
    assert set(value) == DLQ_KEYS | {"payload_encoding"}
    assert base64.b64decode(value["payload"], validate=True) == raw


def test_utf8_payload_is_text_without_payload_encoding() -> None:
    raw = '{"type": "nope", "customer_id": "José 😀"}'.encode()
    value = dead(raw).value()
    assert "payload_encoding" not in value
    assert set(value) == DLQ_KEYS
    assert value["payload"] == raw.decode("utf-8")
    assert value["payload"].encode("utf-8") == raw


# --- not JSON ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"{",
        b"{'event_id': 'ev-1'}",
        b'{"event_id": "ev-1",}',
        encode(event("customer.churned")) + b" trailing",
        b"   ",
        b'{"a": ' * 300 + b"1" + b"}" * 300,  # nested past the parser's recursion limit
    ],
    ids=["text", "unclosed", "single_quotes", "trailing_comma", "trailing_garbage", "blank", "too_deep"],
)
def test_not_json_goes_to_dlq(raw: bytes) -> None:
    dl = dead(raw)
    assert dl.reason == "not_json"
    assert first(dl)["type"] == "json_invalid"
    assert first(dl)["loc"] == []
    assert dl.value()["payload"] == raw.decode("utf-8")


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e999"])
def test_non_finite_numbers_go_to_the_dlq(literal: bytes) -> None:
    # NaN/Infinity are not JSON (RFC 8259) and 1e999 overflows a double: none is a finite number
    raw = encode(event("contact.held", hold_seconds=1)).replace(b'"hold_seconds": 1', b'"hold_seconds": ' + literal)
    assert literal in raw
    dl = dead(raw)
    assert dl.reason == "invalid_field"
    assert first(dl)["type"] == "finite_number"
    assert first(dl)["loc"] == ["hold_seconds"]
    json.dumps(dl.value(), allow_nan=False)


# --- JSON but not an object -------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [b"[]", encode([event("customer.churned")]), b'"customer.churned"', b"42", b"-1.5", b"null", b"true"],
    ids=["empty_array", "array_of_event", "string", "int", "float", "null", "bool"],
)
def test_json_that_is_not_an_object_goes_to_dlq(raw: bytes) -> None:
    dl = dead(raw)
    assert dl.reason == "not_object"
    assert first(dl)["type"] == "dict_type"
    assert first(dl)["loc"] == []
    assert len(dl.errors) == 1


# --- size -------------------------------------------------------------------------------------


def padded(size: int, filler: str = "x") -> bytes:
    """A valid event of exactly `size` bytes, padded with an extra (ignored) field."""
    base = encode(event("customer.churned", x_pad=""))
    n = (size - len(base)) // len(filler.encode())
    raw = encode(event("customer.churned", x_pad=filler * n))
    assert len(raw) == size
    return raw


def test_max_record_bytes_is_64_kib() -> None:
    assert MAX_RECORD_BYTES == 65536


def test_record_of_exactly_64_kib_is_not_rejected_for_size() -> None:
    out = decode(record(padded(65536)), RECEIVED_AT)
    assert type(out) is EVENT_MODELS["customer.churned"]


def test_record_one_byte_over_64_kib_goes_to_dlq() -> None:
    dl = dead(padded(65537))
    assert dl.reason == "too_large"


def test_record_of_70_kib_goes_to_dlq_as_too_large() -> None:
    raw = padded(70 * 1024)
    dl = dead(raw)
    assert dl.reason == "too_large"
    assert first(dl)["type"] == "too_large"
    assert first(dl)["loc"] == []
    assert str(70 * 1024) in dl.error
    assert dl.value()["payload"] == raw.decode("utf-8")


def test_size_limit_counts_bytes_not_characters() -> None:
    # 40,000 two-byte characters: fewer than 65,536 characters, but 80,000+ bytes.
    raw = encode(event("customer.churned", x_pad="é" * 40_000)).replace(b"\\u00e9", "é".encode())
    assert len(raw.decode("utf-8")) < 65536 < len(raw)
    assert dead(raw).reason == "too_large"


def test_record_of_70_kib_not_utf8_goes_to_dlq_as_too_large_with_base64_payload() -> None:
    raw = b"\xff" * (70 * 1024)
    dl = dead(raw)
    assert dl.reason == "too_large"
    assert dl.value()["payload_encoding"] == "base64"
    assert base64.b64decode(dl.value()["payload"]) == raw


# --- type -------------------------------------------------------------------------------------


@pytest.mark.parametrize("type_", ["contact.unknown", "Contact.Started", "contact.started ", "", "survey"])
def test_unknown_type_goes_to_dlq(type_: str) -> None:
    dl = dead_doc(event("customer.churned", type=type_))
    assert dl.reason == "unknown_type"
    assert first(dl)["type"] == "union_tag_invalid"
    assert first(dl)["loc"] == []
    assert len(dl.errors) == 1


@pytest.mark.parametrize("type_", [None, 5, True, ["contact.started"], {"a": 1}])
def test_non_string_type_goes_to_dlq(type_: Any) -> None:
    dl = dead_doc(event("customer.churned", type=type_))
    assert dl.reason == "unknown_type"


def test_missing_type_goes_to_dlq() -> None:
    doc = event("customer.churned")
    del doc["type"]
    dl = dead_doc(doc)
    assert dl.reason == "missing_field"
    assert first(dl)["type"] == "union_tag_not_found"
    assert first(dl)["loc"] == []
    assert "'type'" in dl.error


# --- missing required fields ------------------------------------------------------------------

BASE_FIELDS = ["event_id", "occurred_at", "customer_id"]
# A missing occurred_at has its own tests below (its reason label is off).
MISSING_CASES = [(t, f) for t in ALL_TYPES for f in BASE_FIELDS if f != "occurred_at"] + [
    (t, f) for t in ALL_TYPES if t != "survey.responded" for f in REQUIRED[t]
]


@pytest.mark.parametrize(("type_", "field"), MISSING_CASES, ids=[f"{t}-{f}" for t, f in MISSING_CASES])
def test_missing_required_field_goes_to_dlq(type_: str, field: str) -> None:
    doc = event(type_)
    del doc[field]
    dl = dead_doc(doc)
    assert dl.reason == "missing_field"
    assert dl.errors == [{"type": "missing", "loc": [field], "msg": "Field required"}]
    assert dl.error == f"{field}: Field required"


def test_missing_occurred_at_has_a_pydantic_missing_error() -> None:
    doc = event("contact.started")
    del doc["occurred_at"]
    dl = dead_doc(doc)
    assert dl.errors == [{"type": "missing", "loc": ["occurred_at"], "msg": "Field required"}]
    assert dl.error == "occurred_at: Field required"


@pytest.mark.parametrize("type_", ["contact.started", "customer.churned"])
def test_missing_occurred_at_is_labelled_missing_field(type_: str) -> None:
    doc = event(type_)
    del doc["occurred_at"]
    assert dead_doc(doc).reason == "missing_field"


def test_several_missing_fields_are_all_listed_and_summarised_on_one_line() -> None:
    dl = dead_doc({"type": "contact.held"})
    assert dl.reason == "missing_field"
    assert [e["loc"] for e in dl.errors] == [
        ["event_id"],
        ["occurred_at"],
        ["customer_id"],
        ["contact_id"],
        ["hold_seconds"],
    ]
    assert {e["type"] for e in dl.errors} == {"missing"}
    assert dl.error == "event_id: Field required (and 4 more)"


@pytest.mark.parametrize("scores", [{}, {"nps": None, "ces": None, "csat": None}])
def test_survey_without_any_score_goes_to_dlq(scores: dict[str, Any]) -> None:
    doc = event("survey.responded")
    del doc["nps"]
    dl = dead_doc(doc | scores)
    assert dl.reason == "invalid_field"
    assert first(dl)["type"] == "value_error"
    assert first(dl)["loc"] == []
    assert "nps, ces, csat" in dl.error


# --- ill-typed fields -------------------------------------------------------------------------

ILL_TYPED = [
    ("contact.ended", "resolved", "yes", "bool_type"),
    ("contact.ended", "resolved", 1, "bool_type"),
    ("contact.ended", "resolved", None, "bool_type"),
    ("contact.ended", "scripted", "true", "bool_type"),
    ("case.resolved", "proactive", "no", "bool_type"),
    ("survey.responded", "nps", "9", "int_type"),
    ("survey.responded", "nps", True, "int_type"),
    ("survey.responded", "nps", 9.5, "int_type"),
    ("survey.responded", "ces", "5", "int_type"),
    ("survey.responded", "csat", [4], "int_type"),
    ("contact.held", "hold_seconds", "61", "float_type"),
    ("contact.held", "hold_seconds", True, "float_type"),
    ("contact.started", "queue_wait_seconds", "30", "float_type"),
    ("contact.ended", "handle_seconds", {"s": 1}, "float_type"),
    ("case.reopened", "case_id", 5, "string_type"),
    ("contact.started", "case_id", 5, "string_type"),
    ("contact.started", "contact_id", ["ct-1"], "string_type"),
    ("customer.churned", "event_id", 5, "string_type"),
    ("customer.churned", "customer_id", 12345, "string_type"),
    ("customer.churned", "customer_id", None, "string_type"),
    ("survey.responded", "comment", 42, "string_type"),
    ("contact.started", "channel", 1, "literal_error"),
]


@pytest.mark.parametrize(
    ("type_", "field", "value", "err"), ILL_TYPED, ids=[f"{t}-{f}-{v!r}" for t, f, v, _ in ILL_TYPED]
)
def test_ill_typed_field_goes_to_dlq(type_: str, field: str, value: Any, err: str) -> None:
    dl = dead_doc(event(type_, **{field: value}))
    assert dl.reason == "invalid_field"
    assert len(dl.errors) == 1
    assert first(dl)["type"] == err
    assert first(dl)["loc"] == [field]
    assert dl.error.startswith(f"{field}: ")


# --- out of range -----------------------------------------------------------------------------

OUT_OF_RANGE = [
    ("nps", -1, "greater_than_equal"),
    ("nps", 11, "less_than_equal"),
    ("nps", 10**30, "less_than_equal"),
    ("ces", 0, "greater_than_equal"),
    ("ces", 8, "less_than_equal"),
    ("csat", 0, "greater_than_equal"),
    ("csat", 6, "less_than_equal"),
]


@pytest.mark.parametrize(("field", "value", "err"), OUT_OF_RANGE, ids=[f"{f}={v}" for f, v, _ in OUT_OF_RANGE])
def test_score_out_of_range_goes_to_dlq(field: str, value: int, err: str) -> None:
    doc = event("survey.responded")
    del doc["nps"]
    dl = dead_doc(doc | {field: value})
    assert dl.reason == "out_of_range"
    assert len(dl.errors) == 1
    assert first(dl)["type"] == err
    assert first(dl)["loc"] == [field]


def test_one_bad_score_rejects_the_survey_even_when_another_is_good() -> None:
    dl = dead_doc(event("survey.responded", nps=9, ces=8))
    assert dl.reason == "out_of_range"
    assert first(dl)["loc"] == ["ces"]


@pytest.mark.parametrize("hold", [0, 0.0, -1, -0.5])
def test_hold_seconds_zero_or_negative_goes_to_dlq(hold: float) -> None:
    dl = dead_doc(event("contact.held", hold_seconds=hold))
    assert dl.reason == "out_of_range"
    assert first(dl)["type"] == "greater_than"
    assert first(dl)["loc"] == ["hold_seconds"]


# --- timestamps -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ts", ["2026-11-22T10:00:00", "2026-11-22T10:00:00.123", "2026-11-22t10:00:00", "2026-11-22T10:00"]
)
def test_naive_timestamp_goes_to_dlq_as_naive_timestamp(ts: str) -> None:
    dl = dead_doc(event("contact.started", occurred_at=ts))
    assert dl.reason == "naive_timestamp"
    assert len(dl.errors) == 1
    assert first(dl)["type"] == "timezone_aware"
    assert first(dl)["loc"] == ["occurred_at"]
    assert dl.error.startswith("occurred_at: ")


BAD_TIMESTAMPS = [
    ("2026-11-22 10:00:00Z", "datetime_rfc3339"),
    ("22/11/2026", "datetime_rfc3339"),
    (1763805600, "datetime_rfc3339"),
    (1763805600.5, "datetime_rfc3339"),
    ("1763805600", "datetime_rfc3339"),
    ("2026-11-22", "datetime_rfc3339"),
    ("2026-11-22T10:00Z", "datetime_rfc3339"),
    ("2026-11-22T10:00:00+0100", "datetime_rfc3339"),
    ("2026-11-22T10:00:00+01", "datetime_rfc3339"),
    ("2026-11-22T10:00:00 +01:00", "datetime_rfc3339"),
    ("2026-11-22T10:00:00Z\n", "datetime_rfc3339"),
    ("Sun, 22 Nov 2026 10:00:00 GMT", "datetime_rfc3339"),
    ("", "datetime_rfc3339"),
    (None, "datetime_rfc3339"),
    ({"ts": "2026-11-22T10:00:00Z"}, "datetime_rfc3339"),
    ("2026-02-30T10:00:00Z", "datetime_from_date_parsing"),
    ("2026-11-22T25:00:00Z", "datetime_from_date_parsing"),
]


@pytest.mark.parametrize(("ts", "err"), BAD_TIMESTAMPS, ids=[repr(t) for t, _ in BAD_TIMESTAMPS])
def test_non_rfc3339_timestamp_goes_to_dlq_as_bad_timestamp(ts: Any, err: str) -> None:
    dl = dead_doc(event("contact.started", occurred_at=ts))
    assert dl.reason == "bad_timestamp"
    assert len(dl.errors) == 1
    assert first(dl)["type"] == err
    assert first(dl)["loc"] == ["occurred_at"]


@pytest.mark.parametrize("ts", ["2026-11-22T11:00:00+01:00", "2026-11-22T04:30:00-05:30", "2026-11-22T10:00:00z"])
def test_decode_timestamp_with_offset_is_valid(ts: str) -> None:
    out = decode(record(encode(event("customer.churned", occurred_at=ts))), RECEIVED_AT)
    assert out.occurred_at == datetime(2026, 11, 22, 10, 0, tzinfo=UTC)  # type: ignore[union-attr]


# --- ids, channels, comment -------------------------------------------------------------------


@pytest.mark.parametrize("field", ["event_id", "customer_id"])
@pytest.mark.parametrize(
    ("value", "err"), [("", "string_too_short"), ("x" * 129, "string_too_long"), ("é" * 129, "string_too_long")]
)
def test_id_empty_or_over_128_chars_goes_to_dlq(field: str, value: str, err: str) -> None:
    dl = dead_doc(event("contact.started", **{field: value}))
    assert dl.reason == "out_of_range"
    assert len(dl.errors) == 1
    assert first(dl)["type"] == err
    assert first(dl)["loc"] == [field]


@pytest.mark.parametrize("channel", ["fax", "web", "chatbot", "Phone", ""])
def test_unknown_contact_channel_goes_to_dlq(channel: str) -> None:
    dl = dead_doc(event("contact.started", channel=channel))
    assert dl.reason == "invalid_field"
    assert first(dl)["type"] == "literal_error"
    assert first(dl)["loc"] == ["channel"]


@pytest.mark.parametrize("channel", ["phone", "website", "IVR", ""])
def test_unknown_self_service_channel_goes_to_dlq(channel: str) -> None:
    dl = dead_doc(event("self_service.failed", channel=channel))
    assert dl.reason == "invalid_field"
    assert first(dl)["type"] == "literal_error"
    assert first(dl)["loc"] == ["channel"]


def test_comment_over_4000_chars_goes_to_dlq() -> None:
    dl = dead_doc(event("survey.responded", comment="x" * 4001))
    assert dl.reason == "out_of_range"
    assert first(dl)["type"] == "string_too_long"
    assert first(dl)["loc"] == ["comment"]
    assert "\n" not in dl.error


# --- the DLQ value ----------------------------------------------------------------------------

INVALID_SAMPLES = [
    b"\xff\xfe",
    b"not json",
    b'{\n  "event_id": "ev-1",\n  "type": \n}',
    b"[1, 2]",
    b"null",
    padded(70 * 1024),
    encode({**event("customer.churned"), "type": "nope"}),
    encode({"type": "contact.held"}),
    encode(event("contact.ended", resolved="yes")),
    encode(event("survey.responded", nps=11, ces=0, csat="x", comment="a\nb" * 2000)),
    encode(event("customer.churned", occurred_at="2026-11-22T10:00:00")),
    encode(event("customer.churned", occurred_at="22/11/2026")),
    encode({**event("customer.churned"), "type": "line1\nline2"}),
    b"",
    None,
]


@pytest.mark.parametrize("raw", INVALID_SAMPLES, ids=range(len(INVALID_SAMPLES)))
def test_dlq_value_has_exactly_the_contract_keys(raw: bytes | None) -> None:
    dl = dead(raw)
    value = dl.value()
    utf8 = True
    try:
        (raw or b"").decode("utf-8")
    except UnicodeDecodeError:
        utf8 = False
    assert set(value) == (DLQ_KEYS if utf8 else DLQ_KEYS | {"payload_encoding"})
    assert value["topic"] == TOPIC
    assert value["partition"] == PARTITION
    assert value["offset"] == OFFSET
    assert value["received_at"] == RECEIVED_AT_TEXT
    assert dl.error.splitlines() == [dl.error]
    assert json.loads(json.dumps(value, allow_nan=False)) == value


def test_dlq_received_at_is_rfc3339_utc_with_z() -> None:
    for received, text in [
        (RECEIVED_AT, RECEIVED_AT_TEXT),
        (to_us(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)), "2026-01-02T03:04:05Z"),
        (0, "1970-01-01T00:00:00Z"),
    ]:
        out = decode(record(b"not json"), received)
        assert isinstance(out, DeadLetter)
        value = out.value()["received_at"]
        assert value == text
        assert RFC3339_Z.fullmatch(value)
        assert to_us(datetime.fromisoformat(value)) == received


@pytest.mark.parametrize("key", [KEY, None, b"\xff\xfe-not-utf8", "José".encode()])
def test_dead_letter_keeps_the_record_and_its_key(key: bytes | None) -> None:
    rec = record(b"not json", key)
    out = decode(rec, RECEIVED_AT)
    assert isinstance(out, DeadLetter)
    assert out.record == rec
    assert out.record.key == key
    assert out.received_at == RECEIVED_AT


@pytest.mark.parametrize(
    "newline",
    [
        "\n",
        "\r",
        "\r\n",
    ],
    ids=["LF", "CR", "CRLF"],
)
def test_dlq_error_is_one_line_even_when_the_input_has_line_breaks(newline: str) -> None:
    dl = dead_doc({**event("customer.churned"), "type": f"first{newline}second"})
    assert dl.reason == "unknown_type"
    assert dl.error.splitlines() == [dl.error]
    assert "\r" not in dl.error and "\n" not in dl.error


def test_dlq_value_is_strict_json_when_a_number_overflows() -> None:
    raw = encode(event("survey.responded", nps=1)).replace(b'"nps": 1', b'"nps": 1e999')
    dl = dead(raw)
    json.dumps(dl.value(), allow_nan=False)


# --- empty and tombstone records --------------------------------------------------------------


@pytest.mark.parametrize("raw", [b"", None], ids=["empty", "tombstone"])
def test_empty_or_tombstone_value_goes_to_dlq(raw: bytes | None) -> None:
    dl = dead(raw)
    assert dl.reason == "not_json"
    assert first(dl)["loc"] == []
    value = dl.value()
    assert set(value) == DLQ_KEYS
    assert value["payload"] == ""


# --- decode never raises ----------------------------------------------------------------------

json_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
field_names = st.sampled_from(
    sorted(
        {"type", "event_id", "occurred_at", "customer_id"}
        | {f for d in (*REQUIRED.values(), *OPTIONAL.values()) for f in d}
    )
)


def check_outcome(rec: Record) -> None:
    out = decode(rec, RECEIVED_AT)
    if isinstance(out, DeadLetter):
        assert out.record is rec
        assert_dlq_shape(out)
        json.dumps(out.value(), allow_nan=False)
    else:
        assert type(out) in EVENT_MODELS.values()
        assert out.type in EVENT_MODELS


FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(st.binary(max_size=512), st.one_of(st.none(), st.binary(max_size=16)))
def test_decode_never_raises_on_arbitrary_bytes(raw: bytes, key: bytes | None) -> None:
    check_outcome(Record(key, raw, TOPIC, PARTITION, OFFSET))


@FAST
@given(json_values)
def test_decode_never_raises_on_arbitrary_json(doc: Any) -> None:
    check_outcome(record(encode(doc)))


@FAST
@given(st.dictionaries(st.text(max_size=12), json_values, max_size=6))
def test_decode_never_raises_on_arbitrary_json_objects(doc: dict[str, Any]) -> None:
    check_outcome(record(encode(doc)))


@FAST
@given(
    st.sampled_from(ALL_TYPES),
    st.booleans(),
    st.dictionaries(field_names, json_values, max_size=4),
    st.lists(field_names, max_size=3),
)
def test_decode_never_raises_on_mutated_valid_events(
    type_: str, optional: bool, changes: dict[str, Any], removed: list[str]
) -> None:
    doc = event(type_, **(OPTIONAL[type_] if optional else {}))
    doc.update(changes)
    for name in removed:
        doc.pop(name, None)
    check_outcome(record(encode(doc)))
