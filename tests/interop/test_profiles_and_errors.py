"""Profile reads that adapt to imperfect meters (range -> entry, remembered), failures that say why, long
profiles in many blocks, DLMS errors and wrong framing in the standard's words — all through the HES API."""

from __future__ import annotations

import datetime as dt
import sqlite3

import pytest

from tests.support.live import add_dial_out_meter

UTC = dt.UTC
LOAD_PROFILE = "1.0.99.1.0.255"
IMPORT = "1.0.1.8.0.255"


def dial_out_meter(hes, sim, prefix: str, index: int = 0, **fields) -> int:
    """Register a listening simulator meter (dial-out) with a SIM pointing at its port."""
    return add_dial_out_meter(hes, sim, index, f"{prefix}-SIM{index}", **fields)


def read_profile(hes, meter_id: int, hours: float) -> dict:
    end = dt.datetime.now(UTC).replace(second=0, microsecond=0)
    resp = hes.api("POST", f"/meter/{meter_id}/read", json={
        "points": ["load_profile"], "from": (end - dt.timedelta(hours=hours)).isoformat(), "to": end.isoformat()})
    assert resp.status_code == 200, resp.text
    return resp.json()["results"][0] | {"window": (end - dt.timedelta(hours=hours), end)}


def stored_import(hes, meter_id: int) -> dict[float, float]:
    with sqlite3.connect(hes.data_dir / "hes.db") as conn:
        rows = conn.execute("SELECT r.ts, r.value FROM reading r JOIN channel c ON c.id = r.channel_id "
                            "WHERE r.meter_id = ? AND c.obis = ?", (meter_id, IMPORT)).fetchall()
    return {dt.datetime.fromisoformat(ts).replace(tzinfo=UTC).timestamp(): value for ts, value in rows}


@pytest.mark.parametrize("behaviour", ["range_empty", "range_all", "range_unsupported"])
def test_meter_with_a_broken_range_read_is_read_by_entry(hes, simulators, behaviour):
    prefix = {"range_empty": "RGE", "range_all": "RGA", "range_unsupported": "RGU"}[behaviour]
    sim = simulators(meters=1, history_days=2, first_serial=1, extra=["--prefix", prefix, "--behaviour", behaviour])
    meter_id = dial_out_meter(hes, sim, prefix)
    truth = sim.model_meter(0)
    read = read_profile(hes, meter_id, 6)
    assert "error" not in read, read
    assert read["method"] == "entry" and read["notes"]
    start, end = read["window"]
    stamps = [dt.datetime.fromisoformat(row[0]) for row in read["rows"]]
    assert len(stamps) in (24, 25) and all(start <= ts <= end for ts in stamps)
    for row in read["rows"]:
        assert row[1] == truth.import_wh(dt.datetime.fromisoformat(row[0]).timestamp())
    # The method is remembered: the next read goes by entry at once (no note about a failed range read).
    again = read_profile(hes, meter_id, 1)
    assert again["method"] == "entry" and again["notes"] == [] and len(again["rows"]) in (4, 5)


def test_by_entry_only_meter_is_collected_completely(hes, simulators):
    sim = simulators(meters=1, history_days=2, first_serial=1, extra=["--prefix", "RGC", "--behaviour", "range_empty"])
    meter_id = dial_out_meter(hes, sim, "RGC")
    resp = hes.api("POST", f"/meter/{meter_id}/collect", json={"kind": "load_profile"})
    assert resp.status_code == 200, resp.text
    truth = sim.model_meter(0)
    now = dt.datetime.now(UTC).timestamp()
    expected = [t for t in truth.profile_times(bytes([1, 0, 99, 1, 0, 255]), now)]
    stored = stored_import(hes, meter_id)
    assert sorted(stored) == expected  # every interval the meter recorded: none missing, none extra
    assert all(stored[t] == truth.import_wh(t) for t in expected)


def test_empty_answer_from_a_meter_holding_entries_is_a_failure_with_a_reason(hes, simulators):
    sim = simulators(meters=1, history_days=1, first_serial=1,
                     extra=["--prefix", "RGX", "--behaviour", "range_empty", "--behaviour", "entry_unsupported"])
    meter_id = dial_out_meter(hes, sim, "RGX")
    read = read_profile(hes, meter_id, 3)
    assert read["value"] is None and "rows" not in read
    assert "holds" in read["error"] and "entries" in read["error"] and "entry read refused" in read["error"]
    collect = hes.api("POST", f"/meter/{meter_id}/collect", json={"kind": "load_profile"})
    assert collect.status_code == 502 and "holds" in collect.json()["message"]


def test_service_not_supported_is_said_in_words(hes, simulators):
    sim = simulators(meters=1, history_days=1, first_serial=1,
                     extra=["--prefix", "EXC", "--behaviour", "selective_access_unsupported"])
    meter_id = dial_out_meter(hes, sim, "EXC")
    read = read_profile(hes, meter_id, 2)
    assert "does not support this service (exception-response: service unknown, service not supported)" in read["error"]
    assert "other reason" not in read["error"]


@pytest.mark.parametrize("behaviour,interface,auth", [("small_pdu", "wrapper", "low"),
                                                     ("general_block_transfer", "wrapper", "low"),
                                                     ("general_block_transfer", "hdlc", "high_gmac")])
