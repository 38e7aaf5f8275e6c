"""CSV import and export of meters, SIMs and customers through the REST API."""

from __future__ import annotations

from sqlalchemy import func, select

from app.extensions import db
from app.models import AuditLog, Customer, Meter, MeterStatus, Sim
from tests.foundation.conftest import upload

SIMS = "Sim Number,IP Address,Port\n8923400001,10.20.0.1,4059\n8923400002,10.20.0.2,4059\n8923400003,10.20.0.3,4060\n"


def count(app, model) -> int:
    with app.app_context():
        return db.session.execute(select(func.count()).select_from(model)).scalar()


def test_meter_import_happy_path_then_update(app, client, admin_headers, brand, areas):
    upload(client, "sim", SIMS, admin_headers)
    csv = ("Meter Number,Concentrator ID,Meter Type,Area,SIM Number\n"
           "MTR0001,DCU-1,acme_sp,N-KAN-SG,8923400001\n"
           "MTR0002,DCU-1,ACME Single Phase,North › Kano › Fagge,\n"
           "MTR0003,DCU-2,acme_sp,,\n")
    resp = upload(client, "meter", csv, admin_headers)
    assert resp.status_code == 200, resp.json
    assert {k: resp.json[k] for k in ("created", "updated", "errors")} == {"created": 3, "updated": 0, "errors": []}
    with app.app_context():
        m1 = db.session.execute(select(Meter).where(Meter.number == "MTR0001")).scalar_one()
        assert (m1.area.name, m1.sim.number, m1.status) == ("Sabon Gari", "8923400001", MeterStatus.warehouse)
        m2 = db.session.execute(select(Meter).where(Meter.number == "MTR0002")).scalar_one()
        assert m2.area.name == "Fagge" and m2.sim is None

    # Same natural keys again: updated, not duplicated; blank optional cells keep stored values.
    resp = upload(client, "meter", "Meter Number,Concentrator ID,Meter Type\nMTR0001,DCU-9,acme_sp\n", admin_headers)
    assert {k: resp.json[k] for k in ("created", "updated", "errors")} == {"created": 0, "updated": 1, "errors": []}
    assert count(app, Meter) == 3
    with app.app_context():
        m1 = db.session.execute(select(Meter).where(Meter.number == "MTR0001")).scalar_one()
        assert (m1.concentrator_id, m1.area.name, m1.sim.number) == ("DCU-9", "Sabon Gari", "8923400001")
        audit = db.session.execute(select(AuditLog).where(AuditLog.action == "import")).scalars().all()
        assert {a.object_type for a in audit} == {"sim", "meter"} and all(a.username for a in audit)


def test_meter_import_reports_every_problem_and_writes_nothing(app, client, admin_headers, brand, areas):
    upload(client, "sim", SIMS, admin_headers)
    upload(client, "meter", "Meter Number,Concentrator ID,Meter Type,SIM Number\nOWNER1,D,acme_sp,8923400002\n",
           admin_headers)
    csv = ("Meter Number,Concentrator ID,Meter Type,Area,SIM Number\n"
           "GOOD1,DCU-1,acme_sp,N,\n"                # 2: fine on its own
           "BAD1,DCU-1,ElsterX,,\n"                  # 3: unknown meter type
           "GOOD1,DCU-1,acme_sp,,\n"                 # 4: duplicate in file
           "BAD2,DCU-1,acme_sp,Atlantis,\n"          # 5: unknown area
           "BAD3,DCU-1,acme_sp,,8923400002\n"        # 6: SIM already assigned to OWNER1
           "BAD4,DCU-1,acme_sp,,999\n"               # 7: unknown SIM
           ",DCU-1,acme_sp,,\n"                      # 8: missing meter number
           "BAD 6,,acme_sp,,\n")                     # 9: bad characters, missing concentrator
    resp = upload(client, "meter", csv, admin_headers)
    assert resp.status_code == 422
    problems = {(e["line"], e["column"]) for e in resp.json["errors"]}
    assert problems == {(3, "Meter Type"), (4, "Meter Number"), (5, "Area"), (6, "SIM Number"),
                        (7, "SIM Number"), (8, "Meter Number"), (9, "Meter Number"), (9, "Concentrator ID")}
    reasons = {e["line"]: e["reason"] for e in resp.json["errors"]}
    assert "unknown meter type" in reasons[3]
    assert "duplicate in file" in reasons[4] and "line 2" in reasons[4]
    assert reasons[5] == "unknown area"
    assert "already assigned to meter OWNER1" in reasons[6]
    assert "unknown SIM" in reasons[7]
    assert count(app, Meter) == 1  # all or nothing: GOOD1 was not written either


def test_sim_import_rejects_bad_ip_port_and_clashes(app, client, admin_headers):
    csv = ("Sim Number,IP Address,Port\n"
           "S1,10.0.0.1,4059\n"
           "S2,10.0.0.300,4059\n"      # bad IP
           "S3,10.0.0.3,70000\n"       # port out of range
           "S4,10.0.0.4,abc\n"         # port not a number
           "S5,10.0.0.1,4059\n")       # same endpoint as S1
    resp = upload(client, "sim", csv, admin_headers)
    assert resp.status_code == 422
    got = {(e["line"], e["column"], e["reason"]) for e in resp.json["errors"]}
    assert (3, "IP Address", "is not a valid IP address") in got
    assert (4, "Port", "is out of range (1-65535)") in got
    assert (5, "Port", "must be a whole number") in got
    assert any(line == 6 and "duplicate in file" in reason for line, _c, reason in got)
    assert count(app, Sim) == 0


