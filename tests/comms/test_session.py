"""DlmsSession against the simulator over real sockets: values, auth levels, interfaces, counters."""

from __future__ import annotations

import datetime as dt
import socket
import time

import pytest

from app.comms.cosem import UTC
from app.comms.framing import SocketStream
from app.comms.session import AuthenticationError, DlmsError, DlmsSession
from simulator import model

ENERGY_IMPORT = "1.0.1.8.0.255"
LOAD_PROFILE = "1.0.99.1.0.255"


def test_clock_register_and_profile_match_the_model(sim_wrapper_lls):
    sim = sim_wrapper_lls
    expected = sim.model_meter(0)
    with sim.session(0) as session:
        before = time.time()
        clock = session.read_clock()
        value, unit = session.read_register(ENERGY_IMPORT)
        after = time.time()
        end = dt.datetime.now(UTC)
        columns, rows = session.read_profile(LOAD_PROFILE, end - dt.timedelta(hours=24), end)
    assert unit == "Wh"
    assert expected.import_wh(before) <= value <= expected.import_wh(after)
    drift_margin = abs(expected.drift_per_day) * (after - sim.ready["start_time"]) / 86400 + 1
    assert abs(clock.timestamp() - before) <= drift_margin
    assert [c["obis"] for c in columns] == ["0.0.1.0.0.255", ENERGY_IMPORT, "1.0.2.8.0.255",
                                            "1.0.32.27.0.255", "1.0.31.27.0.255"]
    assert 95 <= len(rows) <= 97
    for row in rows:
        stamp = row[0].timestamp()
        assert stamp % 900 == 0
        assert row[1] == expected.import_wh(stamp)
        assert row[2] == expected.export_wh(stamp)
        assert row[3:] == list(expected.slot_average(model.slot_of(stamp) - 1))
    # Interval deltas add up to the register difference between the first and last capture.
    deltas = sum(b[1] - a[1] for a, b in zip(rows, rows[1:], strict=False))
    assert deltas == expected.import_wh(rows[-1][0].timestamp()) - expected.import_wh(rows[0][0].timestamp())


def test_profile_by_entry_and_daily_profile(sim_wrapper_lls):
    sim = sim_wrapper_lls
    expected = sim.model_meter(1)
    with sim.session(1) as session:
        _, first_rows = session.read_entries(LOAD_PROFILE, 1, 3)
        _, daily = session.read_profile("1.0.99.2.0.255", dt.datetime.now(UTC) - dt.timedelta(days=3),
                                        dt.datetime.now(UTC))
    install = expected.cfg.install_time
    assert [r[0].timestamp() for r in first_rows] == [install + 900, install + 1800, install + 2700]
    assert len(daily) in (3, 4)
    for row in daily:
        assert row[0].hour == 0 and row[0].minute == 0
        assert row[1] == expected.import_wh(row[0].timestamp())


def test_hdlc_hls_gmac_profile_timestamps_honour_deviation(sim_hdlc_gmac):
    sim = sim_hdlc_gmac
    expected = sim.model_meter(0)
    with sim.session(0) as session:
        zone = session.get("0.0.1.0.0.255", 8, 3)
        end = dt.datetime.now(UTC)
        _, rows = session.read_profile(LOAD_PROFILE, end - dt.timedelta(hours=2), end)
        _, daily = session.read_profile("1.0.99.2.0.255", end - dt.timedelta(days=2), end)
        value, _ = session.read_register(ENERGY_IMPORT)
    assert zone == -60  # UTC+01:00 in DLMS deviation convention
    assert 7 <= len(rows) <= 9
    assert all(r[0].tzinfo is not None and r[1] == expected.import_wh(r[0].timestamp()) for r in rows)
    # Local midnight at UTC+01:00 is 23:00 UTC.
    assert all(r[0].astimezone(UTC).hour == 23 for r in daily)
    assert value >= rows[-1][1]


@pytest.mark.parametrize("fixture", ["sim_wrapper_lls", "sim_hdlc_gmac", "sim_wrapper_gmac", "sim_hdlc_none"])
def test_each_auth_level_and_interface_reads_serial(request, fixture):
    sim = request.getfixturevalue(fixture)
    with sim.session(0) as session:
        assert session.get("0.0.96.1.0.255", 1, 2) == sim.serial(0).encode()
    with sim.session(0, client_address=16, auth="none") as public:
        assert public.get("0.0.42.0.0.255", 1, 2) == sim.serial(0).encode()
        with pytest.raises(DlmsError) as denied:
            public.set("0.0.17.0.0.255", 71, 3, 1234, "uint32")
        assert denied.value.code == 3 and "access denied" in str(denied.value)


def test_wrong_password_fails_cleanly(sim_wrapper_lls):
    started = time.monotonic()
    with pytest.raises(AuthenticationError) as failure:
        with sim_wrapper_lls.session(2, password=b"not-it"):
            pass
    assert "authentication failure" in str(failure.value)
    assert time.monotonic() - started < 3


@pytest.mark.parametrize("fixture", ["sim_hdlc_gmac", "sim_wrapper_gmac"])
def test_wrong_keys_fail_cleanly(request, fixture):
    sim = request.getfixturevalue(fixture)
    with pytest.raises(AuthenticationError):
        with sim.session(1, authentication_key=bytes(16), block_cipher_key=bytes(range(16))):
            pass