def test_long_profile_in_many_blocks(hes, simulators, behaviour, interface, auth):
    """Block transfer with get (small_pdu) or general block transfer where the meter offers it (GBT blocks of
    256 bytes; over HDLC and in a ciphered association too)."""
    prefix = {"small_pdu": "BLK", "general_block_transfer": "GBT"}[behaviour] + interface[0].upper()
    sim = simulators(meters=1, history_days=3, first_serial=1, interface=interface, auth=auth,
                     extra=["--prefix", prefix, "--behaviour", behaviour])
    meter_id = dial_out_meter(hes, sim, prefix, interface=interface, auth_level=auth)
    if auth == "high_gmac":
        from tests.interop.test_authentication import SECRETS

        assert hes.api("PUT", f"/meter/{meter_id}/credentials", json=SECRETS).status_code == 200
    read = read_profile(hes, meter_id, 48)
    assert "error" not in read, read
    assert read["method"] == "range" and len(read["rows"]) in (192, 193)
    truth = sim.model_meter(0)
    assert all(row[1] == truth.import_wh(dt.datetime.fromisoformat(row[0]).timestamp()) for row in read["rows"])
    gbt_blocks = sim.get(f"/meters/{sim.serial(0)}")["gbt_blocks_sent"]
    if behaviour == "general_block_transfer":
        assert gbt_blocks >= 20  # ~6 kB of rows in 244-byte blocks: the HES took general block transfer
    else:
        assert gbt_blocks == 0  # a meter that does not offer GBT is read with get-response-with-datablock


@pytest.mark.parametrize("meter_framing,hes_framing,behaviour", [
    ("hdlc", "wrapper", None), ("wrapper", "hdlc", None), ("wrapper", "wrapper", "hdlc_on_wrapper")])
def test_wrong_framing_is_recognised_and_said(hes, simulators, meter_framing, hes_framing, behaviour):
    prefix = f"WF{meter_framing[0]}{hes_framing[0]}".upper() + ("B" if behaviour else "")
    sim = simulators(meters=1, interface=meter_framing, first_serial=1,
                     extra=["--prefix", prefix] + (["--behaviour", behaviour] if behaviour else []))
    meter_id = dial_out_meter(hes, sim, prefix, interface=hes_framing)
    resp = hes.api("POST", f"/meter/{meter_id}/read", json={"points": ["energy_import"]})
    assert resp.status_code == 503, resp.text
    message = resp.json()["message"]
    seen = "wrapper" if hes_framing == "hdlc" else "hdlc"
    assert f"answered in {seen.upper()} framing" in message and f"set the meter's interface to {seen}" in message


def test_confirmed_service_error_in_a_refused_aare_is_said_in_words(hes, simulators):
    """gurux reports only 'no reason given' for this AARE; the HES reads the error its user-information carries."""
    sim = simulators(meters=1, first_serial=1, extra=["--prefix", "CSE", "--behaviour", "initiate_refused"])
    meter_id = dial_out_meter(hes, sim, "CSE")
    resp = hes.api("POST", f"/meter/{meter_id}/read", json={"points": ["energy_import"]})
    assert resp.status_code == 503, resp.text
    message = resp.json()["message"]
    assert "refused the association" in message and "association rejected permanent" in message
    assert ("the meter refused the association's initiate request (confirmed-service-error: initiate-error, "
            "initiate: incompatible conformance)") in message


@pytest.mark.parametrize("interface", ["wrapper", "hdlc"])
def test_confirmed_service_error_of_a_service_in_words(interface):
    """A GET answered with a confirmed-service-error (read, access: object access violated), which gurux
    cannot represent, reaches the caller in the standard's words (simulator engine in-process)."""
    from app.comms.framing import build_hdlc, parse_hdlc, parse_wrapper, wrapper_frame
    from app.comms.session import DlmsError, DlmsSession, SessionParams
    from simulator.dlms_server import DlmsServerConnection
    from simulator.fleet import FleetConfig
    from simulator.meter import Meter
    from tests.support.simulator import PASSWORD

    server = DlmsServerConnection(Meter("CSE00000002", 0, 1, FleetConfig(history_days=1, password=PASSWORD)),
                                  interface)
    error = b"\x0e\x05\x05\x02"

    class Stream:
        timeout = 5.0

        def __init__(self):
            self.interface, self.replies, self.refuse = interface, [], False

        def send(self, frame: bytes) -> None:
            replies = server.handle_frame(bytes(frame))
            if self.refuse:  # the meter's own reply frame, its APDU replaced by the error
                if interface == "wrapper":
                    reply = parse_wrapper(replies[0])
                    replies = [wrapper_frame(reply.source, reply.destination, error)]
                else:
                    reply = parse_hdlc(replies[0])
                    replies = [build_hdlc(reply.destination, reply.destination_size, reply.source,
                                          reply.source_size, reply.control, b"\xe6\xe7\x00" + error)]
            self.replies += replies

        def recv_frame(self, timeout=None):
            return self.replies.pop(0)

    stream = Stream()
    session = DlmsSession(stream, SessionParams(interface=interface, auth="low", password=PASSWORD, client_address=1))
    session.associate()
    stream.refuse = True
    with pytest.raises(DlmsError) as refused:
        session.get("1.0.1.8.0.255", 3, 2)
    assert refused.value.kind == "confirmed-service-error" and refused.value.code == 2
    assert refused.value.message == ("the meter refused the read service "
                                     "(confirmed-service-error: read, access: object access violated)")
