"""The demo fleet that ``make run`` starts: simulated meters registered and dialing in to this HES."""

from __future__ import annotations

import json
import logging
import os
import random
import secrets
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path

import gevent
from flask import Flask
from sqlalchemy import select

from app.extensions import db
from app.models import Area, AreaKind, CommMode, Customer, Meter, MeterBrand, MeterStatus
from app.services.secrets import store_credentials

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[2]
DEMO_AREAS = [
    ("Demo Region", "DEMO", None, AreaKind.region),
    ("Central District", "DEMO-C", "DEMO", AreaKind.district),
    ("Market Ward", "DEMO-C-MKT", "DEMO-C", AreaKind.area),
    ("River Ward", "DEMO-C-RIV", "DEMO-C", AreaKind.area),
]


def demo_meter_number(index: int) -> str:
    """Meter number of the simulator's meter ``index`` (1-based), as the simulator names it."""
    return f"SIM{index:08d}"


def ensure_demo_registry(count: int, password: str) -> list[str]:
    """Register the demo areas, meters and a customer per meter pair; set the brand's password."""
    brand = db.session.execute(select(MeterBrand).where(MeterBrand.name == "hes_sim")).scalar_one()
    brand.default_secret = store_credentials(brand.default_secret, password=password)
    areas = {}
    for name, code, parent, kind in DEMO_AREAS:
        area = db.session.execute(select(Area).where(Area.code == code)).scalar()
        if area is None:
            area = Area(name=name, code=code, kind=kind, parent_id=areas[parent].id if parent else None)
            db.session.add(area)
            db.session.flush()
        areas[code] = area
    wards = [areas["DEMO-C-MKT"], areas["DEMO-C-RIV"]]
    existing = set(db.session.execute(select(Meter.number).where(Meter.number.like("SIM%"))).scalars())
    numbers = []
    for index in range(1, count + 1):
        number = demo_meter_number(index)
        numbers.append(number)
        if number in existing:
            continue
        customer = Customer(account_number=f"DEMO-{index:05d}", name=f"Demo Customer {index}",
                            address=f"{index} {wards[index % 2].name} Road", phone=f"+2348000{index:05d}")
        db.session.add(customer)
        db.session.add(Meter(number=number, brand_id=brand.id, concentrator_id=f"DCU-{(index - 1) // 25 + 1:03d}",
                             area_id=wards[index % 2].id, status=MeterStatus.active, comm_mode=CommMode.dial_in,
                             customer=customer))
    db.session.commit()
    return numbers


# What a live fleet reports now and then: outages, tampers, overloads, low credit.
DEMO_EVENT_CODES = (1, 2, 10, 11, 15, 30)


def _demo_activity(control: str | None, count: int, every: float) -> None:
    """Make a random demo meter push an event every so often, so alerts and events appear by themselves."""
    if not control:
        return
    rnd = random.Random()
    while True:
        gevent.sleep(every * rnd.uniform(0.5, 1.5))
        serial, code = demo_meter_number(rnd.randint(1, count)), rnd.choice(DEMO_EVENT_CODES)
        request = urllib.request.Request(f"{control}/meters/{serial}/push", data=json.dumps({"code": code}).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        try:
            urllib.request.urlopen(request, timeout=10).close()
        except OSError as exc:  # the demo goes on; the simulator may be restarting
            log.debug("demo event for %s failed: %s", serial, exc)


def start_demo(app: Flask, count: int, listen: tuple[str, int]) -> Callable[[], None]:
    """Register the demo fleet and start the simulator dialing in; returns a stopper."""
    password = secrets.token_urlsafe(12)
    with app.app_context():
        ensure_demo_registry(count, password)
    host = "127.0.0.1" if listen[0] in ("0.0.0.0", "::", "") else listen[0]
    cmd = [sys.executable, "-m", "simulator", "--meters", str(count), "--dial-in", f"{host}:{listen[1]}",
           "--auth", "low", "--control", "127.0.0.1:0",
           "--heartbeat-seconds", str(app.config.get("HES_HEARTBEAT_SECONDS", 60))]
    # The password goes through the environment: a command line is readable by every user (ps, /proc/*/cmdline).
    env = {**os.environ, "SIM_PASSWORD": password}
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline()
    try:
        ready = json.loads(line)
        app.config["HES_DEMO_CONTROL"] = f"http://127.0.0.1:{ready['control_port']}"
        log.info("demo fleet of %s simulated meters dialing in to %s:%s", count, host, listen[1])
    except (ValueError, KeyError):
        log.error("demo simulator did not start: %r", line)

    activity = gevent.spawn(_demo_activity, app.config.get("HES_DEMO_CONTROL"), count,
                            float(app.config.get("HES_DEMO_EVENT_SECONDS", 90)))

    def stop() -> None:
        activity.kill(block=False)
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()

    return stop
