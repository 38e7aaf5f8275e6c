"""schemathesis against /api/v1/_openapi, in-process through the app's WSGI interface.

Every operation of the spec is fuzzed with an Admin JWT, a Customer JWT and no credentials, and the endpoints the
hardening review added or changed (``HARDENED``) with an Operator JWT too. Properties:
- no answer is a 5xx (apart from Flask-AppBuilder's own security API, see KNOWN_5XX_APIS for why);
- no auth bypass: a caller the authorization matrix refuses (test_authz_matrix.EXPECTED) gets 401/403 on every
  generated request, whatever the parameters and body;
- the Admin token is never refused as unauthenticated.

Bounded: a few examples per operation and role (about a minute in all); nothing is excluded. Two request
adjustments, both visible here: ``wait`` (seconds to wait for a meter's answer) is forced to 0, because no
meter runs in this test and a generated ``wait: 120`` would only block; operations that delete or edit users
and roles run last, so the Admin and Customer logins the run depends on live as long as possible.

The run uses an app and database of its own: the generated writes (users, roles, deletions of low ids) must not
leak into the other tests.
"""

from __future__ import annotations

import os
import uuid
from urllib.parse import unquote

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from werkzeug.exceptions import HTTPException

from tests.conftest import _drop_pg_schema, _pg_url, make_config
from tests.security.test_authz_matrix import ADMIN, ANON, CUSTOMER, EXPECTED, OPERATOR, PUBLIC, REFRESH_TOKEN

EXAMPLES = {ADMIN: 6, OPERATOR: 3, CUSTOMER: 3, ANON: 1}
# Flask-AppBuilder's own security API (Admin only) writes ids and names it did not check: a missing user on PUT
# (UserApi.pre_update dereferences None), a huge or unknown role/group/user id, a duplicate view-menu name, a
# permission-on-view without its ids all end in a database error and FAB's generic 500. Upstream bugs, listed in
# SECURITY.md; these operations are still fuzzed for auth bypass by every role.
KNOWN_5XX_APIS = {"UserApi", "RoleApi", "GroupApi", "PermissionApi", "ViewMenuApi", "PermissionViewMenuApi"}
LAST = ("/security/users", "/security/roles", "/security/groups")
BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get("HES_TEST_DATABASE_URL") else [])


@pytest.fixture(scope="module", params=BACKENDS)
def fuzz_app(request, tmp_path_factory):
    """A separate HES app and database for the fuzzing run, with an Admin and a linked Customer login."""
    from app import create_app
    from app.extensions import db
    from app.models import Customer, Meter, MeterBrand
    from app.services.bootstrap import prepare_database

    schema = f"hes_fuzz_{uuid.uuid4().hex[:10]}" if request.param == "postgresql" else None
    application = create_app(make_config(tmp_path_factory.mktemp("fuzz"), _pg_url(schema) if schema else None))
    prepare_database(application)
    with application.app_context():
        sm = application.appbuilder.sm
        for role in (ADMIN, OPERATOR, CUSTOMER):
            sm.add_user(f"fz_{role.lower()}", "Fuzz", role, f"fz_{role.lower()}@example.test", sm.find_role(role),
                        password=f"pw-fz_{role.lower()}")
        brand = db.session.query(MeterBrand).first()
        customer = Customer(account_number="FZ-1", name="Fuzz", user_id=sm.find_user(username="fz_customer").id)
        db.session.add(customer)
        db.session.flush()
        db.session.add(Meter(number="FZ-M-1", brand_id=brand.id, customer_id=customer.id))
        db.session.commit()
    yield application
    with application.app_context():
        db.session.remove()
        db.engine.dispose()
    if schema:
        _drop_pg_schema(schema)


def _headers(app, role: str) -> dict:
    if role == ANON:
        return {}
    name = f"fz_{role.lower()}"
    resp = app.test_client().post("/api/v1/security/login",
                                  json={"username": name, "password": f"pw-{name}", "provider": "db"})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return {"Authorization": f"Bearer {resp.json['access_token']}"}


def _operations(app, schema):
    adapter = app.url_map.bind("localhost")
    ops = []
    for result in schema.get_all_operations():
        op = result.ok()
        concrete = op.path
        for param in op.path_parameters:
            concrete = concrete.replace("{" + param.name + "}", "1")
        endpoint, _args = adapter.match(concrete, method=op.method.upper())
        ops.append((op, endpoint))
    ops.sort(key=lambda item: (any(p in item[0].path for p in LAST), item[0].method.upper() == "DELETE"))
    return ops


def _adjust(case) -> None:
    if isinstance(case.body, dict) and "wait" in case.body:
        case.body["wait"] = 0
    if isinstance(case.query, dict) and "wait" in case.query:
        case.query["wait"] = 0


# Endpoints the hardening review (issue 15) added or changed: they must stay in the spec, so that every role fuzzes
# them (import jobs, the customer token limit, command priority, queue loss, session revocation).
HARDENED = {"MeterApi.import_csv", "SimApi.import_csv", "CustomerApi.import_csv", "MeterApi.import_status",
            "SimApi.import_status", "CustomerApi.import_status", "CommandApi.submit_token", "CommandApi.post",
            "JobApi.post", "UserSessionApi.revoke"}


@pytest.mark.slow
@pytest.mark.timeout(900)  # every operation × four roles: minutes on PostgreSQL on a busy 2-core machine
def test_api_fuzzing_finds_no_5xx_and_no_auth_bypass(fuzz_app):
    admin = _headers(fuzz_app, ADMIN)
    schema = schemathesis.openapi.from_wsgi("/api/v1/_openapi", fuzz_app, headers=admin)
    operations = _operations(fuzz_app, schema)
    assert len(operations) > 100, "the spec lost most of its operations"
    assert HARDENED <= {endpoint for _op, endpoint in operations}, HARDENED - {e for _o, e in operations}
    headers = {ADMIN: admin, OPERATOR: _headers(fuzz_app, OPERATOR), CUSTOMER: _headers(fuzz_app, CUSTOMER), ANON: {}}
    problems: list[str] = []
    for role in (ANON, CUSTOMER, OPERATOR, ADMIN):
        for op, endpoint in operations:
            if role != OPERATOR or endpoint in HARDENED:  # the Operator on what the hardening changed
                _fuzz(fuzz_app, op, endpoint, role, headers[role], problems)
    assert not problems, "\n".join(sorted(set(problems))[:60])


# The app-wide input guards (app/__init__.py: numbers out of range, NUL characters) answer 400 before any view or
# permission check runs: no view ran, so such a 400 is not a bypass.
GUARD_MESSAGES = ("is out of range (at most", "must not contain NUL")


def _routes(app, method: str, path: str) -> bool:
    """Whether a concrete path reaches a view at all (a generated ``-5`` never matches ``<int:pk>``)."""
    try:
        app.url_map.bind("localhost").match(path, method=method)
    except HTTPException:
        return False
    return True


def _fuzz(app, op, endpoint: str, role: str, headers: dict, problems: list[str]) -> None:
    """Generate requests for one operation as one role; record 5xx answers and refusals that did not happen
    (a 404 from the router for a path that matches no route, or the 400 of an input guard, is not a bypass: no
    view ran)."""
    expected = EXPECTED[endpoint]
    allowed = expected == REFRESH_TOKEN or role in expected

    @settings(max_examples=EXAMPLES[role], deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=op.as_strategy())
    def run(case):
        _adjust(case)
        response = case.call(headers=headers)
        where = f"{role} {op.method.upper()} {op.path} ({endpoint}) -> {response.status_code}"
        if response.status_code >= 500 and endpoint.split(".")[0] not in KNOWN_5XX_APIS:
            problems.append(f"{where}: {response.text[:200]} | path={case.path_parameters} query={case.query} "
                            f"body={str(case.body)[:200]}")
        elif not allowed and response.status_code not in (401, 403) and not (
                response.status_code == 404 and not _routes(app, op.method.upper(), unquote(case.formatted_path))
        ) and not (response.status_code == 400 and any(m in response.text for m in GUARD_MESSAGES)):
            problems.append(f"{where}: AUTH BYPASS | path={case.path_parameters} query={case.query}")
        elif role == ADMIN and response.status_code == 401 and expected not in (REFRESH_TOKEN, PUBLIC):
            problems.append(f"{where}: the Admin token was refused")

    run()
