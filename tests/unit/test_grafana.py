"""The Grafana dashboard and the alerting rules ask only for series effortpulse exports.

Every metric name in every PromQL expression of deploy/grafana/effortpulse.json and
deploy/prometheus/rules.yml must be a series of the prometheus_client registry once
streams.metrics is imported, and every label they match, group or print on must be one of its
labels (or one Prometheus adds: job, instance; le on histogram buckets). A renamed metric or
label therefore fails here, not as an empty panel or a rule that never fires.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from prometheus_client.metrics import MetricWrapperBase

import streams.metrics as metrics

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "effortpulse.json"
RULES = ROOT / "deploy" / "prometheus" / "rules.yml"

TARGET_LABELS = {"job", "instance"}  # Prometheus adds them to every scraped series
PROMETHEUS_SERIES = {"up": set()}  # series Prometheus itself writes for every target
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset",
            "inf", "nan", "atan2"}  # fmt: skip
FUNCTIONS = {
    "sum", "avg", "max", "min", "count", "topk", "bottomk", "quantile", "stddev", "group",
    "rate", "irate", "increase", "delta", "deriv", "idelta", "resets", "changes",
    "avg_over_time", "max_over_time", "min_over_time", "sum_over_time", "count_over_time", "last_over_time",
    "histogram_quantile", "sqrt", "abs", "clamp_min", "clamp_max", "round", "time", "vector", "scalar",
    "absent", "absent_over_time", "label_replace", "sort", "sort_desc",
}  # fmt: skip
WANTED_ON_DASHBOARD = {  # what the issue asks the dashboard to show
    "effortpulse_nps", "effortpulse_nps_ci_low", "effortpulse_nps_ci_high", "effortpulse_ces_mean",
    "effortpulse_csat_mean", "effortpulse_case_effort_points_bucket", "effortpulse_fcr_ratio",
    "effortpulse_repeat_contact_ratio", "effortpulse_alerts_total", "effortpulse_events_processed_total",
    "effortpulse_events_invalid_total", "effortpulse_events_duplicate_total",
    "effortpulse_processing_latency_seconds_bucket", "effortpulse_alert_latency_seconds_bucket",
    "effortpulse_consumer_lag_records", "effortpulse_redis_call_seconds_bucket", "effortpulse_churn_roc_auc",
}  # fmt: skip
EXPECTED_RULES = {
    "EffortpulseWorkerDown", "EffortpulseConsumerLagGrowing", "EffortpulseDLQRateHigh", "EffortpulseNoEvents",
    "EffortpulseAlertLatencyHigh", "EffortpulseNPSDrop",
}  # fmt: skip


# ------------------------------------------------------------------------------ the registry


def exported_series() -> dict[str, set[str]]:
    """Series name as Prometheus stores it → its label names, for everything in the registry."""
    labels = {
        m._name: set(m._labelnames)  # the wrappers keep their label names only privately
        for m in vars(metrics).values()
        if isinstance(m, MetricWrapperBase)
    }
    out: dict[str, set[str]] = {}
    for family in REGISTRY.collect():
        own = labels.get(family.name, set())
        if family.type == "counter":
            out[f"{family.name}_total"] = own
        elif family.type == "histogram":
            out[f"{family.name}_bucket"] = own | {"le"}
            out[f"{family.name}_sum"] = out[f"{family.name}_count"] = own
        elif family.type == "summary":
            out[family.name] = own | {"quantile"}
            out[f"{family.name}_sum"] = out[f"{family.name}_count"] = own
        else:
            out[family.name] = own
    return out


SERIES = exported_series()


# ------------------------------------------------------------------------------ PromQL, read enough


def promql_parts(expr: str) -> tuple[list[tuple[str, set[str]]], set[str], set[str]]:
    """(metric name and the labels its selector matches on, for every series selector;
    labels of every by/without/on/ignoring/group_* clause; functions called) of an expression,
    with Grafana's $variables stood in for."""
    s = re.sub(r"\$\{[^}]*\}|\$\w+", "VAR", expr)
    s = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', s)  # strings: no braces or names inside
    selectors: list[tuple[str, set[str]]] = []

    def selector(m: re.Match[str]) -> str:
        matched = set(re.findall(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)", m.group(2)))
        selectors.append((m.group(1) or "", matched))
        return f" __SEL{len(selectors) - 1}__ "

    s = re.sub(r"([A-Za-z_:][\w:]*)?\s*\{([^}]*)\}", selector, s)
    s = re.sub(r"\[[^\]]*\]", " ", s)  # ranges and subqueries
    grouping: set[str] = set()

    def clause(m: re.Match[str]) -> str:
        grouping.update(x.strip() for x in m.group(2).split(",") if x.strip())
        return " "

    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", clause, s)
    functions = set(re.findall(r"(?<![\w:.])([A-Za-z_][\w:]*)\s*\(", s))
    bare = [
        name
        for name in re.findall(r"(?<![\w:.])([A-Za-z_:][\w:]*)(?![\w:]*\s*\()", s)
        if name not in KEYWORDS and not re.fullmatch(r"__SEL\d+__", name)
    ]
    return [(n, set()) for n in bare] + selectors, grouping, functions


def check_expr(expr: str, where: str, legend: str = "") -> set[str]:
    """Assert that expr uses only exported series and their labels; the metric names it uses."""
    selectors, grouping, functions = promql_parts(expr)
    assert selectors, f"{where}: no series in {expr!r}"
    known = {**SERIES, **PROMETHEUS_SERIES}
    names = {name for name, _ in selectors}
    unknown = sorted(n for n in names if n not in known)
    assert not unknown, f"{where}: {unknown} are not exported by streams.metrics (expr {expr!r})"
    assert functions <= FUNCTIONS, f"{where}: unknown functions {sorted(functions - FUNCTIONS)} in {expr!r}"
    available = set(TARGET_LABELS).union(*(known[n] for n in names))
    for name, matched in selectors:
        bad = matched - known[name] - TARGET_LABELS
        assert not bad, f"{where}: {name} has no label {sorted(bad)} (it has {sorted(known[name])})"
    assert grouping <= available, f"{where}: grouping on {sorted(grouping - available)}, not a label of {sorted(names)}"
    printed = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", legend))
    assert printed <= available, f"{where}: legend {legend!r} prints {sorted(printed - available)}, not a label"
    return names


def test_the_promql_reader_finds_names_labels_and_functions() -> None:
    selectors, grouping, functions = promql_parts(
        'histogram_quantile(0.99, sum by (le) (rate(effortpulse_alert_latency_seconds_bucket{job=~"$job"}[$__rate_interval])))'
        ' > 2 and on (job) max(up{job="a{b}"}) == 1 or vector(1e-9) offset 5m'
    )
    assert selectors == [("effortpulse_alert_latency_seconds_bucket", {"job"}), ("up", {"job"})]
    assert grouping == {"le", "job"}
    assert functions == {"histogram_quantile", "sum", "rate", "max", "vector"}
    assert [n for n, _ in promql_parts("effortpulse_nps - ignoring(window) effortpulse_nps_ci_low")[0]] == [
        "effortpulse_nps",
        "effortpulse_nps_ci_low",
    ]
    with pytest.raises(AssertionError, match="not exported"):
        check_expr("sum(rate(effortpulse_events_procesed_total[5m]))", "typo")
    with pytest.raises(AssertionError, match="no label"):
        check_expr('effortpulse_events_invalid_total{reasons="not_json"}', "label typo")
    with pytest.raises(AssertionError, match="grouping"):
        check_expr("sum by (segment) (effortpulse_alerts_total)", "grouping typo")
    with pytest.raises(AssertionError, match="unknown functions"):
        check_expr("hitogram_quantile(0.5, effortpulse_redis_call_seconds_bucket)", "function typo")


def test_the_registry_holds_the_series_the_names_promise() -> None:
    assert SERIES["effortpulse_events_processed_total"] == {"type"}
    assert SERIES["effortpulse_alert_latency_seconds_bucket"] == {"le"}
    assert SERIES["effortpulse_nps"] == {"segment", "window"}
    assert SERIES["effortpulse_consumer_lag_records"] == {"topic", "partition"}
    assert not any(n.endswith("_created") for n in SERIES)


# ------------------------------------------------------------------------------ the dashboard


def load_dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def all_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for p in dashboard["panels"]:
        out.append(p)
        out.extend(p.get("panels", []))  # panels of a collapsed row
    return out


def dashboard_targets(dashboard: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"panel {p['id']} {p.get('title')!r} target {t.get('refId')}", t)
        for p in all_panels(dashboard)
        if p["type"] != "row"
        for t in p.get("targets", [])
    ]


