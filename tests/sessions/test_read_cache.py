"""The read path's process caches (``app.services.meter_view``) never serve a changed secret, brand point or setting:
each change reaches the very next read (real sockets, the simulator)."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from app.extensions import db
from app.models import CommMode, Meter, MeterBrand, MeterSecret, MeterStatus, ObisPoint, Sim
from app.services import ServiceError
from app.services.meter_access import MeterUnreachable, run_on_meter
from app.services.meter_view import cache_sizes, load_meter_view
from app.services.reads import read_now
from app.services.secrets import store_credentials
from tests.support.simulator import PASSWORD, start_simulator


@pytest.fixture
def read_app(app):
    """The app with one dial attempt and a short response timeout."""
    fast = {"HES_DIAL_ATTEMPTS": 1, "HES_RESPONSE_TIMEOUT": 3}
    saved = {k: app.config[k] for k in fast if k in app.config}
    app.config.update(fast)
    try:
        with app.app_context():
            yield app
            db.session.rollback()  # the plugin brand's secret is shared by the session's tests: the right one
            brand = _brand()
            brand.default_secret = store_credentials(brand.default_secret, password=PASSWORD.decode())
            db.session.commit()
    finally:
        for key in fast:
            app.config.pop(key, None)
        app.config.update(saved)


@pytest.fixture
def sim():
    """Two simulated dial-out meters (LLS with the test password)."""
    started = start_simulator(meters=2, first_serial=41, extra=["--prefix", "RCC"])
    yield started
    started.stop()


def _brand() -> MeterBrand:
    return db.session.execute(select(MeterBrand).where(MeterBrand.name == "hes_sim")).scalar_one()


def _dial_out_meter(sim, index: int) -> int:
    brand = _brand()
    brand.default_secret = store_credentials(brand.default_secret, password=PASSWORD.decode())
    sim_row = Sim(number=f"SIM-RCC-{index}", ip_address="127.0.0.1", port=sim.port(index))
    meter = Meter(number=sim.serial(index), brand_id=brand.id, status=MeterStatus.active,
                  comm_mode=CommMode.dial_out, sim=sim_row)
    db.session.add_all([sim_row, meter])
    db.session.commit()
    return meter.id


def _read(meter_id: int, refs: list[str]) -> list[dict]:
    results = run_on_meter(meter_id, "read_points", refs=refs)
    db.session.remove()  # as after a request: nothing of this session's ORM state carries over
    return results


def test_a_changed_secret_is_used_by_the_next_read(read_app, sim):
    meter_id = _dial_out_meter(sim, 0)
    assert _read(meter_id, ["energy_import"])[0].get("error") is None
    assert cache_sizes()["meter_params"] >= 1

    brand = _brand()  # the brand's default secret changes: the cached parameters must not be used
    store_credentials(brand.default_secret, password="Not-The-Password")
    db.session.commit()
    with pytest.raises(MeterUnreachable, match="refused the association"):
        _read(meter_id, ["energy_import"])

    meter = db.session.get(Meter, meter_id)  # the meter's own secret now wins over the brand's
    meter.secret = store_credentials(None, password=PASSWORD.decode())
    db.session.commit()
    assert _read(meter_id, ["energy_import"])[0].get("error") is None

    meter = db.session.get(Meter, meter_id)  # the same password written again is a new ciphertext: still right
    store_credentials(meter.secret, password=PASSWORD.decode())
    db.session.commit()
    assert _read(meter_id, ["energy_import"])[0].get("error") is None

    db.session.execute(update(Meter).where(Meter.id == meter_id).values(secret_id=None))  # back to the brand's
    db.session.commit()
    with pytest.raises(MeterUnreachable, match="refused the association"):
        _read(meter_id, ["energy_import"])


def test_changed_settings_are_used_by_the_next_read(read_app, sim):
    meter_id = _dial_out_meter(sim, 1)
    assert _read(meter_id, ["clock"])[0].get("error") is None
    db.session.execute(update(Meter).where(Meter.id == meter_id).values(client_address=99))  # an unknown client
    db.session.commit()
    with pytest.raises(MeterUnreachable):
        _read(meter_id, ["clock"])
    db.session.execute(update(Meter).where(Meter.id == meter_id).values(client_address=None))
    db.session.commit()
    assert _read(meter_id, ["clock"])[0].get("error") is None


def test_the_invocation_counter_is_read_from_the_database_every_session(read_app, sim):
    brand = _brand()
    meter_id = _dial_out_meter(sim, 0)
    meter = db.session.get(Meter, meter_id)
    meter.secret = store_credentials(None, password=PASSWORD.decode(), invocation_counter=5)
    db.session.commit()
    secret_id = meter.secret_id
    first = load_meter_view(meter_id).session_params(3.0)[0]
    db.session.execute(update(MeterSecret).where(MeterSecret.id == secret_id).values(invocation_counter=500))
    db.session.execute(update(Meter).where(Meter.id == meter_id).values(auth_level="high_gmac"))
    db.session.commit()
    store_credentials(db.session.get(MeterSecret, secret_id), block_cipher_key="00" * 16,
                      authentication_key="11" * 16, system_title="4845534330303031")
    db.session.commit()
    params = load_meter_view(meter_id).session_params(3.0)[0]
    assert first.auth == "low" and params.auth == "high_gmac"
    assert params.invocation_counter == 500
    db.session.execute(update(MeterSecret).where(MeterSecret.id == secret_id).values(invocation_counter=777))
    db.session.commit()
    again = load_meter_view(meter_id).session_params(3.0)[0]
    assert again.invocation_counter == 777 and again.block_cipher_key == bytes(16)
    assert brand.id == load_meter_view(meter_id).brand.id


def test_a_changed_brand_point_is_used_by_the_next_read(read_app, sim):
    meter_id = _dial_out_meter(sim, 0)
    first = _read(meter_id, ["energy_import"])[0]
    brand = _brand()
    stamp = brand.updated_at

    # Edited in place, as the OBIS points page does: the brand's change stamp moves with its point.
    point = db.session.execute(select(ObisPoint).where(ObisPoint.brand_id == brand.id,
                                                       ObisPoint.key == "energy_import")).scalar_one()
    original = point.id, point.name
    point.name = "Energy imported (renamed)"
    point.key = "energy_in"
    db.session.commit()
    try:
        _renamed_and_added(meter_id, stamp, first)
    finally:  # the plugin brand is shared by the session's tests
        db.session.rollback()
        point = db.session.get(ObisPoint, original[0])
        point.key, point.name = "energy_import", original[1]
        for extra in db.session.execute(select(ObisPoint).where(ObisPoint.key == "voltage_again")).scalars():
            db.session.delete(extra)
        db.session.commit()


def _renamed_and_added(meter_id: int, stamp, first: dict) -> None:
    assert _brand().updated_at != stamp
    renamed = _read(meter_id, ["energy_in"])[0]
    assert renamed["name"] == "Energy imported (renamed)" and renamed.get("error") is None
    assert renamed["value"] >= first["value"]
    with pytest.raises(ServiceError, match="energy_import"):
        read_now(meter_id, ["energy_import"])

    # Added to the brand's collection, then removed by deleting the row.
    brand = _brand()
    brand.points.append(ObisPoint(key="voltage_again", name="Voltage again", obis="1.0.32.7.0.255", class_id=3,
                                  attribute=2, group="Instant", access="r"))
    db.session.commit()
    assert _read(meter_id, ["voltage_again"])[0].get("error") is None
    db.session.delete(db.session.execute(select(ObisPoint).where(ObisPoint.key == "voltage_again")).scalar_one())
    db.session.commit()
    with pytest.raises(ServiceError, match="voltage_again"):
        read_now(meter_id, ["voltage_again"])
