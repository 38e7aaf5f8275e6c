"""Browser tests' own fixtures: a fleet created on the shared live server (see tests/support/browser.py)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest

from tests.support.browser import LiveServer


@dataclass
class Fleet:
    """Meters created through the REST API for the browser tests."""

    areas: dict[str, int]
    meters: dict[str, int]
    online: set[str]
    seen: set[str]

    def in_area(self, prefix: str) -> set[str]:
        """Meter numbers whose number starts with an area's prefix."""
        return {number for number in self.meters if number.startswith(prefix)}


FLEET_LAYOUT = {"BN": ("North", 5), "BS": ("South", 3)}


@pytest.fixture(scope="session")
def fleet(live_server) -> Fleet:
    """Two areas with 5 and 3 meters (created via the REST API); 3 are online and 1 more was seen before."""
    headers = live_server.token()
    brand = live_server.api("GET", "/api/v1/brand/?q=(filters:!((col:name,opr:eq,value:hes_sim)))",
                            headers=headers).json()["ids"][0]
    areas, meters = {}, {}
    for prefix, (name, count) in FLEET_LAYOUT.items():
        resp = live_server.api("POST", "/api/v1/area/", headers=headers,
                               json={"name": name, "code": f"B-{prefix}", "kind": "region"})
        assert resp.status_code == 201, resp.text
        areas[name] = resp.json()["id"]
        for i in range(1, count + 1):
            number = f"{prefix}{i:03d}"
            resp = live_server.api("POST", "/api/v1/meter/", headers=headers,
                                   json={"number": number, "brand": brand, "area": areas[name],
                                         "concentrator_id": f"DC-{prefix}", "status": "active"})
            assert resp.status_code == 201, resp.text
            meters[number] = resp.json()["id"]
    online, seen_before = {"BN001", "BN002", "BS001"}, {"BN003"}
    for number in online:
        live_server.sql("UPDATE meter SET online = 1, first_seen = datetime('now', '-2 days'), "
                        "last_seen = datetime('now') WHERE number = ?", (number,))
    for number in seen_before:
        live_server.sql("UPDATE meter SET first_seen = datetime('now', '-3 days'), "
                        "last_seen = datetime('now', '-1 day') WHERE number = ?", (number,))
    _store_register_readings(live_server, [meters[n] for n in sorted(online)])
    for minutes, number, event_type, code, severity in ((42, "BN003", "power_down", 1, "warning"),
                                                        (18, "BS002", "cover_opened", 40, "critical"),
                                                        (6, "BN001", "clock_adjusted", 3, "info")):
        live_server.sql("INSERT INTO event (meter_id, ts, event_type, code, severity, source, received_at) "
                        "VALUES (?, datetime('now', ?), ?, ?, ?, 'log', datetime('now'))",
                        (meters[number], f"-{minutes} minutes", event_type, code, severity))
    return Fleet(areas=areas, meters=meters, online=online, seen=online | seen_before)


def _store_register_readings(server: LiveServer, meter_ids: list[int]) -> None:
    """Quarter-hourly energy-import register values (Wh) for the last 90 minutes, plus today's daily
    rollup rows, written as the collection pipeline would store them."""
    fmt = "%Y-%m-%d %H:%M:%S.%f"
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    end = now.replace(minute=now.minute // 15 * 15, second=0, microsecond=0)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    server.sql("INSERT OR IGNORE INTO channel (obis, key, name, unit, cumulative) VALUES "
               "('1.0.1.8.0.255', 'energy_import', 'Active energy import', 'Wh', 1)")
    for rank, meter_id in enumerate(meter_ids, 1):
        stamps = [end - dt.timedelta(minutes=15 * k) for k in range(6, -1, -1)]
        previous = None
        for i, ts in enumerate(stamps):
            value = 1_000_000 * rank + i * (400 + 150 * rank) + (i % 2) * 120 * rank
            server.sql("INSERT INTO reading (meter_id, channel_id, ts, value, quality, source, received_at) "
                       "SELECT ?, id, ?, ?, 0, 0, ? FROM channel WHERE obis = '1.0.1.8.0.255'",
                       (meter_id, ts.strftime(fmt), value, ts.strftime(fmt)))
            if previous is not None:  # the area's quarter-hour energy, as ingest keeps it for the dashboard
                server.sql("INSERT INTO energy_quarter (area_id, bucket, import_wh) SELECT coalesce(area_id, 0), ?, ? "
                           "FROM meter WHERE id = ? ON CONFLICT (area_id, bucket) DO UPDATE "
                           "SET import_wh = import_wh + excluded.import_wh",
                           ((ts - dt.timedelta(minutes=15)).strftime(fmt), value - previous, meter_id))
            previous = value
        today = [ts for ts in stamps[1:] if ts > midnight]
        server.sql("INSERT INTO consumption_daily (meter_id, bucket, import_wh, export_wh, intervals, on_time) "
                   "VALUES (?, ?, 0, 0, ?, ?)", (meter_id, midnight.strftime(fmt), len(today), len(today)))
