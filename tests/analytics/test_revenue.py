"""Technical loss on a hand-computed case, detection runs that open and fold investigation alerts, closing
cases (alert resolved, precision per rule), and the leakage and completeness figures."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from app.extensions import db
from app.models import Alert, AlertState, Area, Event, Investigation, Meter, RelayState, RuleFinding
from app.services.analytics.detection import run_detection
from app.services.analytics.loss import check_losses, energy_balance
from app.services.ingest import store_readings
from app.services.reports.completeness import completeness
from app.services.reports.leakage import leakage
from app.services.scope import Scope
from tests.analytics.conftest import EXPORT, UTC, fill_days, profile, timezone

DAY = dt.datetime(2026, 3, 2, tzinfo=UTC)


def test_energy_balance_hand_computed(app, fleet, client, admin_headers):
    with app.app_context():
        ward_a = db.session.get(Area, fleet.ward_a)
        ward_a.supply_meter_id = fleet.meters["A6"]
        sub = Area(name="Street", parent_id=fleet.ward_a)
        db.session.add(sub)
        db.session.flush()
        sub.supply_meter_id = fleet.meters["A5"]  # a sub-area's feeder meter is not a consumer of Ward A
        db.session.get(Meter, fleet.meters["A4"]).area_id = sub.id
        db.session.commit()
        # One day of 96 intervals: supply 100 Wh each, consumers A1 20 + A2 30 + A4 30 Wh; A5 (feeder) 60 Wh.
        for name, wh in (("A6", 100.0), ("A1", 20.0), ("A2", 30.0), ("A4", 30.0), ("A5", 60.0)):
            store_readings(profile(fleet.meters[name], DAY, 97, wh=wh))
        rows = {r["area"]: r for r in energy_balance(Scope(), dt.date(2026, 3, 2), dt.date(2026, 3, 2))}
        assert rows["Test Region › Ward A"] == {
            "area_id": fleet.ward_a, "area": "Test Region › Ward A", "supply_meter": "MTR-A6", "period": "2026-03-02",
            "energy_in_kwh": 9.6, "consumers_kwh": 7.68, "loss_kwh": 1.92, "loss_pct": 20.0,
            "meters_reporting": 3, "consumer_meters": 4}
        assert rows["Test Region › Ward A › Street"]["loss_pct"] == 50.0  # 5.76 in, 2.88 out (A4)
        raised = check_losses(dt.date(2026, 3, 2))
        assert {r["area_id"] for r in raised} == {fleet.ward_a, sub.id}
        alert = db.session.execute(select(Alert).where(Alert.area_id == fleet.ward_a)).scalar_one()
        assert (alert.kind, alert.alert_type, alert.meter_id) == ("loss", "technical_loss", None)
        app.config["HES_LOSS_THRESHOLD_PCT"] = "25"
        try:
            assert [r["area_id"] for r in check_losses(dt.date(2026, 3, 2))] == [sub.id]
        finally:
            app.config.pop("HES_LOSS_THRESHOLD_PCT")
    csv = client.get(f"/api/v1/technical-loss/csv?area={fleet.ward_a}&start=2026-03-01&end=2026-03-31"
                     "&granularity=monthly", headers=admin_headers)
    assert csv.data.decode("utf-8-sig").splitlines()[1] == \
        "Test Region › Ward A,MTR-A6,2026-03,9.600,7.680,1.920,20.00,3/4"


def _normal_fleet(fleet, first: dt.date, drop_meter: str | None = None) -> None:
    for name in ("A1", "A2", "A3", "A4", "A5", "A6", "B1", "B2"):
        days = [8.0 + (fleet.meters[name] % 3)] * 45
        if name == drop_meter:
            days[-7:] = [1.0] * 7
        fill_days(fleet.meters[name], first, days)


def test_detection_runs_in_a_task_the_caller_polls(app, fleet, client, make_user, api_token):
    """"Run detection now" answers 202 at once with the run to poll; the run is done by the task queue (here run
    by hand, as a consumer would), with the meters checked and the summary on the record; asking again while a
    run waits answers that run instead of queueing a second."""
    from app.services.analytics import detection_jobs
    from app.tasks import huey

    as_of = dt.date(2026, 3, 31)
    with app.app_context():
        _normal_fleet(fleet, as_of - dt.timedelta(days=45), drop_meter="A3")
    headers = api_token(make_user("Operator"))
    huey.flush()  # this test looks at what the request queued
    assert client.get("/api/v1/investigation/detect/latest", headers=headers).json == {}
    asked = client.post(f"/api/v1/investigation/detect?as_of={as_of}", headers=headers)
    assert asked.status_code == 202, asked.json
    run = asked.json
    assert (run["state"], run["result"], run["as_of"]) == ("queued", None, as_of.isoformat())
    assert run["status_url"] == f"/api/v1/investigation/detect/{run['id']}"
    assert asked.headers["Location"].endswith(run["status_url"])
    again = client.post("/api/v1/investigation/detect", headers=headers)
    assert (again.status_code, again.json["id"]) == (202, run["id"])  # one run at a time
    with app.app_context():
        assert db.session.execute(select(Investigation)).first() is None  # nothing ran within the requests
        queued = [t for t in huey.pending() if t.name == "detection_job"]
        assert [t.args for t in queued] == [(run["id"],)]
        huey.flush()
        detection_jobs.run(run["id"])  # what the consumer's task does
    status = client.get(run["status_url"], headers=headers).json
    assert (status["state"], status["progress"], status["meters"], status["checked"]) == ("done", 100, 8, 8)
    assert status["result"]["new_findings"] >= 1 and status["result"]["investigations_opened"] == 1
    assert status["result"]["by_rule"]["drop_vs_last_month"] == 1
    assert client.get("/api/v1/investigation/detect/latest", headers=headers).json["id"] == run["id"]
    assert client.get("/api/v1/investigation/detect/999999", headers=headers).status_code == 404
    with app.app_context():
        assert [c.meter_id for c in db.session.execute(select(Investigation)).scalars()] == [fleet.meters["A3"]]


def test_detection_progress_is_written_while_meters_are_checked(app, fleet, monkeypatch):
    """The record shows the meters checked so far while the run goes on (every batch of meters)."""
    from app.models import DetectionRun
    from app.services.analytics import detection, detection_jobs

    as_of = dt.date(2026, 3, 31)
    monkeypatch.setattr(detection, "PROGRESS_EVERY", 3)
    monkeypatch.setattr(detection_jobs, "PROGRESS_SECONDS", 0)
    with app.app_context():
        _normal_fleet(fleet, as_of - dt.timedelta(days=45))
        run = DetectionRun(state="queued", as_of=as_of)
        db.session.add(run)
        db.session.commit()
        run_id, written, real = run.id, [], detection.run_detection

        def watched_run(as_of, progress=None):
            def watched(checked: int, meters: int) -> None:
                progress(checked, meters)
                row = db.session.get(DetectionRun, run_id)
                written.append((row.state, row.checked, row.meters, row.progress))
            return real(as_of, progress=watched)

        monkeypatch.setattr(detection, "run_detection", watched_run)
        detection_jobs.run(run_id)
        assert written == [("running", 3, 8, 35), ("running", 6, 8, 71), ("running", 8, 8, 95)]
        row = db.session.get(DetectionRun, run_id)
        assert (row.state, row.checked, row.meters, row.progress) == ("done", 8, 8, 100)


def test_detection_opens_one_investigation_and_folds_repeats(app, fleet):
    as_of = dt.date(2026, 3, 31)
    with app.app_context():
        _normal_fleet(fleet, as_of - dt.timedelta(days=45), drop_meter="A3")
        first = run_detection(as_of)
        found = db.session.execute(select(RuleFinding.meter_id, RuleFinding.rule)).all()
        assert (fleet.meters["A3"], "drop_vs_last_month") in found
        assert {m for m, _ in found} == {fleet.meters["A3"]}
        case = db.session.execute(select(Investigation)).scalar_one()
        alert = db.session.get(Alert, case.alert_id)
        assert (alert.kind, alert.state, alert.count, alert.meter_id) == (
            "investigation", AlertState.active, 1, fleet.meters["A3"])
        assert alert.details["investigation_id"] == case.id and "drop_vs_last_month" in alert.details["rules"]
        assert first.investigations_opened == 1
        again = run_detection(as_of)  # the same day again: nothing new
        assert again.new_findings == 0 and db.session.get(Alert, case.alert_id).count == 1
        fill_days(fleet.meters["A3"], as_of, [1.0])
        for name in ("A1", "A2", "A4", "A5", "A6", "B1", "B2"):
            fill_days(fleet.meters[name], as_of, [8.0 + (fleet.meters[name] % 3)])
        run_detection(as_of + dt.timedelta(days=1))  # the next day: the finding repeats and folds
        assert db.session.execute(select(Investigation)).scalars().all() == [case]
        assert db.session.get(Alert, case.alert_id).count == 2


def test_thresholds_come_from_config(app, fleet):
    as_of = dt.date(2026, 3, 31)
    with app.app_context():
        _normal_fleet(fleet, as_of - dt.timedelta(days=45), drop_meter="A3")  # an 88% drop
        app.config["HES_RULE_DROP_VS_LAST_MONTH_DROP"] = "0.9"
        try:
            assert "drop_vs_last_month" not in {f.rule for f in run_detection(as_of).findings}
        finally:
            app.config.pop("HES_RULE_DROP_VS_LAST_MONTH_DROP")
        assert "drop_vs_last_month" in {f.rule for f in run_detection(as_of).findings}


def test_closing_resolves_the_alert_and_feeds_precision(app, fleet, client, make_user, api_token, huey_immediate):
    as_of = dt.date(2026, 3, 31)
    with app.app_context():
        _normal_fleet(fleet, as_of - dt.timedelta(days=45), drop_meter="A3")
    operator = make_user("Operator")
    headers = api_token(operator)
    assert client.post(f"/api/v1/investigation/detect?as_of={as_of}",
                       headers=headers).json["result"]["new_findings"] >= 1
    cases = client.get("/api/v1/investigation/?state=open", headers=headers).json["result"]
    assert [c["meter"] for c in cases] == ["MTR-A3"]
    pk = cases[0]["id"]
    assert client.post(f"/api/v1/investigation/{pk}/assign", json={"username": operator},
                       headers=headers).json["assigned_to"] == operator
    assert client.post(f"/api/v1/investigation/{pk}/assign", json={"username": "nobody-here"},
                       headers=headers).status_code == 422
    client.post(f"/api/v1/investigation/{pk}/note", json={"text": "Seal broken, bypass cable found."},
                headers=headers)
    bad = client.post(f"/api/v1/investigation/{pk}/close", json={"outcome": "maybe"}, headers=headers)
    assert bad.status_code == 422
    done = client.post(f"/api/v1/investigation/{pk}/close", json={
        "outcome": "theft_confirmed", "energy_recovered_kwh": 420.5, "amount_recovered": 88.25}, headers=headers)
    assert done.status_code == 200 and done.json["state"] == "closed"
    assert [n["text"] for n in done.json["notes"]][1] == "Seal broken, bypass cable found."
    assert client.post(f"/api/v1/investigation/{pk}/close", json={"outcome": "false_alarm"},
                       headers=headers).status_code == 409
    with app.app_context():
        alert = db.session.get(Alert, db.session.get(Investigation, pk).alert_id)
        assert alert.state == AlertState.resolved
    listing = client.get("/api/v1/investigation/?state=closed", headers=headers).json
    assert {"rule": "drop_vs_last_month", "closed": 1, "theft_confirmed": 1, "meter_fault": 0, "false_alarm": 0,
            "precision": 1.0} in listing["precision"]
    assert listing["summary"]["energy_recovered_kwh"] == 420.5 and listing["summary"]["amount_recovered"] == 88.25
    shown = client.get(f"/api/v1/investigation/{pk}", headers=headers).json
    assert shown["findings"] and shown["findings"][0]["as_of"] == "2026-03-31"
    pdf = client.get("/api/v1/investigation/pdf", headers=headers)
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")


def test_leakage_indicators(app, fleet):
    now = dt.datetime(2026, 3, 10, 12, tzinfo=UTC)
    with app.app_context():
        for name in ("A1", "A2", "A3", "A4", "A5", "A6", "B1", "B2"):
            fill_days(fleet.meters[name], dt.date(2026, 3, 1), [0.0 if name == "A1" else 10.0] * 10)
        db.session.execute(update(Meter).values(last_seen=now, relay_state=RelayState.connected))
        store_readings(profile(fleet.meters["A2"], now - dt.timedelta(hours=3), 3, wh=40.0, obis=EXPORT))
        a3 = db.session.get(Meter, fleet.meters["A3"])
        a3.relay_state = RelayState.disconnected
        a4 = db.session.get(Meter, fleet.meters["A4"])
        a4.credit_balance = -1.5
        db.session.get(Meter, fleet.meters["A5"]).last_seen = now - dt.timedelta(days=9)
        db.session.add_all([Event(meter_id=fleet.meters["A6"], ts=now - dt.timedelta(days=2), event_type="cover_open"),
                            Event(meter_id=fleet.meters["A6"], ts=now - dt.timedelta(days=1),
                                  event_type="magnetic_tamper")])
        db.session.commit()
        data = leakage(Scope(area_id=fleet.ward_a), ZoneInfo("UTC"), days=10, now=now)
    by_meter = {(e["meter"], e["indicator"]) for e in data["exceptions"]}
    assert ("MTR-A1", "zero_consumption") in by_meter
    assert ("MTR-A1", "below_area_pattern") in by_meter
    assert ("MTR-A2", "reverse_flow") in by_meter
    assert ("MTR-A3", "relay_open_consuming") in by_meter
    assert ("MTR-A4", "credit_exhausted_relay_closed") in by_meter
    assert ("MTR-A5", "long_offline") in by_meter
    assert ("MTR-A6", "tamper") in by_meter
    assert data["totals"]["tamper_events"] == 2 and data["totals"]["meters"] == 6
    assert not any(e["meter"].startswith("MTR-B") for e in data["exceptions"])
    assert [a["area"] for a in data["areas"]] == ["Ward A"] and data["areas"][0]["tamper"] == 1
    trend = {t["date"]: t for t in data["trend"]}
    assert trend["2026-03-03"]["zero_consumption"] == 1 and trend["2026-03-09"]["tamper_events"] == 1


def test_completeness_counts_expected_intervals_in_the_local_day(app, fleet):
    with app.app_context(), timezone(app, "Europe/Berlin"):
        # 2026-03-29 is 23 hours long in Berlin: 92 intervals expected; A1 sends all of them.
        start = dt.datetime(2026, 3, 28, 23, tzinfo=UTC)
        store_readings(profile(fleet.meters["A1"], start, 93))
        data = completeness(Scope(meter_id=fleet.meters["A1"]), dt.date(2026, 3, 29), dt.date(2026, 3, 30),
                            ZoneInfo("Europe/Berlin"))
    assert data["days"][0] == {"date": "2026-03-29", "expected": 92, "received": 92, "on_time": 0,
                               "completeness_pct": 100.0, "on_time_pct": 0.0}
    assert data["days"][1]["expected"] == 96 and data["days"][1]["received"] == 0
    assert data["summary"]["completeness_pct"] == round(100 * 92 / 188, 2)


def test_leakage_trend_and_pdf_count_the_same_tamper_events_as_the_page(app, fleet):
    """Six tamper events on four meters, two of them today: the trend runs to today and adds up to the page's
    six events; the PDF says six events and four meters, each under its own name."""
    from io import BytesIO

    from pypdf import PdfReader

    from app.services.reports.leakage import leakage_pdf

    now = dt.datetime(2026, 3, 10, 12, tzinfo=UTC)
    hours_ago = {"A1": (30, 2), "A2": (50,), "A3": (80, 1), "A6": (100,)}  # 2 events today (2 h and 1 h ago)
    with app.app_context():
        db.session.add_all([Event(meter_id=fleet.meters[name], ts=now - dt.timedelta(hours=h), event_type="cover_open")
                            for name, hours in hours_ago.items() for h in hours])
        db.session.add(Event(meter_id=fleet.meters["A4"], ts=now - dt.timedelta(days=20), event_type="cover_open"))
        db.session.commit()
        scope = Scope(area_id=fleet.ward_a)
        data = leakage(scope, ZoneInfo("UTC"), days=7, now=now)
        pdf = leakage_pdf(scope, data, ZoneInfo("UTC"))
    assert data["totals"]["tamper_events"] == 6 and data["totals"]["tamper"] == 4  # A4's event is 20 days old
    trend = {t["date"]: t["tamper_events"] for t in data["trend"]}
    assert list(trend)[0] == "2026-03-04" and list(trend)[-1] == "2026-03-10"  # seven days, today included
    assert trend["2026-03-10"] == 2 and trend["2026-03-09"] == 1 and sum(trend.values()) == 6
    text = " ".join(page.extract_text() for page in PdfReader(BytesIO(pdf)).pages)
    flat = " ".join(text.split()).upper()  # the summary prints each figure above its label, in capitals
    assert "6 TAMPER EVENTS" in flat and "4 METERS WITH TAMPER EVENTS" in flat


def test_technical_loss_names_the_supply_meter_that_sent_no_data(app, fleet, client, admin_headers):
    """An area with a supply meter but no readings in the range is not "no area has a supply meter": the API
    lists the supplied areas, so the page can say whose data is missing."""
    url = f"/api/v1/technical-loss/?area={fleet.ward_a}&start=2026-03-01&end=2026-03-07"
    before = client.get(url, headers=admin_headers).json
    assert before["supplied"] == [] and before["result"] == []
    with app.app_context():
        db.session.get(Area, fleet.ward_a).supply_meter_id = fleet.meters["A6"]
        db.session.commit()
    after = client.get(url, headers=admin_headers).json
    assert after["result"] == []
    assert after["supplied"] == [{"area_id": fleet.ward_a, "area": "Test Region › Ward A", "supply_meter": "MTR-A6"}]


def test_leakage_api_pages_the_exceptions_of_one_count(app, fleet, client, admin_headers):
    """The API answers a page of the exceptions with their total, all from the same count as the service's."""
    with app.app_context():
        db.session.execute(update(Meter).values(last_seen=None, status="active"))
        db.session.commit()
    whole = client.get("/api/v1/leakage/?limit=5000", headers=admin_headers).json
    page = client.get("/api/v1/leakage/?limit=3&offset=2", headers=admin_headers).json
    assert whole["exceptions_total"] == len(whole["exceptions"]) == page["exceptions_total"] >= 8  # never seen
    assert page["exceptions"] == whole["exceptions"][2:5]
    assert page["totals"] == whole["totals"] and page["totals"]["long_offline"] == whole["exceptions_total"]
