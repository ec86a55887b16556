"""The alert catalogue's data file (components/rendering/alerts.yaml) is complete and only uses
what the monitoring plan fills in."""

from __future__ import annotations

import re
from string import Template

import yaml

from components.rendering import monitoring as render

GROUPS = yaml.safe_load(render.ALERT_RULES.read_text(encoding="utf-8"))["groups"]
RULES = [rule for group in GROUPS for rule in group["rules"]]
KEYS = {"alert", "expr", "for", "severity", "summary", "summary_zh", "action", "action_zh"}


def test_every_rule_says_what_it_means_and_what_to_do_in_both_languages() -> None:
    incomplete = [rule.get("alert") for rule in RULES if not KEYS <= rule.keys() or not all(rule[key] for key in KEYS)]
    assert incomplete == []


def test_alert_names_are_unique() -> None:
    names = [rule["alert"] for rule in RULES]
    assert len(names) == len(set(names))


def test_a_group_is_conditional_only_on_what_the_plan_knows() -> None:
    assert {group["when"] for group in GROUPS if "when" in group} <= {"public", "synapse_metrics", "full"}


def test_expressions_use_only_the_plans_placeholders() -> None:
    known = {"samples_per_hour", "healer_silent_seconds", "synapse_memory_limit_bytes", "selector"}
    used = {match.group("named") or match.group("braced") for rule in RULES for match in Template.pattern.finditer(rule["expr"])}
    assert used <= known


def test_severities_are_the_routes_alertmanager_has() -> None:
    assert {rule["severity"] for rule in RULES} <= {"warning", "critical"}
    assert all(re.fullmatch(r"\d+[smh]", rule["for"]) for rule in RULES)
