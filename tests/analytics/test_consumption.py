"""Consumption statistics: local-zone buckets (with DST), the JSON API, byte-exact CSV and the PDF."""

from __future__ import annotations

import datetime as dt
import io
from zoneinfo import ZoneInfo

from pypdf import PdfReader

from app.extensions import db
from app.models import Area
from app.services.ingest import store_readings
from app.services.reports.consumption import consumption_series
from app.services.scope import Scope
from tests.analytics.conftest import UTC, fill_days, profile, timezone

BERLIN = ZoneInfo("Europe/Berlin")


def _periods(rows: list[dict]) -> dict[str, float]:
    return {r["period"]: r["import_kwh"] for r in rows}


def test_daily_buckets_follow_the_local_day(app, fleet):
    meter = fleet.meters["A1"]
    with app.app_context(), timezone(app, "Asia/Kolkata"):
        # 1 kWh per hour from 2026-03-02 00:00 UTC for 24 h: local midnight is 18:30 UTC.
        store_readings(profile(meter, dt.datetime(2026, 3, 2, tzinfo=UTC), 97))
        rows = consumption_series(Scope(meter_id=meter), dt.date(2026, 3, 1), dt.date(2026, 3, 4), "daily",
                                  ZoneInfo("Asia/Kolkata"))
    assert _periods(rows) == {"2026-03-02": 18.5, "2026-03-03": 5.5}


