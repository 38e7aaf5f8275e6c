"""Commands in flight survive a crash: after a kill -9 while a command is ``sent``, the restarted node resolves
it at once by asking the meter again (the relay reads back), and the meter's next command is not held."""

from __future__ import annotations

import time

from tests.remote.conftest import FAST, add_dialout_meter, command, send
from tests.sessions.conftest import start_hes


def test_command_sent_at_kill_9_is_resolved_at_restart_and_the_next_one_runs(tmp_path, simulators):
    sim = simulators(meters=1, first_serial=91, extra=["--prefix", "CRS"])
    serial = sim.serial(0)
    hes = start_hes(tmp_path / "hes", {**FAST, "HES_RESPONSE_TIMEOUT": "20"})
    try:
        meter_id = add_dialout_meter(hes, sim, 0)
        sim.post(f"/meters/{serial}/fault", {"kind": "slow", "seconds": 2})
        resp = send(hes, "disconnect", meter_id, wait=0)
        assert resp.status_code == 201, resp.text
        command_id = resp.json()["id"]
        hes.wait_for(lambda: command(hes, command_id)["state"] == "sent", timeout=20, interval=0.1,
                     what="the command sent")
        hes.kill()  # kill -9 in the middle of the session

        sim.post(f"/meters/{serial}/fault", {"kind": "slow", "active": False})
        hes.start(timeout=180)
        restarted = time.monotonic()
        done = hes.wait_for(lambda: (c := command(hes, command_id))["state"] not in ("sent", "queued") and c,
                            timeout=30, what="interrupted command resolved after the restart")
        assert time.monotonic() - restarted < 30  # at once, not after the 30-minute stuck timeout
        assert done["state"] == "succeeded", done
        assert done["result"]["relay_state"] == "disconnected"
        assert sim.get(f"/meters/{serial}")["relay_connected"] is False
        # The meter's queue is free: the next command runs straight away.
        nxt = send(hes, "reconnect", meter_id, wait=30)
        assert nxt.json()["result"]["state"] == "succeeded", nxt.json()
        assert sim.get(f"/meters/{serial}")["relay_connected"] is True
    finally:
        hes.stop()
