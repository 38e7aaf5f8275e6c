"""Regressions for the hardening review (issue 15): each test failed on the main of 2026-11-27."""

from __future__ import annotations

import re
import time

import gevent
import pytest

from app.extensions import db
from tests.conftest import make_config


@pytest.fixture(scope="module")
def strict_app(tmp_path_factory):
    """An app as deployed (CSRF on) with an Admin and an Operator."""
    from app import create_app
    from app.services.bootstrap import prepare_database

    application = create_app(make_config(tmp_path_factory.mktemp("hrd-strict"), WTF_CSRF_ENABLED=True))
    prepare_database(application)
    with application.app_context():
        sm = application.appbuilder.sm
        for name, role in (("hrd_admin", "Admin"), ("hrd_op", "Operator")):
            sm.add_user(name, "H", role, f"{name}@example.test", sm.find_role(role), password="pw-" + name)
    yield application
    with application.app_context():
        db.session.remove()
        db.engine.dispose()


def _csrf_token(client) -> str:
    page = client.get("/login/").get_data(as_text=True)
    return page.split('name="csrf_token"')[1].split('value="')[1].split('"')[0]


def browser_login(app, username: str):
    """A test client signed in through the login form, as a browser; returns (client, csrf token)."""
    client = app.test_client()
    token = _csrf_token(client)
    resp = client.post("/login/", data={"username": username, "password": "pw-" + username, "csrf_token": token})
    assert resp.status_code == 302 and "/login" not in resp.headers["Location"]
    return client, token


def _socket_handshake(client, origin: str | None):
    headers = {"Origin": origin} if origin else {}
    return client.get("/socket.io/?EIO=4&transport=polling", headers=headers)


def test_socket_refuses_another_origin_of_the_same_site(app, role_clients):
    """Item 2: a page on another origin (even a sibling host) cannot open a socket with the admin's cookie."""
    client, _headers = role_clients["Admin"]
    refused = _socket_handshake(client, "http://evil.localhost")
    assert refused.status_code == 400 and b"accepted origin" in refused.data
    assert _socket_handshake(client, "http://localhost").status_code == 200
    assert _socket_handshake(client, None).status_code == 200  # non-browser clients send no Origin


# ----- item 8: hostile input is refused with 4xx ------------------------------------------------------------------

def test_deeply_nested_json_is_refused_even_on_the_anonymous_login(app, admin_headers):
    client = app.test_client()
    deep = "[" * 100_000 + "]" * 100_000
    for url, headers in (("/api/v1/security/login", {}), ("/api/v1/meter/", admin_headers),
                         ("/api/v1/command/", admin_headers)):
        resp = client.post(url, data=deep, headers={**headers, "Content-Type": "application/json"})
        assert resp.status_code == 400, (url, resp.status_code)
        assert "nested deeper" in resp.json["message"]
    # an ordinary login still works
    ok = client.post("/api/v1/security/login", json={"username": "nobody", "password": "x", "provider": "db"})
    assert ok.status_code == 401


def test_a_lone_surrogate_in_json_is_refused(app, admin_headers):
    client = app.test_client()
    for body in ('{"username": "\\ud800", "password": "x", "provider": "db"}',
                 '{"name": "A", "account_number": "ACC-\\udfff"}'):
        for url in ("/api/v1/security/login", "/api/v1/customer/"):
            resp = client.post(url, data=body, headers={**admin_headers, "Content-Type": "application/json"})
            assert resp.status_code == 400 and "surrogate" in resp.json["message"], (url, resp.status_code)
    paired = client.post("/api/v1/customer/", json={"name": "Emoji \U0001F600", "account_number": "ACC-EMOJI"},
                         headers=admin_headers)
    assert paired.status_code == 201, paired.json


def test_a_csv_cell_over_128_kib_is_a_line_error(app, admin_headers):
    import io

    client = app.test_client()
    body = b"SIM Number,IP Address,Port\nS1,10.0.0.1,4059\nS2,10.0.0.2," + b"9" * 200_000 + b"\n"
    resp = client.post("/api/v1/sim/import", data={"file": (io.BytesIO(body), "sims.csv")},
                       headers=admin_headers, content_type="multipart/form-data")
    assert resp.status_code == 422, resp.get_data(as_text=True)[:500]
    assert [(e["line"], e["reason"]) for e in resp.json["errors"]] == [(3, "a cell is longer than 128 KiB")]
    with app.app_context():
        from app.extensions import db
        from app.models import Sim

        assert db.session.query(Sim).count() == 0  # nothing of a refused file is kept


# ----- item 9: exports do not carry formulas ------------------------------------------------------------------------

