"""A detection run: every rule and the learned model over the fleet's recent consumption; new findings are
stored, join (or open) the meter's investigation and raise an "investigation" alert that folds repeats."""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy import select

from app.extensions import db
from app.models import Investigation, InvestigationState, Meter, RuleFinding, Severity
from app.services.alerts import emit_raised, raise_alert
from app.services.analytics import model
from app.services.analytics.engine import all_rules, evaluate, params_for
from app.services.analytics.features import meter_features
from app.services.analytics.rules import Finding, RuleContext
from app.services.analytics.series import area_daily_means, consumer_meters, load_series, lookback_days
from app.services.reports.periods import local_today, utility_zone

log = logging.getLogger(__name__)
ALERT_TYPE = "theft_suspected"


@dataclass
class DetectionResult:
    """What a run looked at and what it found."""

    as_of: dt.date
    meters: int = 0
    findings: list[Finding] = field(default_factory=list)
    new_findings: int = 0
    investigations_opened: int = 0
    alerts_raised: int = 0

    def as_dict(self) -> dict:
        """JSON-friendly summary."""
        by_rule: dict[str, int] = defaultdict(int)
        for finding in self.findings:
            by_rule[finding.rule] += 1
        return {"as_of": self.as_of.isoformat(), "meters": self.meters, "findings": len(self.findings),
                "new_findings": self.new_findings, "by_rule": dict(sorted(by_rule.items())),
                "investigations_opened": self.investigations_opened, "alerts_raised": self.alerts_raised}


Progress = Callable[[int, int], None]  # (meters checked, meters in the run)
PROGRESS_EVERY = 500  # meters between two progress calls (one series batch)


def detect(as_of: dt.date | None = None, meter_ids: list[int] | None = None,
           progress: Progress | None = None) -> DetectionResult:
    """Evaluate rules and model (stores nothing): findings per meter for the days before ``as_of``.

    Under gevent the loop is yielded between meters and the learned model is fitted in a native thread, so a
    run in a task of the live HES leaves web, Socket.IO and meter I/O running."""
    from app.services.csvio import cooperate
    from app.services.reports.base import off_loop

    tz = utility_zone()
    as_of = as_of or local_today(tz)
    lookback = int(float(current_app.config.get("HES_DETECTION_LOOKBACK_DAYS", 45)))
    days = lookback_days(as_of, lookback)
    rules = all_rules()
    params = {rule.name: params_for(rule.name, rule.defaults) for rule in rules}
    meters = consumer_meters(meter_ids)
    area_means, area_counts = area_daily_means(days, tz)
    area_of = {meter_id: area_id for meter_id, _number, area_id in meters}
    result = DetectionResult(as_of=as_of, meters=len(meters))
    features = {}
    for checked, series in enumerate(load_series(meters, days, tz), start=1):
        cooperate()
        if progress is not None and checked % PROGRESS_EVERY == 0:
            progress(checked, len(meters))
        area_id = area_of[series.meter_id]
        context = RuleContext(as_of=as_of, params={}, area_daily_kwh=area_means.get(area_id, ()),
                              area_meters=area_counts.get(area_id, 0), local_zone=tz.key)
        result.findings.extend(evaluate(rules, params, series, context))
        if any(v is not None for v in series.import_kwh):
            features[series.meter_id] = meter_features(series, context)
    if progress is not None:
        progress(len(meters), len(meters))
    result.findings.extend(off_loop(model.detect_anomalies, features, params_for(model.NAME, model.DEFAULTS)))
    return result


def run_detection(as_of: dt.date | None = None, meter_ids: list[int] | None = None,
                  progress: Progress | None = None) -> DetectionResult:
    """Detect, store the new findings, attach them to investigations and raise the alerts (no Huey needed:
    a scheduled task calls this inside an app context). The alerts reach open pages once stored, from the
    calling greenlet (never from a native thread)."""
    result = detect(as_of, meter_ids, progress)
    known = set(db.session.execute(select(RuleFinding.meter_id, RuleFinding.rule)
                                   .where(RuleFinding.as_of == result.as_of)).tuples())
    fresh: dict[int, list[Finding]] = defaultdict(list)
    for finding in result.findings:
        if (finding.meter_id, finding.rule) not in known:
            fresh[finding.meter_id].append(finding)
    titles = {rule.name: rule.title for rule in all_rules()} | {model.NAME: model.TITLE}
    numbers = dict(db.session.execute(select(Meter.id, Meter.number).where(Meter.id.in_(list(fresh)))).all())
    raised = []
    for meter_id, findings in fresh.items():
        investigation, opened = _investigation_for(meter_id)
        result.investigations_opened += opened
        for finding in findings:
            db.session.add(RuleFinding(meter_id=meter_id, rule=finding.rule, as_of=result.as_of,
                                       score=round(finding.score, 4), reason=finding.reason,
                                       details=finding.details, investigation=investigation))
        result.new_findings += len(findings)
        investigation.rules = sorted(set(investigation.rules or []) | {f.rule for f in findings})
        top = max(findings, key=lambda f: f.score)
        investigation.score = max(investigation.score or 0.0, round(top.score, 4))
        investigation.reason = top.reason
        db.session.flush()
        names = ", ".join(titles.get(f.rule, f.rule) for f in findings)
        alert = raise_alert(
            meter_id, ALERT_TYPE, f"Suspected theft on {numbers.get(meter_id, meter_id)}: {names}",
            severity=Severity.critical if top.score >= 0.8 else Severity.warning, kind="investigation",
            details={"investigation_id": investigation.id, "rules": investigation.rules,
                     "score": investigation.score, "reasons": [f.reason for f in findings],
                     "as_of": result.as_of.isoformat()},
            commit=False, emit=False)
        raised.append(alert)
        investigation.alert_id = alert.id
        result.alerts_raised += 1
    db.session.commit()
    emit_raised(raised)
    log.info("detection for %s: %s", result.as_of, result.as_dict())
    return result


def _investigation_for(meter_id: int) -> tuple[Investigation, int]:
    """The meter's open investigation, or a new one (and 1 when it was opened now)."""
    open_case = db.session.execute(select(Investigation).where(
        Investigation.meter_id == meter_id, Investigation.state == InvestigationState.open)
        .order_by(Investigation.id.desc()).limit(1)).scalar()
    if open_case is not None:
        return open_case, 0
    case = Investigation(meter_id=meter_id, state=InvestigationState.open, rules=[], score=0.0)
    db.session.add(case)
    return case, 1
