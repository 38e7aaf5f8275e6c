"""Two comms nodes and a gunicorn web tier on PostgreSQL and Redis: requests reach the owning node,
live events cross processes, and losing a node moves its meters to the other without losing work."""

from __future__ import annotations

import io
import threading

import socketio

from tests.support.simulator import PASSWORD, start_simulator

METERS = 3


def meters(web) -> dict[str, dict]:
    rows = web.api("GET", "/meter/?q=(filters:!((col:number,opr:sw,value:SCL)),page_size:100)").json()["result"]
    return {row["number"]: row for row in rows}


def ids(web) -> dict[str, int]:
    resp = web.api("GET", "/meter/?q=(filters:!((col:number,opr:sw,value:SCL)),page_size:100)").json()
    return {row["number"]: pk for row, pk in zip(resp["result"], resp["ids"], strict=True)}


def all_on(web, node: str) -> bool:
    rows = meters(web)
    return len(rows) == METERS and all(r["online"] for r in rows.values()) and {
        r.get("node_id") for r in rows.values()} == {node}


def test_scale_out_routing_events_and_node_loss(cluster):
    web = cluster.web
    brand = web.api("GET", "/brand/?q=(filters:!((col:name,opr:eq,value:hes_sim)))").json()["ids"][0]
    assert web.api("PUT", f"/brand/{brand}/credentials", json={"password": PASSWORD.decode()}).status_code == 200
    csv = "Meter Number,Concentrator ID,Meter Type,Comm Mode,Status\n" + "".join(
        f"SCL{i:08d},DCU,hes_sim,dial_in,active\n" for i in range(1, METERS + 1))
    assert web.api("POST", "/meter/import", files={"file": ("m.csv", io.BytesIO(csv.encode()))}).status_code == 200

    events, lock = [], threading.Lock()
    client = socketio.Client(reconnection=True)
    client.on("meter_status_changed", lambda data: (lock.acquire(), events.append(data), lock.release()))
    # WebSocket transport: one connection stays on one worker (long-polling would need sticky sessions).
    client.connect(web.url, auth={"token": web.http.headers["Authorization"].split()[1]}, wait_timeout=10,
                   transports=["websocket"])
    sim = start_simulator(meters=METERS, listen=False, dial_in=cluster.addresses(), heartbeat_seconds=1,
                          extra=["--prefix", "SCL"])
    try:
        # Meters dial their primary address (node-a); the web tier hears it through Redis.
        web.wait_for(lambda: all_on(web, "node-a"), timeout=30, what="meters online on node-a")
        web.wait_for(lambda: len({e["number"] for e in events if e["online"]}) == METERS, timeout=15,
                     what="status events relayed to the web tier's Socket.IO client")
        meter_ids = ids(web)
        first = meter_ids["SCL00000001"]
        # A read issued on a web process runs on the node that holds the socket.
        read = web.api("POST", f"/meter/{first}/read", json={"points": ["serial_number", "energy_import"]})
        assert read.status_code == 200, read.text
        assert read.json()["results"][0]["value"] == "SCL00000001"
        disconnect = web.api("POST", "/command/", json={"kind": "disconnect", "meter_id": first, "wait": 30})
        assert disconnect.status_code in (200, 201), disconnect.text
        command = web.wait_for(lambda: _finished(web, disconnect.json()), timeout=30, what="disconnect done")
        assert command["state"] == "succeeded", command
        assert sim.get("/meters/SCL00000001")["relay_connected"] is False

        # node-a dies without warning; its meters fail over to node-b. A command issued meanwhile waits.
        cluster.nodes["node-a"].kill()
        reconnect = web.api("POST", "/command/", json={"kind": "reconnect", "meter_id": first, "expires_in": 300})
        assert reconnect.status_code in (200, 201), reconnect.text
        web.wait_for(lambda: all_on(web, "node-b"), timeout=60, what="meters online on node-b")
        done = web.wait_for(lambda: _finished(web, reconnect.json()), timeout=90, what="queued reconnect done")
        assert done["state"] == "succeeded", done
        assert sim.get("/meters/SCL00000001")["relay_connected"] is True
        # Collection goes on through node-b.
        collected = web.api("POST", f"/meter/{meter_ids['SCL00000002']}/collect", json={"kind": "load_profile"})
        assert collected.status_code == 200, collected.text
        assert collected.json()["result"]["inserted"] > 0
        read = web.api("POST", f"/meter/{first}/read", json={"points": ["relay_output_state"]})
        assert read.status_code == 200 and read.json()["results"][0]["value"] is True
    finally:
        client.disconnect()
        sim.stop()


def _finished(web, created: dict) -> dict | None:
    command_id = created.get("id") or created.get("result", {}).get("id")
    row = web.api("GET", f"/command/{command_id}").json()
    row = row.get("result", row)
    return row if row.get("state") in ("succeeded", "failed", "expired", "cancelled") else None