def test_exports_neutralise_formula_cells_and_the_import_takes_them_back(app, admin_headers):
    client = app.test_client()
    names = ["=1+1", "=HYPERLINK(\"http://x\",\"y\")", "@SUM(A1)", "-2+3", "+1+1", "\tTab"]
    with app.app_context():
        from app.extensions import db
        from app.models import Meter

        meters = [Meter(number=f"FORMULA-{i}", brand_id=db_brand_id()) for i in range(len(names))]
        db.session.add_all(meters)
        db.session.commit()
        meter_ids = [m.id for m in meters]
    for i, name in enumerate(names):
        resp = client.post("/api/v1/customer/", json={"name": name, "account_number": f"ACC-F{i}",
                                                      "phone": "+254 700 000 00" + str(i), "meters": [meter_ids[i]]},
                           headers=admin_headers)
        assert resp.status_code == 201, resp.json
    text = client.get("/api/v1/customer/export", headers=admin_headers).get_data(as_text=True)
    import csv
    import io

    cells = [cell for row in csv.reader(io.StringIO(text.lstrip("\ufeff"))) for cell in row]
    for name in names:
        assert "'" + name in cells and name not in cells, name
    assert "+254 700 000 000" in cells  # a phone number is not a formula and stays as it is
    from app.services.csvio import Column, parse

    parsed = parse(text, [Column("Customer Name", required=False)])
    assert {row["Customer Name"] for _line, row in parsed.rows} >= {n.strip() for n in names}


# ----- item 10: the minor findings ------------------------------------------------------------------------------------

def test_idempotency_keys_belong_to_their_user(app, client, make_user, api_token, two_customers):
    meter = two_customers["A"]["meter_id"]
    admin = api_token(make_user("Admin", "t_hrd_idem_admin"))
    operator = api_token(make_user("Operator", "t_hrd_idem_op"))
    first = client.post("/api/v1/command/", json={"kind": "disconnect", "meter_id": meter, "expires_in": 60},
                        headers={**admin, "Idempotency-Key": "shared-key"})
    assert first.status_code == 201, first.json
    other = client.post("/api/v1/command/", json={"kind": "reconnect", "meter_id": meter, "expires_in": 60},
                        headers={**operator, "Idempotency-Key": "shared-key"})
    assert other.status_code == 201, other.json  # not a 409 telling the operator the admin's key exists
    again = client.post("/api/v1/command/", json={"kind": "disconnect", "meter_id": meter, "expires_in": 60},
                        headers={**admin, "Idempotency-Key": "shared-key"})
    assert again.status_code == 200 and again.json["id"] == first.json["id"]
    assert again.json["result"]["idempotency_key"] == "shared-key"


def test_sqlite_database_is_private(app):
    import os
    import stat

    with app.app_context():
        from app.extensions import db

        url = db.engine.url
    path = url.database
    if not path or url.get_backend_name() != "sqlite":
        pytest.skip("PostgreSQL keeps its own files")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


@pytest.mark.parametrize("number", ["<b>M1</b>", "M\u202e1", "M\u200b1", "M 1", "M\u00ad1", ""])
def test_api_and_form_refuse_meter_numbers_the_importer_refuses(app, admin_headers, number):
    from app.services.fleet_import import import_meters

    client = app.test_client()
    with app.app_context():
        brand = db_brand_id()
    resp = client.post("/api/v1/meter/", json={"number": number, "brand": brand}, headers=admin_headers)
    assert resp.status_code in (400, 422), (number, resp.status_code, resp.json)
    with app.app_context():
        from app.services import ServiceError

        with pytest.raises(ServiceError):
            import_meters(f"Meter Number,Brand\n\"{number}\",hes_sim\n")


def db_brand_id() -> int:
    from app.extensions import db
    from app.models import MeterBrand

    return db.session.query(MeterBrand.id).filter_by(name="hes_sim").scalar()


def test_demo_simulator_gets_its_password_from_the_environment(app, monkeypatch):
    """The demo's LLS password is not on the simulator's command line (readable by every local user)."""
    import io
    import os
    import subprocess

    from app.services import demo
    from simulator.__main__ import build_parser

    started = {}

    class FakeProcess:
        def __init__(self, cmd, env=None, **_kwargs):
            started.update(cmd=cmd, env=env or {})
            self.stdout = io.StringIO('{"control_port": 1}\n')

        def terminate(self):
            pass

        def wait(self, timeout=None):
            return 0

    monkeypatch.setattr(subprocess, "Popen", FakeProcess)
    registered = {}
    monkeypatch.setattr(demo, "ensure_demo_registry", lambda count, password: registered.update(password=password))
    demo.start_demo(app, 2, ("127.0.0.1", 4059))()
    password = registered["password"]
    assert password and not any(password in arg for arg in started["cmd"])
    assert started["env"].get("SIM_PASSWORD") == password
    monkeypatch.setenv("SIM_PASSWORD", password)
    assert build_parser().parse_args([]).password == password
    assert os.environ["SIM_PASSWORD"] == password


