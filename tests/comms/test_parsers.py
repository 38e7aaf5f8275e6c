"""Pure parsers: heartbeats, pushes, OBIS codes, COSEM date-times, A-XDR (with hypothesis fuzzing).

Pushes are built with the simulator's own A-XDR and cipher code and decoded by the HES through gurux-dlms:
two implementations that must agree value for value."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.comms import gx
from app.comms.cosem import (
    UTC,
    class_name,
    decode_datetime,
    encode_datetime,
    normalise_obis,
    to_jsonable,
)
from app.comms.framing import FrameError, wrapper_frame
from app.comms.heartbeat import heartbeat_frame, parse_heartbeat
from app.comms.push import PushError, PushKeys, decode_data_notification, decode_push, sender_of
from simulator import axdr
from simulator.dlms_server import data_notification
from simulator.security import SC_AUTH, SC_AUTH_ENC, SC_ENC, wrap_general_glo


def test_heartbeat_formats():
    beat = parse_heartbeat(heartbeat_frame("SIM00000042"))
    assert (beat.meter_number, beat.kind) == ("SIM00000042", "register")
    assert parse_heartbeat(b"00012345678\x05\x01\r\n", first=False).meter_number == "00012345678"
    assert parse_heartbeat(b"METER-77") .meter_number == "METER-77"
    assert parse_heartbeat(wrapper_frame(1, 1, b"\x60\x1d\xa1\x09")) is None  # an AARQ, not a heartbeat
    assert parse_heartbeat(b"ab") is None
    assert parse_heartbeat(b"\x7e\xa0\x07\x03\x21\x93\x0f\x01\x7e") is None


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=120), st.booleans())
def test_heartbeat_parser_never_raises(data, first):
    result = parse_heartbeat(data, first)
    assert result is None or 4 <= len(result.meter_number) <= 32


def test_push_with_and_without_object_list():
    when = encode_datetime(dt.datetime(2024, 5, 1, 10, 0, tzinfo=UTC), -120)
    body = axdr.structure(b"SIM1", when, axdr.Typed(axdr.UINT16, 11), axdr.Typed(axdr.UINT32, 5000))
    frame = wrapper_frame(1, 1, data_notification(7, when, body))
    plain = decode_push(frame)
    assert plain.timestamp == dt.datetime(2024, 5, 1, 10, 0, tzinfo=UTC) and not plain.authenticated
    assert plain.values == [b"SIM1", when, 11, 5000] and plain.objects == []
    objects = [(1, "0-0:96.1.0", 2), (8, "0.0.1.0.0.255", 2), (1, "0.0.96.11.0.255", 2), (3, "1.0.1.8.0.255", 2)]
    paired = decode_push(frame, objects)
    assert paired.objects[1] == {"class_id": 8, "obis": "0.0.1.0.0.255", "attribute": 2,
                                 "value": dt.datetime(2024, 5, 1, 10, 0, tzinfo=UTC)}
    with pytest.raises(PushError, match="object list"):
        decode_push(frame, objects[:2])
    key, auth = bytes(range(16)), bytes(range(16, 32))
    for sc, tag in ((SC_AUTH_ENC, 0xDB), (SC_AUTH, 0xDB), (SC_AUTH_ENC, 0xDC)):
        ciphered = wrap_general_glo(sc, 9, b"SIMTITLE", key, auth, data_notification(8, None, 5), tag=tag)
        assert sender_of(ciphered).system_title == b"SIMTITLE"
        opened = decode_data_notification(ciphered, keys=PushKeys(key, auth))
        assert (opened.values, opened.timestamp, opened.authenticated) == ([5], None, True)
        assert (opened.system_title, opened.invocation_counter) == (b"SIMTITLE", 9)


def test_ciphered_push_is_authenticated_or_refused():
    """gurux-dlms 1.0.203 does not check the GCM tag of authenticated-encrypted APDUs; app.comms.gx does."""
    key, auth = bytes(range(16)), bytes(range(16, 32))
    apdu = data_notification(8, None, axdr.structure(b"SIM1", axdr.Typed(axdr.UINT32, 5000)))
    ciphered = wrap_general_glo(SC_AUTH_ENC, 9, b"SIMTITLE", key, auth, apdu)
    keys = PushKeys(key, auth)
    assert decode_data_notification(ciphered, keys=keys).values == [b"SIM1", 5000]
    for position in (11, 15, 20, len(ciphered) - 1):  # security control, counter, ciphertext, tag
        tampered = bytearray(ciphered)
        tampered[position] ^= 0x01
        with pytest.raises(PushError):
            decode_data_notification(bytes(tampered), keys=keys)
    with pytest.raises(PushError, match="tag mismatch"):
        decode_data_notification(ciphered, keys=PushKeys(key, bytes(16)))  # wrong authentication key
    with pytest.raises(PushError, match="unauthenticated"):
        decode_data_notification(wrap_general_glo(SC_ENC, 9, b"SIMTITLE", key, auth, apdu), keys=keys)
    with pytest.raises(PushError, match="no block cipher"):
        decode_data_notification(ciphered)


@pytest.mark.parametrize("value,datatype", [(5, "uint32"), (-5, "int16"), (-70000, "int32"), (3, "enum"),
                                            (b"abc", "octet_string"), ("abc", "visible_string"), (True, "boolean"),
                                            ("0101", "bit_string"), (1.5, "float64"), (2**40, "uint64"),
                                            (-(2**40), "int64"), (200, "uint8"), (-3, "int8"), (None, "null")])
def test_gurux_encoding_equals_the_simulators(value, datatype):
    assert gx.encode(value, datatype) == axdr.encode(axdr.Typed(axdr.TYPE_BY_NAME[datatype], value))
    nested = gx.structure(gx.Typed(datatype, value), gx.array([b"x", 7]))
    assert gx.encode(nested) == axdr.encode(axdr.structure(axdr.Typed(axdr.TYPE_BY_NAME[datatype], value),
                                                           axdr.array([b"x", 7])))


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200))
def test_push_decoder_only_raises_documented_errors(data):
    for candidate in (data, b"\x0f" + data, wrapper_frame(1, 1, b"\x0f" + data[:100]), b"\xdb\x08" + data):
        try:
            decode_push(candidate, keys=PushKeys(bytes(16), bytes(16)))
        except (FrameError, PushError):
            pass
        try:
            decode_data_notification(candidate, keys=PushKeys(bytes(16), bytes(16)))
        except PushError:
            pass


@pytest.mark.parametrize("text", ["1.0.1.8.0.255", "1-0:1.8.0.255", "1-0:1.8.0", "0100010800FF", " 1.0.1.8.0 "])
def test_obis_forms(text):
    assert normalise_obis(text) == "1.0.1.8.0.255"


@pytest.mark.parametrize("text,reason", [("1.0.1.8.0.256", "above 255"), ("", "empty"), ("1.8.0", "not an OBIS"),
                                         ("x-0:1.8.0", "not an OBIS")])
def test_obis_errors_explain(text, reason):
    with pytest.raises(ValueError, match=reason):
        normalise_obis(text)


def test_class_names_and_datetime_deviation():
    assert class_name(70) == "disconnect_control" and class_name(7) == "profile_generic"
    local = bytes([0x07, 0xE8, 3, 1, 5, 13, 0, 0, 0]) + (-60 & 0xFFFF).to_bytes(2, "big") + b"\x00"
    assert decode_datetime(local) == dt.datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
    assert decode_datetime(b"\xff" * 12) is None
    assert to_jsonable([b"ABC", b"\x00\x01", dt.datetime(2024, 1, 1, tzinfo=UTC)]) == [
        "ABC", "0001", "2024-01-01T00:00:00+00:00"]


@given(st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2090, 1, 1)),
       st.integers(min_value=-720, max_value=720))
def test_datetime_round_trip(when, deviation):
    when = when.replace(microsecond=when.microsecond // 10000 * 10000, tzinfo=UTC)
    assert decode_datetime(encode_datetime(when, deviation)) == when


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=100))
def test_simulator_axdr_decoder_only_raises_axdr_error(data):
    try:
        axdr.decode_all(data)
    except axdr.AxdrError:
        pass


def test_gurux_values_convert():
    from gurux_dlms import GXBitString, GXDateTime, GXStructure
    from gurux_dlms.enums import Unit

    from app.comms.cosem import to_python

    structure = GXStructure()
    structure.extend([GXDateTime(dt.datetime(2024, 1, 2, tzinfo=UTC)), GXBitString("101"), Unit.VOLTAGE])
    assert to_python(structure) == [dt.datetime(2024, 1, 2, tzinfo=UTC), "101", 35]
