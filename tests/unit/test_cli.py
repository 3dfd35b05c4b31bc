"""The command line's parts that need no services."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from schemas.events import EVENT_TYPES
from streams.cli import main


def test_schemas_export_writes_one_schema_per_event_type_and_one_for_alerts(tmp_path: Path, capsys) -> None:
    assert main(["schemas", "export", str(tmp_path / "out")]) == 0
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == sorted([f"{t}.json" for t in EVENT_TYPES] + ["event.json", "alert.json"])
    held = json.loads((tmp_path / "out" / "contact.held.json").read_text())
    assert held["properties"]["type"]["const"] == "contact.held"
    assert set(held["required"]) == {"event_id", "type", "occurred_at", "customer_id", "contact_id", "hold_seconds"}
    alert = json.loads((tmp_path / "out" / "alert.json").read_text())
    assert set(alert["required"]) == {
        "alert_id", "type", "severity", "customer_id", "case_id", "contact_id", "segment", "segments", "score",
        "threshold", "reasons", "trigger_event_id", "occurred_at", "emitted_at", "due_at",
    }  # fmt: skip
    assert "wrote 13 JSON Schema files" in capsys.readouterr().out


def test_help_lists_the_commands(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for command in ("worker", "produce", "alerts", "customer", "schemas"):
        assert command in out


def test_a_bad_setting_is_reported_not_raised(monkeypatch, capsys) -> None:
    monkeypatch.setenv("EFFORTPULSE_REPEAT_WINDOW", "a week")
    assert main(["customer", "x"]) == 2
    assert capsys.readouterr().err == (
        "effortpulse: bad setting:\n"
        "EFFORTPULSE_REPEAT_WINDOW='a week': 'a week' is not a duration; write it like 90s, 15m, 24h or 7d\n"
    )