def test_weekly_and_monthly_across_spring_forward(app, fleet):
    meter = fleet.meters["A1"]
    # Local midnight of Monday 2026-03-23 in Berlin (UTC+1) to Thursday 2026-04-02 (UTC+2): 1 kWh every hour.
    start = dt.datetime(2026, 3, 22, 23, tzinfo=UTC)
    end = dt.datetime(2026, 4, 2, 22, tzinfo=UTC)
    count = int((end - start).total_seconds() // 900) + 1
    with app.app_context(), timezone(app, "Europe/Berlin"):
        store_readings(profile(meter, start, count))
        scope = Scope(meter_id=meter)
        daily = _periods(consumption_series(scope, dt.date(2026, 3, 23), dt.date(2026, 4, 1), "daily", BERLIN))
        weekly = _periods(consumption_series(scope, dt.date(2026, 3, 23), dt.date(2026, 4, 5), "weekly", BERLIN))
        monthly = _periods(consumption_series(scope, dt.date(2026, 3, 1), dt.date(2026, 4, 30), "monthly", BERLIN))
        hourly = consumption_series(scope, dt.date(2026, 3, 29), dt.date(2026, 3, 29), "hourly", BERLIN)
    assert daily["2026-03-29"] == 23.0 and daily["2026-03-28"] == 24.0  # the DST day has 23 hours
    assert weekly == {"2026-W13": 6 * 24 + 23.0, "2026-W14": 4 * 24.0}  # Mon 23rd–Sun 29th, then Mon–Thu
    assert monthly == {"2026-03": 8 * 24 + 23.0, "2026-04": 2 * 24.0}  # April starts at 22:00 UTC on 31 March
    assert len(hourly) == 23 and hourly[2]["period"] == "2026-03-29 03:00+02:00"


def test_fleet_hourly_adds_every_meters_hours_through_their_keys(app, fleet):
    """The whole fleet's hours are the sum of its meters' (SQLite reads them meter by meter through the primary
    key: the hourly rollup has no bucket index there, migration 0170)."""
    start = dt.datetime(2026, 5, 4, 6, tzinfo=UTC)
    with app.app_context(), timezone(app, "UTC"):
        for name, wh in (("A1", 250.0), ("A2", 100.0), ("B1", 50.0)):
            store_readings(profile(fleet.meters[name], start, 9, wh=wh))
        rows = consumption_series(Scope(), dt.date(2026, 5, 4), dt.date(2026, 5, 4), "hourly", ZoneInfo("UTC"))
        if db.engine.dialect.name == "sqlite":
            from app.models import ConsumptionHourly
            from app.services.reports.consumption import _per_bucket

            stmt = _per_bucket(Scope(), ConsumptionHourly, start, start + dt.timedelta(hours=2))
            sql = str(stmt.compile(db.engine, compile_kwargs={"literal_binds": True}))
            plan = " ".join(r[3] for r in db.session.connection().exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
            assert "consumption_hourly USING INDEX sqlite_autoindex_consumption_hourly_1 (meter_id=?" in plan, plan
    assert _periods(rows) == {"2026-05-04 06:00+00:00": 1.6, "2026-05-04 07:00+00:00": 1.6}
    assert [r["meters"] for r in rows] == [3, 3]


def test_weekly_across_fall_back(app, fleet):
    meter = fleet.meters["A1"]
    with app.app_context(), timezone(app, "Europe/Berlin"):
        # Week 43 of 2026 ends on Sunday 25 October, a 25-hour day.
        fill_days(meter, dt.date(2026, 10, 19), [24.0] * 6 + [25.0] + [24.0], "Europe/Berlin")
        weekly = _periods(consumption_series(Scope(meter_id=meter), dt.date(2026, 10, 19),
                                             dt.date(2026, 10, 26), "weekly", BERLIN))
    assert weekly == {"2026-W43": 6 * 24 + 25.0, "2026-W44": 24.0}


def test_area_report_includes_sub_areas_and_api_answers(app, fleet, client, admin_headers):
    with app.app_context():
        for name, kwh in (("A1", 5.0), ("A2", 7.0), ("B1", 11.0)):
            fill_days(fleet.meters[name], dt.date(2026, 3, 1), [kwh] * 3)
    resp = client.get(f"/api/v1/consumption/?area={fleet.region}&start=2026-03-01&end=2026-03-31&granularity=monthly",
                      headers=admin_headers)
    assert resp.status_code == 200, resp.json
    assert resp.json["series"] == [{"period": "2026-03", "start": "2026-03-01", "import_kwh": 69.0,
                                    "export_kwh": 0.0, "net_kwh": 69.0, "meters": 3, "intervals": 3 * 3 * 96}]
    assert resp.json["summary"]["meters_with_data"] == 3 and resp.json["summary"]["meters"] == 8
    assert [m["meter"] for m in resp.json["meters"]] == ["MTR-B1", "MTR-A2", "MTR-A1"]
    ward = client.get(f"/api/v1/consumption/?area={fleet.ward_a}&start=2026-03-01&end=2026-03-31",
                      headers=admin_headers).json
    assert ward["summary"]["import_kwh"] == 36.0
    bad = client.get("/api/v1/consumption/?start=2026-03-05&end=2026-03-01", headers=admin_headers)
    assert bad.status_code == 400 and "before the start" in bad.json["message"]


def test_csv_matches_byte_for_byte(app, fleet, client, admin_headers):
    with app.app_context():
        fill_days(fleet.meters["A1"], dt.date(2026, 3, 1), [5.0, 6.5], export_kwh=0.25)
        fill_days(fleet.meters["B1"], dt.date(2026, 3, 2), [1.125])
    resp = client.get(f"/api/v1/consumption/csv?area={fleet.region}&start=2026-03-01&end=2026-03-02",
                      headers=admin_headers)
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert resp.data == (
        "\ufeffMeter,Customer,Area,Period,Import (kWh),Export (kWh),Net (kWh),Intervals\r\n"
        "MTR-A1,Customer A1,Ward A,2026-03-01,5.000,0.250,4.750,96\r\n"
        "MTR-A1,Customer A1,Ward A,2026-03-02,6.500,0.250,6.250,96\r\n"
        "MTR-B1,Customer B1,Ward B,2026-03-02,1.125,0.000,1.125,96\r\n"
    ).encode()
    monthly = client.get("/api/v1/consumption/csv?meter=MTR-A1&start=2026-03-01&end=2026-03-31"
                         "&granularity=monthly", headers=admin_headers)
    assert monthly.data.decode().splitlines()[1] == "MTR-A1,Customer A1,Ward A,2026-03,11.500,0.500,11.000,192"


def test_raw_readings_csv_in_kwh_and_local_time(app, fleet, client, admin_headers):
    with app.app_context(), timezone(app, "Africa/Lagos"):
        store_readings(profile(fleet.meters["A2"], dt.datetime(2026, 3, 2, 10, tzinfo=UTC), 2, wh=500.0))
    with timezone(app, "Africa/Lagos"):
        resp = client.get("/api/v1/consumption/readings.csv?meter=MTR-A2&start=2026-03-02&end=2026-03-02",
                          headers=admin_headers)
    assert resp.data.decode("utf-8-sig").splitlines() == [
        "Meter,Register,Time,Value (kWh)",
        "MTR-A2,1.0.1.8.0.255,2026-03-02 11:00:00+01:00,10.0",
        "MTR-A2,1.0.1.8.0.255,2026-03-02 11:15:00+01:00,10.5",
    ]


def test_pdf_has_title_filters_and_the_table_totals(app, fleet, client, admin_headers):
    with app.app_context():
        for i, name in enumerate(("A1", "A2", "A3")):
            fill_days(fleet.meters[name], dt.date(2026, 3, 1), [2.0 + i] * 31)
        area_name = db.session.get(Area, fleet.ward_a).full_name
    resp = client.get(f"/api/v1/consumption/pdf?area={fleet.ward_a}&start=2026-03-01&end=2026-03-31"
                      "&granularity=daily", headers=admin_headers)
    assert resp.status_code == 200 and resp.mimetype == "application/pdf"
    reader = PdfReader(io.BytesIO(resp.data))
    assert len(reader.pages) == 2  # summary, chart and 31 daily rows plus the totals row
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert "Energy Consumption" in text and area_name in text and "Daily" in text
    assert "2026-03-31" in text
    assert "Total 279.000 0.000 279.000 3" in " ".join(text.split())  # 31 days × (2 + 3 + 4) kWh
    assert len(reader.pages[0].images) == 1  # the chart


def test_pdf_speaks_the_readers_language_with_the_same_numbers(app, fleet, client, admin_headers):
    """A French reader gets the title, filters, figures and column headings in French; the figures are the
    English report's (31 days × (2 + 3 + 4) kWh); the CSV keeps its English headings for integrators."""
    with app.app_context():
        for i, name in enumerate(("A1", "A2", "A3")):
            fill_days(fleet.meters[name], dt.date(2026, 3, 1), [2.0 + i] * 31)
    query = f"?area={fleet.ward_a}&start=2026-03-01&end=2026-03-31&granularity=daily"
    french = {**admin_headers, "Accept-Language": "fr-FR,fr;q=0.9"}
    resp = client.get(f"/api/v1/consumption/pdf{query}", headers=french)
    assert resp.status_code == 200
    text = " ".join(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(resp.data)).pages).split())
    for heading in ("Consommation d'énergie", "Fuseau horaire", "Granularité: Quotidien", "Période",
                    "Compteurs remontant"):
        assert heading in text, heading
    assert "MOYENNE PAR JOUR (KWH)" in text.upper()  # the summary prints its labels in capitals
    assert "Energy Consumption" not in text and "Period" not in text
    assert "Total 279.000 0.000 279.000 3" in text
    csv_text = client.get(f"/api/v1/consumption/csv{query}", headers=french).get_data(as_text=True)
    csv_head = csv_text.lstrip("\ufeff").splitlines()[0]
    assert csv_head == "Meter,Customer,Area,Period,Import (kWh),Export (kWh),Net (kWh),Intervals"


