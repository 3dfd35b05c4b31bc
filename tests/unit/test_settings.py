"""Settings: every rule of the core is a setting, with the contract's defaults."""

from __future__ import annotations

from dataclasses import fields

import pytest

from streams.rules import Rules
from streams.settings import Settings, parse_duration


def test_the_default_settings_give_the_default_rules() -> None:
    assert Settings().rules() == Rules()


def test_every_rule_is_a_setting_and_durations_become_microseconds(monkeypatch: pytest.MonkeyPatch) -> None:
    names = set(Settings.model_fields)
    for f in fields(Rules):
        assert f.name.removesuffix("_us").removesuffix("_s") in names, f.name
    monkeypatch.setenv("EFFORTPULSE_REPEAT_WINDOW", "3d")
    monkeypatch.setenv("EFFORTPULSE_EFFORT_HOLD_OVER", "90s")
    monkeypatch.setenv("EFFORTPULSE_EFFORT_TRANSFER", "12.5")
    rules = Settings().rules()
    assert (rules.repeat_window_us, rules.effort_hold_over_s, rules.effort_transfer) == (3 * 86400 * 10**6, 90.0, 12.5)


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("15m", 900), ("24h", 86400), ("7d", 604800), ("30", 30)])
def test_durations_are_written_like_90s_15m_24h_7d(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds
