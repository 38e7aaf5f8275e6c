"""Dial-out health: the health check associates with dial-out meters (real sockets, the simulator), failures in
a row take a meter offline with a "communication lost" event and alert, the first success restores it."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Alert, AlertState, CommMode, Event, Meter, MeterBrand, MeterStatus, Sim
from app.services.health import health_check
from app.services.meter_access import MeterUnreachable, run_on_meter
from app.services.secrets import store_credentials
from tests.support.simulator import PASSWORD, start_simulator


@pytest.fixture
def health_app(app):
    """The app with probes run inline (Huey immediate) and fast, small limits."""
    from app.tasks import huey

    fast = {"HES_DIAL_OUT_FAILURES": 2, "HES_HEALTH_SPREAD_SECONDS": 0, "HES_DIAL_ATTEMPTS": 1,
            "HES_RESPONSE_TIMEOUT": 3}
    saved = {k: app.config[k] for k in fast if k in app.config}
    app.config.update(fast)
    huey.immediate = True
    try:
        with app.app_context():
            yield app
    finally:
        huey.immediate = False
        for key in fast:
            app.config.pop(key, None)
        app.config.update(saved)


def _dial_out_meter(sim) -> int:
    brand = db.session.execute(select(MeterBrand).where(MeterBrand.name == "hes_sim")).scalar_one()
    brand.default_secret = store_credentials(brand.default_secret, password=PASSWORD.decode())
    sim_row = Sim(number="SIM-HEALTH-1", ip_address="127.0.0.1", port=sim.port(0))
    meter = Meter(number=sim.serial(0), brand_id=brand.id, status=MeterStatus.active, comm_mode=CommMode.dial_out,
                  sim=sim_row)
    db.session.add_all([sim_row, meter])
    db.session.commit()
    return meter.id


def _state(meter_id: int) -> tuple[bool, int]:
    db.session.expire_all()
    meter = db.session.get(Meter, meter_id)
    return meter.online, meter.comm_failures


def _comm_alert(meter_id: int) -> Alert | None:
    return db.session.execute(select(Alert).where(Alert.meter_id == meter_id, Alert.alert_type == "comm_lost")
                              ).scalar()


def test_health_check_probes_dial_out_meters_and_takes_the_unreachable_offline(health_app):
    sim = start_simulator(meters=1, first_serial=71, extra=["--prefix", "HLT"])
    try:
        meter_id = _dial_out_meter(sim)
        report = health_check()
        assert report["dial_out_probed"] == 1 and report["checked"] >= 1
        assert _state(meter_id) == (True, 0)  # reached: online
        # A session just now is proof enough: the next check does not dial it again.
        assert health_check()["dial_out_probed"] == 0

        sim.post(f"/meters/{sim.serial(0)}/fault", {"kind": "offline"})
        # Any failed session counts (here an on-demand read), then the health check's probe.
        with pytest.raises(MeterUnreachable):
            run_on_meter(meter_id, "read_points", refs=["energy_import"])
        assert _state(meter_id) == (True, 1)
        assert health_check()["dial_out_probed"] == 1
        assert _state(meter_id) == (False, 2)
        alert = _comm_alert(meter_id)
        assert alert is not None and alert.state == AlertState.active
        assert db.session.execute(select(Event.event_type).where(Event.meter_id == meter_id)).scalars().all() \
            == ["comm_lost"]

        sim.post(f"/meters/{sim.serial(0)}/fault", {"kind": "offline", "active": False})
        assert health_check()["dial_out_probed"] == 1
        assert _state(meter_id) == (True, 0)
        db.session.expire_all()
        assert _comm_alert(meter_id).state != AlertState.active
        assert sorted(db.session.execute(select(Event.event_type).where(Event.meter_id == meter_id))
                      .scalars().all()) == ["comm_lost", "comm_restored"]
    finally:
        sim.stop()


def test_a_read_writes_last_seen_at_most_every_30_seconds(health_app):
    """Reads of an online dial-out meter move its last-seen time only when the stored one is 30 s old or more
    (a commit per read session cost a fifth of the read path); the meter stays online throughout."""
    import datetime as dt

    from sqlalchemy import update

    sim = start_simulator(meters=1, first_serial=81, extra=["--prefix", "HLS"])
    try:
        meter_id = _dial_out_meter(sim)
        run_on_meter(meter_id, "read_points", refs=["clock"])
        db.session.expire_all()
        first = db.session.get(Meter, meter_id).last_seen
        assert first is not None and _state(meter_id)[0] is True
        run_on_meter(meter_id, "read_points", refs=["clock"])
        db.session.expire_all()
        assert db.session.get(Meter, meter_id).last_seen == first  # seen moments ago: not written again
        old = first - dt.timedelta(seconds=45)
        db.session.execute(update(Meter).where(Meter.id == meter_id).values(last_seen=old))
        db.session.commit()
        run_on_meter(meter_id, "read_points", refs=["clock"])
        db.session.expire_all()
        assert db.session.get(Meter, meter_id).last_seen > first
    finally:
        sim.stop()


def test_a_read_session_loads_its_meter_in_one_statement(health_app):
    """The hot path reads the meter's state, settings, SIM and secret in force in one Core statement (the brand's
    points and the decrypted secrets are kept in process until they change): a warm read of an online meter runs
    no other SQL."""
    from sqlalchemy import event

    sim = start_simulator(meters=1, first_serial=91, extra=["--prefix", "HLQ"])
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args):
        statements.append(statement)

    try:
        meter_id = _dial_out_meter(sim)
        run_on_meter(meter_id, "read_points", refs=["clock", "energy_import"])  # online, scalers learnt
        db.session.remove()
        event.listen(db.engine, "before_cursor_execute", count)
        try:
            results = run_on_meter(meter_id, "read_points", refs=["clock", "energy_import"])
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
        assert [r.get("error") for r in results] == [None, None]
        assert len(statements) == 1, "\n".join(s[:90] for s in statements)
    finally:
        sim.stop()