def test_average_per_day_counts_the_days_that_have_data(app, fleet):
    """Seven days of readings in a 30-day range: 27 + 25 + 29 + 27 + 26 + 28 + 27 = 189 kWh over 7 days is
    27 kWh a day (dividing by the 30 days of the range showed 6.3)."""
    from app.services.reports.consumption import consumption_summary

    meter = fleet.meters["A1"]
    with app.app_context():
        fill_days(meter, dt.date(2026, 3, 20), [27.0, 25.0, 29.0, 27.0, 26.0, 28.0, 27.0])
        summary = consumption_summary(Scope(meter_id=meter), dt.date(2026, 2, 25), dt.date(2026, 3, 26), UTC)
    assert summary["days"] == 30 and summary["days_with_data"] == 7
    assert summary["import_kwh"] == 189.0 and summary["avg_kwh_per_day"] == 27.0


def test_report_range_runs_to_today_by_default(app, fleet, client, admin_headers):
    """The default range ends today (so far), not yesterday: today's readings are in it."""
    meter = fleet.meters["A1"]
    today = dt.datetime.now(UTC).date()
    with app.app_context():
        fill_days(meter, today, [12.5])
    body = client.get(f"/api/v1/consumption/?meter={meter}", headers=admin_headers).get_json()
    assert body["summary"]["end"] == today.isoformat()
    assert body["summary"]["import_kwh"] == 12.5
