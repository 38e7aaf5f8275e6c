"""The rules engine: rule plugins with their thresholds from config, evaluated over meter series."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import replace

from flask import current_app

from app.plugins.manager import hook
from app.services.analytics.rules import Finding, MeterSeries, Rule, RuleContext

log = logging.getLogger(__name__)


def all_rules() -> list[Rule]:
    """Every rule the plugins register, by name (``HES_RULES_DISABLED`` lists names to leave out)."""
    disabled = {n.strip() for n in str(current_app.config.get("HES_RULES_DISABLED", "")).split(",") if n.strip()}
    rules = {rule.name: rule for batch in hook().hes_register_rules() for rule in batch or ()}
    return [rules[name] for name in sorted(rules) if name not in disabled]


def params_for(name: str, defaults: Mapping[str, float]) -> dict[str, float]:
    """A rule's thresholds: its defaults overridden by ``HES_RULE_<NAME>_<PARAM>`` (environment or app.config)."""
    params = dict(defaults)
    for key, default in defaults.items():
        raw = current_app.config.get(f"HES_RULE_{name.upper()}_{key.upper()}")
        if raw is None or raw == "":
            continue
        try:
            params[key] = type(default)(float(raw)) if isinstance(default, int) else float(raw)
        except (TypeError, ValueError):
            log.warning("ignoring HES_RULE_%s_%s=%r: not a number", name.upper(), key.upper(), raw)
    return params


def evaluate(rules: Iterable[Rule], params: Mapping[str, Mapping[str, float]], series: MeterSeries,
             context: RuleContext) -> list[Finding]:
    """Findings of every rule for one meter; a rule that fails is logged and skipped, never fatal."""
    findings = []
    for rule in rules:
        try:
            found = rule.evaluate(series, replace(context, params=params[rule.name]))
        except Exception:  # a broken third-party rule must not stop the run
            log.exception("rule %s failed on meter %s", rule.name, series.meter_id)
            continue
        findings.extend(found)
    return findings