def test_spreadsheet_variants_bom_semicolon_header_case_blank_lines(app, client, admin_headers):
    csv = "\ufeff  sim_no ; ip address;PORT \r\nS10;10.1.0.1;4059\r\n\r\nS11;10.1.0.2;4059\r\n\r\n\r\n"
    resp = upload(client, "sim", csv.encode("utf-8"), admin_headers)
    assert resp.status_code == 200, resp.json
    assert resp.json["created"] == 2
    latin = "Sim Number,IP Address,Port,APN\nS12,10.1.0.3,4059,Télé\n".encode("cp1252")
    assert upload(client, "sim", latin, admin_headers).json["created"] == 1


def test_meter_comm_mode_and_status_columns(app, client, admin_headers, brand):
    csv = ("Meter Number,Concentrator ID,Meter Type,Comm Mode,Status\n"
           "CM1,D,acme_sp,dial-out,active\nCM2,D,acme_sp,,\nCM3,D,acme_sp,satellite,active\nCM4,D,acme_sp,,lost\n")
    resp = upload(client, "meter", csv, admin_headers)
    assert resp.status_code == 422
    assert {(e["line"], e["column"]) for e in resp.json["errors"]} == {(4, "Comm Mode"), (5, "Status")}
    resp = upload(client, "meter", "\n".join(csv.splitlines()[:3]) + "\n", admin_headers)
    assert resp.json["created"] == 2
    with app.app_context():
        modes = dict(db.session.execute(select(Meter.number, Meter.comm_mode)).all())
        statuses = dict(db.session.execute(select(Meter.number, Meter.status)).all())
    assert modes == {"CM1": "dial_out", "CM2": "dial_in"} and statuses == {"CM1": "active", "CM2": "warehouse"}


def test_missing_required_column_and_empty_file(client, admin_headers):
    resp = upload(client, "sim", "Sim Number,Port\nS1,4059\n", admin_headers)
    assert resp.status_code == 422
    assert resp.json["errors"] == [{"line": 1, "column": "IP Address", "reason": "column is missing from the header",
                                    "value": None}]
    resp = upload(client, "sim", "\n\n", admin_headers)
    assert resp.status_code == 422 and resp.json["errors"][0]["reason"] == "the file is empty"


def test_customer_import_assigns_archived_meters(app, client, admin_headers, brand):
    upload(client, "sim", SIMS, admin_headers)
    upload(client, "meter", "Meter Number,Concentrator ID,Meter Type\nM1,D,acme_sp\nM2,D,acme_sp\nM3,D,acme_sp\n",
           admin_headers)
    csv = ("Customer Name,Address,Phone No,Meter Number,Sim Number,Account Number,Email\n"
           "Ada Obi,1 Market Rd,+234 801 000 0001,M1,8923400001,ACC-ADA,ada@example.test\n"
           "Ada Obi,1 Market Rd,+234 801 000 0001,M2,8923400002,ACC-ADA,\n"
           "Bello Musa,2 River St,08020000002,M3,8923400003,,\n")
    resp = upload(client, "customer", csv, admin_headers)
    assert resp.status_code == 200, resp.json
    assert {k: resp.json[k] for k in ("created", "updated", "errors")} == {"created": 2, "updated": 1, "errors": []}
    with app.app_context():
        ada = db.session.execute(select(Customer).where(Customer.account_number == "ACC-ADA")).scalar_one()
        assert sorted(m.number for m in ada.meters) == ["M1", "M2"]
        assert {m.status for m in ada.meters} == {MeterStatus.installed}
        bello = db.session.execute(select(Customer).where(Customer.name == "Bello Musa")).scalar_one()
        assert bello.account_number == "ACC-M3" and bello.meters[0].sim.number == "8923400003"

    again = ("Customer Name,Address,Phone No,Meter Number,Sim Number,Account Number\n"
             "Someone Else,3 Hill,0803000003,M1,8923400001,ACC-OTHER\n"
             "Nobody,4 Hill,0803000004,M404,8923400003,\n"
             "Bad Phone,5 Hill,call me,M3,8923400003,\n")
    resp = upload(client, "customer", again, admin_headers)
    assert resp.status_code == 422
    got = {(e["line"], e["column"]): e["reason"] for e in resp.json["errors"]}
    assert got[(2, "Meter Number")] == "already assigned to another customer"
    assert got[(3, "Meter Number")].startswith("unknown meter")
    assert got[(4, "Phone No")] == "is not a valid phone number"
    assert count(app, Customer) == 2


def test_export_round_trips_through_import(app, client, admin_headers, brand, areas):
    upload(client, "sim", SIMS, admin_headers)
    csv = ("Meter Number,Concentrator ID,Meter Type,Area,SIM Number\n"
           "R1,DCU-1,acme_sp,N-KAN-SG,8923400001\nR2,DCU-2,acme_sp,S-LAG,\n")
    assert upload(client, "meter", csv, admin_headers).status_code == 200
    exported = client.get("/api/v1/meter/export", headers=admin_headers)
    assert exported.status_code == 200 and exported.mimetype == "text/csv"
    body = exported.get_data()
    assert body.decode("utf-8-sig").splitlines() == [
        "Meter Number,Concentrator ID,Meter Type,Area,SIM Number,Comm Mode,Status",
        "R1,DCU-1,acme_sp,N-KAN-SG,8923400001,dial_in,warehouse", "R2,DCU-2,acme_sp,S-LAG,,dial_in,warehouse"]
    resp = upload(client, "meter", body, admin_headers)
    assert {k: resp.json[k] for k in ("created", "updated", "errors")} == {"created": 0, "updated": 2, "errors": []}
    sims = client.get("/api/v1/sim/export", headers=admin_headers).get_data()
    resp = upload(client, "sim", sims, admin_headers)
    assert {k: resp.json[k] for k in ("created", "updated", "errors")} == {"created": 0, "updated": 3, "errors": []}