# ----- item 7: CSRF on cookie-authenticated API writes ----------------------------------------------------------------

def test_cookie_authenticated_api_writes_need_a_csrf_token_or_json(strict_app):
    import io

    client, token = browser_login(strict_app, "hrd_admin")
    forged = [("/api/v1/meter/1/collect", {}), ("/api/v1/investigation/detect", {}),
              ("/api/v1/command/1/cancel", {}),
              ("/api/v1/meter/import", {"data": {"file": (io.BytesIO(b"Meter Number\nX1\n"), "m.csv")},
                                        "content_type": "multipart/form-data"})]
    for url, kwargs in forged:
        resp = client.post(url, **kwargs)  # what a form on a sibling origin could send with the cookie
        assert resp.status_code == 400 and "X-CSRFToken" in resp.json["message"], (url, resp.status_code)
    for url, kwargs in forged:
        if "data" in kwargs:
            kwargs["data"]["file"] = (io.BytesIO(b"Meter Number\nX1\n"), "m.csv")
        resp = client.post(url, headers={"X-CSRFToken": token}, **kwargs)  # the console's own call
        assert resp.status_code != 400 or "X-CSRFToken" not in (resp.json or {}).get("message", ""), url
    assert client.post("/api/v1/investigation/detect", json={}).status_code != 400  # JSON needs a preflight
    api = strict_app.test_client()
    jwt = api.post("/api/v1/security/login", json={"username": "hrd_admin", "password": "pw-hrd_admin",
                                                   "provider": "db"}).json["access_token"]
    bearer = api.post("/api/v1/investigation/detect", headers={"Authorization": f"Bearer {jwt}"})
    assert bearer.status_code != 400  # a bearer token is never sent by the browser on its own


# ----- item 3: sessions are revocable server-side ---------------------------------------------------------------

def _jwt(client, username: str, password: str | None = None) -> tuple[dict, str]:
    resp = client.post("/api/v1/security/login", json={"username": username, "password": password or "pw-" + username,
                                                       "provider": "db", "refresh": True})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return {"Authorization": f"Bearer {resp.json['access_token']}"}, resp.json["refresh_token"]


def _copy_cookie(source, app):
    """A second browser holding a copy of ``source``'s session cookie (what an attacker would steal)."""
    thief = app.test_client()
    cookie = source.get_cookie("session")
    thief.set_cookie("session", cookie.value)
    return thief


def test_logout_revokes_copied_cookies_and_tokens(app, make_user):
    username = make_user("Operator")
    browser = app.test_client()
    from tests.security.conftest import login_session

    login_session(browser, username)
    thief = _copy_cookie(browser, app)
    headers, refresh = _jwt(app.test_client(), username)
    assert browser.get("/dashboard/").status_code == 200
    assert thief.get("/dashboard/").status_code == 200
    assert app.test_client().get("/api/v1/meter/", headers=headers).status_code == 200
    browser.get("/logout/")
    assert "/login" in thief.get("/dashboard/").headers.get("Location", "")  # the copied cookie is dead
    assert app.test_client().get("/api/v1/meter/", headers=headers).status_code == 401  # so is the old JWT
    refreshed = app.test_client().post("/api/v1/security/refresh", headers={"Authorization": f"Bearer {refresh}"})
    assert refreshed.status_code == 401  # and its refresh token
    again = app.test_client()
    login_session(again, username)  # signing in again works
    assert again.get("/dashboard/").status_code == 200


def test_password_change_revokes_sessions_and_tokens(app, make_user):
    username = make_user("Operator")
    browser = app.test_client()
    from tests.security.conftest import login_session

    login_session(browser, username)
    headers, _refresh = _jwt(app.test_client(), username)
    with app.app_context():
        sm = app.appbuilder.sm
        user = sm.find_user(username=username)
        sm.reset_password(user.id, "a-new-password-1")
    assert "/login" in browser.get("/dashboard/").headers.get("Location", "")
    assert app.test_client().get("/api/v1/meter/", headers=headers).status_code == 401
    fresh, _ = _jwt(app.test_client(), username, "a-new-password-1")
    assert app.test_client().get("/api/v1/meter/", headers=fresh).status_code == 200