def test_invocation_counter_only_moves_forward(sim_wrapper_gmac):
    sim = sim_wrapper_gmac
    seen: list[int] = []
    with sim.session(2, on_invocation_counter=seen.append, invocation_counter=10) as session:
        session.read_clock()
        first_session_last = session.invocation_counter
    assert seen == sorted(seen) and seen[0] >= 10
    # A stale stored counter is corrected from the meter's 0.0.43.1.0.255 before it is used.
    seen_again: list[int] = []
    with sim.session(2, on_invocation_counter=seen_again.append, invocation_counter=10) as session:
        session.read_clock()
    assert seen_again[0] >= first_session_last  # next unused: above every counter already sent
    assert seen_again == sorted(seen_again)
    # Without resynchronisation the meter refuses a replayed counter.
    with pytest.raises(AuthenticationError):
        with sim.session(2, invocation_counter=10, sync_invocation_counter=False):
            pass


def test_relay_disconnect_and_reconnect(sim_wrapper_lls):
    sim = sim_wrapper_lls
    with sim.session(3) as session:
        assert session.action("0.0.96.3.10.255", 70, 1) == 0
        assert session.get("0.0.96.3.10.255", 70, 2) is False
        assert session.get("0.0.96.3.10.255", 70, 3) == 0
        assert session.read_register("1.0.1.7.0.255")[0] == 0
        assert session.action("0.0.96.3.10.255", 70, 2) == 0
        assert session.get("0.0.96.3.10.255", 70, 2) is True
        assert session.get("0.0.96.3.10.255", 70, 3) == 1
        _, log = session.read_entries("0.0.99.98.0.255")
    assert [row[1] for row in log[-2:]] == [20, 21]


def test_token_accepted_and_rejected(sim_wrapper_lls):
    sim = sim_wrapper_lls
    good = model.make_token(1234, 42)
    bad_check = good[:19] + str((int(good[19]) + 1) % 10)
    with sim.session(4) as session:
        before = session.get("0.0.19.10.0.255", 112, 2)
        assert session.action("0.0.19.40.0.255", 115, 1, good.encode(), "octet_string") == 0
        assert session.get("0.0.19.40.0.255", 115, 6)[0] == 3
        after = session.get("0.0.19.10.0.255", 112, 2)
        assert 1234 - 5 <= after - before <= 1234
        results = {}
        for name, token in (("reused", good), ("check", bad_check), ("format", "12345")):
            code = session.action("0.0.19.40.0.255", 115, 1, token.encode(), "octet_string")
            results[name] = (code, session.get("0.0.19.40.0.255", 115, 6)[0])
    assert results == {"reused": (250, 6), "check": (250, 5), "format": (250, 4)}


def test_set_clock_and_writable_parameter(sim_wrapper_lls):
    sim = sim_wrapper_lls
    target = dt.datetime.now(UTC) - dt.timedelta(hours=3)
    with sim.session(5) as session:
        assert session.set_clock(target) == 0
        assert abs((session.read_clock() - target).total_seconds()) < 2
        assert session.set("1.0.0.8.0.255", 1, 2, 1800, "uint32") == 0
        assert session.get("1.0.0.8.0.255", 1, 2) == 1800
        with pytest.raises(DlmsError) as undefined:
            session.get("0.0.99.99.99.255", 1, 2)
        assert undefined.value.code == 4 and "object undefined" in str(undefined.value)
        session.set_clock(dt.datetime.now(UTC))
    assert sim.get(f"/meters/{sim.serial(5)}")["events"][-1]["type"] == "clock_set"


def test_image_transfer_resumes_after_a_dropped_connection(sim_hdlc_gmac):
    sim = sim_hdlc_gmac
    image_id = b"HESSIM-2.0.0"
    with sim.session(3) as session:
        block_size = session.get("0.0.44.0.0.255", 18, 2)
        image = bytes(range(256)) * 4 + b"tail"
        blocks = [image[i:i + block_size] for i in range(0, len(image), block_size)]
        assert session.action("0.0.44.0.0.255", 18, 1, [image_id, len(image)]) == 0
    # Send half the blocks, then drop the TCP connection without releasing.
    params = sim.params()
    sock = socket.create_connection(("127.0.0.1", sim.port(3)))
    session = DlmsSession(SocketStream(sock, params.interface, 5), params)
    session.associate()
    from app.comms import gx

    for number, block in enumerate(blocks[:4]):
        assert session.action("0.0.44.0.0.255", 18, 2, gx.structure(gx.Typed("uint32", number), block)) == 0
    sock.close()
    with sim.session(3) as session:
        first_missing = session.get("0.0.44.0.0.255", 18, 4)
        assert first_missing == 4
        assert session.action("0.0.44.0.0.255", 18, 3) != 0  # verify fails while blocks are missing
        assert session.action("0.0.44.0.0.255", 18, 1, [image_id, len(image)]) == 0  # same image: keeps blocks
        for number in range(session.get("0.0.44.0.0.255", 18, 4), len(blocks)):
            block = gx.structure(gx.Typed("uint32", number), blocks[number])
            assert session.action("0.0.44.0.0.255", 18, 2, block) == 0
        assert session.get("0.0.44.0.0.255", 18, 3) == "1" * len(blocks)
        assert session.action("0.0.44.0.0.255", 18, 3) == 0
        assert session.action("0.0.44.0.0.255", 18, 4) == 0
        assert session.get("0.0.44.0.0.255", 18, 6) == 6
        assert session.get("1.0.0.2.0.255", 1, 2) == image_id


def test_meter_that_ignores_release_is_tolerated(sim_factory):
    sim = sim_factory(meters=1)
    with sim.session(0) as session:
        sim.post(f"/meters/{sim.serial(0)}/fault", {"kind": "offline", "seconds": 30})
        started = time.monotonic()
    assert time.monotonic() - started < 5
    assert session.associated is False
