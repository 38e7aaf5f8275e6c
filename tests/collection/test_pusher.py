"""The data pusher: signed webhook deliveries, retried after a failure, with a stable idempotency key."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from sqlalchemy import select, update

from app.extensions import db
from app.models import Delivery, Meter, Subscription
from app.services.ingest import Value
from app.services.outbox import deliver_due, enqueue_readings
from app.services.secrets import encrypt

UTC = dt.UTC
SECRET = b"webhook-signing-secret-123"


class Receiver(BaseHTTPRequestHandler):
    """Answers 500 to the first request, 200 afterwards; keeps what it got."""

    received: list = []

    def do_POST(self):  # noqa: N802  (http.server's naming)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.received.append((dict(self.headers), body))
        self.send_response(500 if len(Receiver.received) == 1 else 200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    Receiver.received = []
    server = HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()


def test_webhook_is_signed_and_retried_after_a_500(app, meter_id, receiver):
    with app.app_context():
        db.session.add(Subscription(name="mdm", kind="webhook", url=receiver, secret_enc=encrypt(SECRET)))
        db.session.commit()
        meter = db.session.get(Meter, meter_id)
        ts = dt.datetime(2026, 4, 1, 0, 15, tzinfo=UTC)
        assert enqueue_readings(meter, [Value(meter_id, "1.0.1.8.0.255", ts, 1234.0)], "load_profile") == 1
        db.session.commit()
        assert deliver_due() == {"delivered": 0, "retrying": 1, "failed": 0}
        delivery = db.session.execute(select(Delivery)).scalar_one()
        assert delivery.state == "pending" and delivery.attempts == 1 and "HTTP 500" in delivery.last_error
        assert deliver_due() == {"delivered": 0, "retrying": 0, "failed": 0}  # backing off: not due yet
        db.session.execute(update(Delivery).values(next_attempt_at=dt.datetime.now(UTC)))
        db.session.commit()
        assert deliver_due() == {"delivered": 1, "retrying": 0, "failed": 0}
        assert db.session.execute(select(Delivery.state)).scalar_one() == "delivered"
    assert len(Receiver.received) == 2
    keys = set()
    for headers, body in Receiver.received:
        expected = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
        assert headers["X-HES-Signature"] == expected
        keys.add(headers["X-HES-Idempotency-Key"])
        payload = json.loads(body)
        assert payload["meter"] == "ING00000001" and payload["readings"][0]["value"] == 1234.0
        assert payload["readings"][0]["ts"] == ts.isoformat()
    assert len(keys) == 1  # the retry carries the same key, so the receiver can drop the duplicate


def test_disabled_or_uninterested_subscriptions_get_nothing(app, meter_id, receiver):
    with app.app_context():
        db.session.add_all([Subscription(name="off", kind="webhook", url=receiver, enabled=False),
                            Subscription(name="events only", kind="webhook", url=receiver, readings=False)])
        db.session.commit()
        meter = db.session.get(Meter, meter_id)
        value = Value(meter_id, "1.0.1.8.0.255", dt.datetime(2026, 4, 1, tzinfo=UTC), 1.0)
        assert enqueue_readings(meter, [value], "load_profile") == 0