def test_sockets_refuse_a_token_of_a_logged_out_user(app, make_user):
    from app.extensions import socketio

    username = make_user("Operator")
    headers, _refresh = _jwt(app.test_client(), username)
    token = headers["Authorization"].split()[1]
    live = socketio.test_client(app, auth={"token": token})
    assert live.is_connected()
    live.disconnect()
    browser = app.test_client()
    from tests.security.conftest import login_session

    login_session(browser, username)
    browser.get("/logout/")
    assert not socketio.test_client(app, auth={"token": token}).is_connected()


def test_admin_signs_a_user_out_everywhere(app, make_user):
    from tests.security.conftest import login_session

    username = make_user("Operator")
    admin, _ = _jwt(app.test_client(), make_user("Admin"))
    browser = app.test_client()
    login_session(browser, username)
    headers, _refresh = _jwt(app.test_client(), username)
    with app.app_context():
        user_id = app.appbuilder.sm.find_user(username=username).id
    assert app.test_client().post(f"/api/v1/user_session/{user_id}/revoke", headers=headers).status_code == 403
    resp = app.test_client().post(f"/api/v1/user_session/{user_id}/revoke", headers=admin)
    assert resp.status_code == 200, resp.json
    assert "/login" in browser.get("/dashboard/").headers.get("Location", "")
    assert app.test_client().get("/api/v1/meter/", headers=headers).status_code == 401


# ----- item 1: no unscoped related-field lists for customers ----------------------------------------------------------

def test_customer_cannot_list_other_customers_meters_or_users_through_info(app, role_clients):
    client, headers = role_clients["Customer"]
    for resource in ("customer", "meter", "event", "alert"):
        for kwargs in ({"headers": headers}, {}):  # by JWT and by the browser session
            resp = client.get(f"/api/v1/{resource}/_info", **kwargs)
            body = resp.get_data(as_text=True)
            assert resp.status_code in (401, 403), (resource, resp.status_code)
            assert "Customer B" not in body and "SEC-M-B" not in body and "SEC-B" not in body
    staff, staff_headers = role_clients["Operator"]
    assert staff.get("/api/v1/meter/_info", headers=staff_headers).status_code == 200
    assert client.get("/api/v1/meter/", headers=headers).status_code == 200  # their own list still works


# ----- item 6 (part): sign-in works while Redis is lost ------------------------------------------------------

def test_login_works_while_the_rate_limit_store_is_down(tmp_path):
    """The login rate limit lives in Redis; with Redis gone, sign-in still answers (not 500 for everyone)."""
    import shutil
    import socket
    import subprocess
    import time

    if not shutil.which("redis-server"):
        pytest.skip("needs redis-server")
    from app import create_app
    from app.services.bootstrap import prepare_database

    port = 24000 + next(p for p in range(100) if socket.socket().connect_ex(("127.0.0.1", 24000 + p)) != 0)
    redis = subprocess.Popen(["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
                             stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        url = f"redis://127.0.0.1:{port}/0"
        application = create_app(make_config(tmp_path, HES_REDIS_URL=url, RATELIMIT_STORAGE_URI=url,
                                             RATELIMIT_ENABLED=True, AUTH_RATE_LIMIT="50 per minute"))
        prepare_database(application)
        with application.app_context():
            sm = application.appbuilder.sm
            sm.add_user("hrd_redis", "R", "O", "hrd_redis@example.test", sm.find_role("Operator"), password="pw-x")
        body = {"username": "hrd_redis", "password": "pw-x", "provider": "db"}
        assert application.test_client().post("/api/v1/security/login", json=body).status_code == 200
    finally:
        redis.terminate()
        redis.wait(5)
    resp = application.test_client().post("/api/v1/security/login", json=body)
    assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
    wrong = application.test_client().post("/api/v1/security/login", json={**body, "password": "nope"})
    assert wrong.status_code == 401


def test_a_command_written_while_the_queue_is_down_answers_201_once(app, make_user, two_customers, monkeypatch):
    """The command is committed before it is enqueued: a lost Redis must not turn that into a 500 (a client retry
    without an idempotency key would then create a duplicate). The sweeper dispatches it later."""
    import redis

    from app.services.commands import queue

    class LostRedis:
        def enqueue_command(self, *_args, **_kwargs):
            raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(queue, "_tasks", lambda: LostRedis())
    headers, _refresh = _jwt(app.test_client(), make_user("Operator"))
    meter = two_customers["A"]["meter_id"]
    resp = app.test_client().post("/api/v1/command/", json={"kind": "disconnect", "meter_id": meter},
                                  headers=headers)
    assert resp.status_code == 201, resp.get_data(as_text=True)[:300]
    with app.app_context():
        from app.models.commands import Command, CommandState

        states = [c.state for c in db.session.query(Command).filter_by(meter_id=meter)]
    assert states == [CommandState.queued]


# ----- item 5: a customer cannot hold back operators' commands -------------------------------------------------

def test_customer_token_entries_are_rate_limited_and_operator_commands_go_first(app, role_clients, two_customers):
    """300 token entries were accepted in 3.9 s and an operator's disconnect waited behind all of them (313 s).
    Now a customer's entries on a meter are limited (a 429 that says when to try again) and an operator's
    command is claimed before the customer's queued ones."""
    from app.models.commands import Command
    from app.services.commands import queue
    from app.services.settings import set_setting

    meter = two_customers["A"]["meter_id"]  # a dial-in meter that is offline: its commands wait, queued
    with app.app_context():
        set_setting("customer_token_entry", True)
        db.session.commit()
    customer, customer_headers = role_clients["Customer"]
    body = {"meter_id": meter, "token": "12000123000000000428"}
    answers = [customer.post("/api/v1/command/token", json=body, headers=customer_headers) for _ in range(6)]
    assert [a.status_code for a in answers] == [201] * queue.CUSTOMER_TOKENS + [429]
    refused = answers[-1]
    assert "Too many tokens entered on meter SEC-M-A" in refused.json["message"]
    assert re.search(r"You can enter the next one in \d+ s \(at \d\d:\d\d:\d\d UTC\)", refused.json["message"])
    assert 0 < int(refused.headers["Retry-After"]) <= queue.CUSTOMER_TOKEN_WINDOW_SECONDS
    staff, staff_headers = role_clients["Operator"]
    assert staff.post("/api/v1/command/token", json=body, headers=staff_headers).status_code == 201  # not limited
    disconnect = staff.post("/api/v1/command/", json={"kind": "disconnect", "meter_id": meter}, headers=staff_headers)
    assert disconnect.status_code == 201
    with app.app_context():
        commands = db.session.query(Command).filter_by(meter_id=meter).order_by(Command.id).all()
        first_token, operator_disconnect = commands[0], db.session.get(Command, disconnect.json["id"])
        assert len(commands) == queue.CUSTOMER_TOKENS + 2
        # The operator's disconnect, created last, is the one the meter runs next; the customer's tokens wait.
        assert queue._claim(first_token) is False
        assert queue._claim(operator_disconnect) is True
        set_setting("customer_token_entry", False)
        db.session.commit()


# ----- item 4: an import is capped at what one import does in seconds ----------------------------------------------

def test_an_import_over_the_cap_is_refused_with_413_and_writes_nothing(app, admin_headers, monkeypatch):
    import io

    from app.models import Sim

    monkeypatch.setitem(app.config, "HES_IMPORT_MAX_MB", "0.01")  # 10 KiB
    body = "Sim Number,IP Address,Port\n" + "".join(f"CAP{i:05d},10.1.{i // 250}.{i % 250},4059\n" for i in range(600))
    resp = app.test_client().post("/api/v1/sim/import", data={"file": (io.BytesIO(body.encode()), "sims.csv")},
                                  headers=admin_headers, content_type="multipart/form-data")
    assert resp.status_code == 413, resp.get_data(as_text=True)[:300]
    assert "larger than the import limit" in resp.json["message"] and "HES_IMPORT_MAX_MB" in resp.json["message"]
    with app.app_context():
        assert db.session.query(Sim).filter(Sim.number.like("CAP%")).count() == 0


def test_sign_in_hashes_off_the_event_loop(app, client, make_user):
    """The password check (scrypt, a CPU-heavy call) runs in a native thread: the loop keeps ticking meanwhile,
    and a wrong password is still refused."""
    from app.comms.looplag import LoopLagMonitor

    username = make_user("Operator")
    monitor = LoopLagMonitor(tick=0.01).start()
    try:
        gevent.sleep(0.05)
        began = time.monotonic()
        ok = client.post("/api/v1/security/login", json={"username": username, "password": "pw-" + username,
                                                          "provider": "db"})
        took = time.monotonic() - began
        wrong = client.post("/api/v1/security/login", json={"username": username, "password": "not-it",
                                                             "provider": "db"})
        lag = monitor.snapshot()
    finally:
        monitor.stop()
    assert ok.status_code == 200 and "access_token" in ok.json
    assert wrong.status_code == 401
    assert lag["samples"] >= took / 0.01 / 3  # the loop went on ticking while the hash was computed
    assert lag["max_ms"] < took * 1000 / 2
