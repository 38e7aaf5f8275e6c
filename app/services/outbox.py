"""The data pusher: readings and events delivered as JSON to subscribers' webhooks (HMAC-signed)
and MQTT topics, at least once, through an outbox written in the same transaction as the data."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import uuid
from urllib.parse import urlparse

import requests
from sqlalchemy import insert, select, update

from app.extensions import db
from app.models import Delivery, Meter, Subscription
from app.models.types import UTC
from app.services.secrets import decrypt

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 12
BACKOFF_SECONDS = 5
MAX_BACKOFF_SECONDS = 3600
SIGNATURE_HEADER = "X-HES-Signature"


def _subscribers(topic: str) -> list[int]:
    column = Subscription.readings if topic == "readings" else Subscription.events
    return list(db.session.execute(select(Subscription.id).where(Subscription.enabled.is_(True),
                                                                 column.is_(True))).scalars())


def _enqueue(topic: str, payload: dict) -> int:
    targets = _subscribers(topic)
    if not targets:
        return 0
    now = dt.datetime.now(UTC)
    db.session.execute(insert(Delivery), [
        {"subscription_id": sid, "topic": topic, "idempotency_key": uuid.uuid4().hex, "payload": payload,
         "state": "pending", "attempts": 0, "created_at": now, "next_attempt_at": now} for sid in targets])
    return len(targets)


def enqueue_readings(meter: Meter, values: list, source: str) -> int:
    """Queue a batch of one meter's stored readings for every readings subscriber (commit with the data)."""
    payload = {"type": "readings", "meter": meter.number, "meter_id": meter.id, "source": source,
               "readings": [{"obis": v.obis, "ts": v.ts.astimezone(UTC).isoformat(), "value": v.value,
                             "quality": int(v.quality)} for v in values]}
    return _enqueue("readings", payload)


def enqueue_events(meter: Meter, events: list, *, commit: bool = True) -> int:
    """Queue new events for every events subscriber (committing unless the caller does)."""
    payload = {"type": "events", "meter": meter.number, "meter_id": meter.id,
               "events": [{"id": e.id, "ts": e.ts.isoformat(), "type": e.event_type, "code": e.code,
                           "severity": e.severity.value, "source": e.source} for e in events]}
    count = _enqueue("events", payload)
    if count and commit:
        db.session.commit()
    return count


def sign(secret: bytes, body: bytes) -> str:
    """The signature header value: ``sha256=<hex HMAC of the body>``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def _send_webhook(sub: Subscription, delivery: Delivery, body: bytes) -> None:
    headers = {"Content-Type": "application/json", "X-HES-Idempotency-Key": delivery.idempotency_key,
               "X-HES-Topic": delivery.topic, "User-Agent": "HES-Core"}
    secret = decrypt(sub.secret_enc)
    if secret:
        headers[SIGNATURE_HEADER] = sign(secret, body)
    resp = requests.post(sub.url, data=body, headers=headers, timeout=10)
    if resp.status_code >= 300:
        raise RuntimeError(f"HTTP {resp.status_code}: {resp.text[:200]}")


def _send_mqtt(sub: Subscription, delivery: Delivery, body: bytes) -> None:
    import paho.mqtt.publish as publish

    url = urlparse(sub.url)
    topic = (url.path or "/hes").lstrip("/") + "/" + delivery.topic
    auth = {"username": url.username, "password": url.password} if url.username else None
    publish.single(topic, payload=body, qos=1, hostname=url.hostname or "127.0.0.1", port=url.port or 1883,
                   auth=auth, client_id=f"hes-{delivery.idempotency_key[:12]}")


def deliver_due(limit: int = 200) -> dict:
    """Send pending deliveries whose time has come; failures back off exponentially."""
    now = dt.datetime.now(UTC)
    due = db.session.execute(select(Delivery).where(Delivery.state == "pending", Delivery.next_attempt_at <= now)
                             .order_by(Delivery.id).limit(limit)).scalars().all()
    counts = {"delivered": 0, "retrying": 0, "failed": 0}
    for delivery in due:
        sub = delivery.subscription
        body = json.dumps({"idempotency_key": delivery.idempotency_key, **delivery.payload},
                          separators=(",", ":")).encode()
        try:
            (_send_mqtt if sub.kind == "mqtt" else _send_webhook)(sub, delivery, body)
        except Exception as exc:  # any failure of the target is recorded and retried; collection goes on
            delivery.attempts += 1
            delivery.last_error = str(exc)[:500]
            if delivery.attempts >= MAX_ATTEMPTS:
                delivery.state = "failed"
                counts["failed"] += 1
            else:
                wait = min(BACKOFF_SECONDS * 2 ** (delivery.attempts - 1), MAX_BACKOFF_SECONDS)
                delivery.next_attempt_at = dt.datetime.now(UTC) + dt.timedelta(seconds=wait)
                counts["retrying"] += 1
        else:
            delivery.attempts += 1
            delivery.state, delivery.delivered_at, delivery.last_error = "delivered", dt.datetime.now(UTC), None
            counts["delivered"] += 1
        db.session.commit()
    return counts


def retry_now(subscription_id: int) -> int:
    """Make a subscription's pending and failed deliveries due again (after fixing the target)."""
    result = db.session.execute(update(Delivery).where(Delivery.subscription_id == subscription_id,
                                                       Delivery.state.in_(["pending", "failed"]))
                                .values(state="pending", next_attempt_at=dt.datetime.now(UTC)))
    db.session.commit()
    return result.rowcount
