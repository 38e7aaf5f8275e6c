"""The DLMS side: ciphered APDUs from the network only raise documented errors, a tampered one is refused, and the
HLS invocation counter only ever moves forward (a lower one would let a meter accept a replayed frame).

The HES deciphers through gurux-dlms, whose tag check app.comms.gx supplies (gurux 1.0.203 skips it for
authenticated encryption); the ciphered APDUs here are built by the simulator's own cipher code.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.comms.push import PushError, PushKeys, decode_data_notification
from app.extensions import db
from app.models import Meter, MeterSecret
from app.services.secrets import advance_invocation_counter, store_credentials
from simulator import security

KEY = bytes(range(16))
TITLE = b"HESCLIEN"
KEYS = PushKeys(KEY, KEY)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([security.GENERAL_GLO, security.GENERAL_DED]), st.binary(max_size=120))
def test_ciphered_push_decoder_only_raises_push_error(tag, data):
    try:
        decode_data_notification(bytes([tag]) + data, keys=KEYS)
    except PushError:
        pass


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=1, max_size=60), st.integers(0, 2**32 - 1), st.integers(0, 10_000))
def test_any_flipped_bit_of_an_authenticated_push_is_refused(body, counter, flip):
    apdu = b"\x0f\x00\x00\x00\x01\x00\x09" + bytes([len(body)]) + body
    frame = bytearray(security.wrap_general_glo(security.SC_AUTH_ENC, counter, TITLE, KEY, KEY, apdu))
    opened = decode_data_notification(bytes(frame), keys=KEYS)
    assert (opened.system_title, opened.invocation_counter, opened.values) == (TITLE, counter, [body])
    position = 11 + flip % (len(frame) - 11)  # anywhere after tag, title and length: SC, counter, ciphertext, tag
    frame[position] ^= 1 << (flip % 8)
    with pytest.raises(PushError):
        decode_data_notification(bytes(frame), keys=KEYS)


@pytest.fixture
def secret_id(app, two_customers):
    with app.app_context():
        meter = db.session.get(Meter, two_customers["A"]["meter_id"])
        meter.secret = store_credentials(None, block_cipher_key=KEY.hex(), authentication_key=KEY.hex(),
                                         invocation_counter=100)
        db.session.commit()
        return meter.secret.id


def _counter(secret_id: int) -> int:
    db.session.expire_all()
    return db.session.get(MeterSecret, secret_id).invocation_counter


def test_encryption_only_apdu_is_refused():
    """A push ciphered without authentication could be altered in transit: the HES does not open it."""
    frame = security.wrap_general_glo(security.SC_ENC, 7, TITLE, KEY, KEY, b"\x0f\x00\x00\x00\x01\x00\x00")
    with pytest.raises(PushError, match="unauthenticated"):
        decode_data_notification(frame, keys=KEYS)


def test_invocation_counter_only_moves_forward(app, secret_id):
    with app.app_context():
        advance_invocation_counter(secret_id, 150)
        assert _counter(secret_id) == 150
        advance_invocation_counter(secret_id, 120)  # a slower concurrent session finishing late
        assert _counter(secret_id) == 150
        store_credentials(db.session.get(MeterSecret, secret_id), invocation_counter=5)  # an old value typed in
        db.session.commit()
        assert _counter(secret_id) == 150


def test_operator_cannot_rewind_the_counter_through_the_api(app, client, operator_headers, two_customers, secret_id):
    meter_id = two_customers["A"]["meter_id"]
    resp = client.put(f"/api/v1/meter/{meter_id}/credentials", json={"invocation_counter": 0}, headers=operator_headers)
    assert resp.status_code == 200 and resp.json["invocation_counter"] == 100