def test_the_dashboard_is_importable_as_is() -> None:
    d = load_dashboard()
    assert d["uid"] == "effortpulse" and d["title"] and d["id"] is None
    assert 36 <= d["schemaVersion"] <= 41
    variables = {v["name"]: v for v in d["templating"]["list"]}
    # a templated data source: works through the import dialog, the HTTP API and provisioning alike
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert "__inputs" not in d, "the panels use the ${datasource} variable; no import input to resolve"
    segment = variables["segment"]
    assert segment["type"] == "query" and segment["definition"] == "label_values(effortpulse_nps, segment)"
    assert segment["query"]["query"] == "label_values(effortpulse_nps, segment)"
    assert segment["includeAll"] and segment["multi"]
    assert [o["value"] for o in variables["window"]["options"]] == list(metrics.SCORE_WINDOWS)
    for name in ("job", "segment"):
        m = re.fullmatch(r"label_values\((\w+), (\w+)\)", variables[name]["definition"])
        assert m and m.group(1) in SERIES and m.group(2) in SERIES[m.group(1)] | TARGET_LABELS, name

    panels = all_panels(d)
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    occupied: dict[tuple[int, int], int] = {}
    for p in panels:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24 and g["h"] > 0, p["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in occupied, f"panel {p['id']} overlaps panel {occupied[(x, y)]}"
                occupied[(x, y)] = p["id"]
        if p["type"] == "row":
            continue
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        assert p["targets"], f"panel {p['title']!r} has no query"
        for t in p["targets"]:
            assert t["datasource"] == p["datasource"] and t["expr"].strip(), p["title"]
        for v in re.findall(r"\$(\w+)", p["title"]):
            assert v in variables, f"{p['title']!r} uses an unknown variable ${v}"
        if "repeat" in p:
            assert p["repeat"] in variables
    refs = {v for _, t in dashboard_targets(d) for v in re.findall(r"\$\{?(\w+)", t["expr"])}
    assert refs - {"__rate_interval", "__range", "__interval"} <= set(variables)


def test_every_dashboard_query_uses_exported_metrics_and_labels() -> None:
    used: set[str] = set()
    for where, target in dashboard_targets(load_dashboard()):
        used |= check_expr(target["expr"], where, target.get("legendFormat", ""))
    missing = WANTED_ON_DASHBOARD - used
    assert not missing, f"the dashboard shows nothing of {sorted(missing)}"


def test_the_nps_panel_draws_the_interval_as_a_band_per_segment() -> None:
    [nps] = [p for p in all_panels(load_dashboard()) if p.get("repeat") == "segment"]
    legends = {t["legendFormat"]: t["expr"] for t in nps["targets"]}
    assert "effortpulse_nps_ci_low{" in legends["95% low"] and "effortpulse_nps_ci_high{" in legends["95% high"]
    fill = [
        prop["value"]
        for o in nps["fieldConfig"]["overrides"]
        if o["matcher"]["options"] == "95% high"
        for prop in o["properties"]
        if prop["id"] == "custom.fillBelowTo"
    ]
    assert fill == ["95% low"]


# ------------------------------------------------------------------------------ the rules


def read_rules(text: str) -> list[dict[str, Any]]:
    """The alerting rules of rules.yml: alert, expr, for, labels, annotations. Reads the YAML
    that file is written in (block maps and lists, `|`/`>-` block scalars, quoted scalars), so
    the unit tests need no YAML library; promtool reads it for real in the integration tests."""
    lines = text.splitlines()
    rules: list[dict[str, Any]] = []
    starts = [i for i, line in enumerate(lines) if re.match(r"\s*- alert:", line)]
    for n, start in enumerate(starts):
        end = starts[n + 1] if n + 1 < len(starts) else len(lines)
        block = lines[start:end]
        indent = len(block[0]) - len(block[0].lstrip()) + 2  # the keys of the rule's map
        rule: dict[str, Any] = {"alert": block[0].split(":", 1)[1].strip(), "labels": {}, "annotations": {}}
        i = 1
        while i < len(block):
            line = block[i]
            m = re.match(rf"^ {{{indent}}}(\w+):\s*(.*)$", line)
            i += 1
            if not m:
                continue
            key, value = m.groups()
            if key in ("labels", "annotations"):
                while i < len(block) and (not block[i].strip() or _indent(block[i]) > indent):
                    sub = re.match(r"^\s+(\w+):\s*(.*)$", block[i])
                    if sub and _indent(block[i]) == indent + 2:
                        rule[key][sub.group(1)] = _scalar(sub.group(2))
                    i += 1
            elif value in ("|", "|-", ">", ">-"):
                body = []
                while i < len(block) and (not block[i].strip() or _indent(block[i]) > indent):
                    body.append(block[i].strip())
                    i += 1
                rule[key] = "\n".join(body).strip()
            else:
                rule[key] = _scalar(value)
        rules.append(rule)
    return rules


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _scalar(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def test_the_rules_use_exported_metrics_and_carry_severity_summary_and_description() -> None:
    text = RULES.read_text(encoding="utf-8")
    rules = read_rules(text)
    assert {r["alert"] for r in rules} == EXPECTED_RULES
    assert len(rules) == text.count("- alert:") == len(EXPECTED_RULES)
    for r in rules:
        check_expr(r["expr"], r["alert"])
        assert r["labels"]["severity"] in ("critical", "warning"), r["alert"]
        assert r["labels"]["audience"] in ("ops", "cx"), r["alert"]
        assert r["annotations"].get("summary") and r["annotations"].get("description"), r["alert"]
        assert re.fullmatch(r"\d+[smh]", r["for"]), r["alert"]
        printed = set(re.findall(r"\$labels\.(\w+)", r["annotations"]["summary"] + r["annotations"]["description"]))
        names = {n for n, _ in promql_parts(r["expr"])[0]}
        assert printed <= set(TARGET_LABELS).union(*(SERIES.get(n, set()) for n in names)), r["alert"]
    by_name = {r["alert"]: r for r in rules}
    assert by_name["EffortpulseWorkerDown"]["expr"] == 'up{job="effortpulse"} == 0'
    assert by_name["EffortpulseWorkerDown"]["for"] == "1m"
    assert 'effortpulse_nps_responses{window="7d"} >= 30' in by_name["EffortpulseNPSDrop"]["expr"]
