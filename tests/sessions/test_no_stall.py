"""No stall: while another process holds SQLite's write lock, the node's event loop keeps running (lag reported
on the node's status stays under 1 s) and a push that arrives meanwhile is stored once the lock is free."""

from __future__ import annotations

import sqlite3
import time

from tests.support.live import add_meter

LOCK_SECONDS = 5.0


def _node(hes) -> dict:
    return hes.api("GET", "/comms_node/").json()["result"][0]


def test_pushes_survive_a_locked_database_and_the_loop_never_stalls(hes, simulators):
    add_meter(hes, "NST00000001")
    sim = simulators(meters=1, listen=False, dial_in=hes.meter_address, first_serial=1, extra=["--prefix", "NST"])
    hes.wait_for(lambda: hes.api("GET", "/meter/?q=(filters:!((col:number,opr:eq,value:NST00000001)))")
                 .json()["result"][0]["online"], timeout=30, what="meter online")
    lag = hes.wait_for(lambda: _node(hes)["loop_lag"]["p99_ms"] is not None and _node(hes)["loop_lag"],
                       timeout=20, what="loop lag reported")
    assert lag["max_ms"] >= 0 and lag["p99_ms"] <= lag["max_ms"]

    writer = sqlite3.connect(hes.data_dir / "hes.db", timeout=30)
    writer.execute("BEGIN IMMEDIATE")  # another process holds the only write lock
    sim.post(f"/meters/{sim.serial(0)}/fault", {"kind": "cover_open"})
    started = time.monotonic()
    while time.monotonic() - started < LOCK_SECONDS:
        # The web side still answers while writes wait.
        assert hes.api("GET", "/comms_node/", timeout=5).status_code == 200
        time.sleep(0.5)
    writer.rollback()
    writer.close()

    events = hes.wait_for(lambda: hes.api("GET", "/event/?q=(filters:!((col:event_type,opr:eq,value:cover_open)))")
                          .json()["result"], timeout=30, what="the pushed event stored after the lock")
    assert len(events) == 1
    node = hes.wait_for(lambda: (n := _node(hes))["counters"].get("push_stored", 0) >= 1 and n, timeout=20,
                        what="push counted as stored")
    assert node["counters"].get("push_lost", 0) == 0
    # The heartbeat after the lock reports the worst lag of the last minute: a frozen loop would show the whole
    # lock; ours waits at most SQLite's short busy timeout at a time (the benchmark measures the real figure on
    # an idle machine; this shared one adds its own noise).
    time.sleep(6)
    assert _node(hes)["loop_lag"]["max_ms"] < LOCK_SECONDS * 1000 / 2, _node(hes)


def test_every_process_reports_its_loop_lag(hes):
    """The process (web, comms node and task consumers on one hub) reports its loop lag over the last minute,
    RSS and open files; the Comms Nodes page shows the same row."""
    first = hes.wait_for(lambda: (r := hes.api("GET", "/comms_node/processes").json()["result"]) and r[0],
                         timeout=20, what="process reported")
    assert first["roles"] == "web, comms, tasks" and first["node_id"] == _node(hes)["node_id"]
    later = hes.wait_for(lambda: (p := hes.api("GET", "/comms_node/processes").json()["result"][0])
                         ["heartbeat_at"] > first["heartbeat_at"] and p, timeout=20, what="a second report")
    lag = later["loop_lag"]
    assert 0 <= lag["p99_ms"] <= lag["max_ms"] <= lag["max_since_start_ms"]
    assert later["rss_mib"] > 20 and later["fds"] > 3
    pauses = later["gc"]  # the collector's pauses, measured since start (it has collected by now)
    assert 0 < pauses["gc_max_since_start_ms"] and 0 <= pauses["gc_max_ms"] <= pauses["gc_max_since_start_ms"]
    assert pauses["gc_full_collections"] >= 0
    assert {"node connections", "channel ids", "meter object caches"} <= set(later["caches"])
    page = hes.web_session().get(f"{hes.url}/nodes/", timeout=10).text
    assert f'data-process="{first["key"]}"' in page and "Loop lag p99 / max (ms)" in page
    assert "Garbage collection max / worst (ms)" in page


def test_a_connected_meter_taken_offline_by_supervision_comes_back_online(hes, simulators):
    """Supervision can misjudge a busy node (its heartbeat late) and mark the meters it holds offline; the connections
    live on, so the node's next last-seen flush puts each such meter back online instead of leaving it offline
    until it reconnects (the 5,000-meter soak ended with 555 connected meters shown offline)."""
    number = "NST00000002"
    add_meter(hes, number)
    simulators(meters=1, listen=False, dial_in=hes.meter_address, first_serial=2, heartbeat_seconds=1,
               extra=["--prefix", "NST"])
    query = f"/meter/?q=(filters:!((col:number,opr:eq,value:{number})))"
    hes.wait_for(lambda: hes.api("GET", query).json()["result"][0]["online"], timeout=30, what="meter online")
    with sqlite3.connect(hes.data_dir / "hes.db", timeout=30) as supervision:
        supervision.execute("UPDATE meter SET online = 0, node_id = NULL WHERE number = ?", (number,))
    assert not hes.api("GET", query).json()["result"][0]["online"]
    meter = hes.wait_for(lambda: (m := hes.api("GET", query).json()["result"][0])["online"] and m, timeout=20,
                         what="meter online again")
    assert meter["node_id"] == _node(hes)["node_id"]
