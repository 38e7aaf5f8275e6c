"""Issue 15, item 6 (rest): losing Redis. Commands and group jobs written while it is down answer 201, are
dispatched within seconds of its return (they waited minutes for the sweeper), and the log says so once a minute
instead of every worker's every poll (11 MB a minute). A real ``run.py`` on a redis-server of the test's own
(never the shared one), a simulated dial-out meter over real DLMS."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from app.models.commands import FINAL_STATES
from tests.remote.conftest import FAST, add_dialout_meter
from tests.support.live import start_with_simulator_password
from tests.support.redis_server import RedisServer

DOWN_SECONDS = 20


def test_commands_and_jobs_written_while_redis_is_down_run_seconds_after_it_returns(simulators):
    root = Path(tempfile.mkdtemp(prefix="hes-redis-loss-"))
    redis = RedisServer(root / "redis").start()
    sim = simulators(meters=2, first_serial=61, extra=["--prefix", "RDL"])
    hes = start_with_simulator_password(root / "hes", {**FAST, "HES_REDIS_URL": redis.url})
    try:
        meters = [add_dialout_meter(hes, sim, i) for i in range(2)]
        redis.stop()
        log_before = hes.log_path.stat().st_size
        single = hes.api("POST", "/command/", json={"kind": "disconnect", "meter_id": meters[0]})
        assert single.status_code == 201, single.text  # written; not a 500 inviting a duplicate
        job = hes.api("POST", "/job/", json={"kind": "disconnect", "meter_ids": [meters[1]], "confirm": True})
        assert job.status_code in (200, 201, 202), job.text
        time.sleep(DOWN_SECONDS)
        logged = hes.log_path.stat().st_size - log_before
        assert hes.api("GET", f"/command/{single.json()['id']}").json()["result"]["state"] == "queued"

        redis.start()  # the same port, empty: every queued task was lost with it
        back = time.monotonic()
        done = hes.wait_for(lambda: all(sim.get(f"/meters/{sim.serial(i)}")["relay_connected"] is False
                                        for i in range(2)), timeout=110, what="both meters disconnected")
        recovery = time.monotonic() - back
        print(f"\nRedis down {DOWN_SECONDS} s: {logged:,} bytes logged; commands ran {recovery:.1f} s after its return")
        assert done
        # Well inside the sweeper's 120 s staleness: dispatched by the process itself as soon as Redis answered.
        assert recovery < 60, recovery
        # The relay opens at the meter before the HES has read it back and recorded the outcome: wait for that.
        state = hes.wait_for(lambda: (st := hes.api("GET", f"/command/{single.json()['id']}").json()["result"]["state"])
                             in FINAL_STATES and st, what="command finished")
        assert state == "succeeded", state
        job_state = hes.wait_for(lambda: (j := hes.api("GET", f"/job/{job.json()['id']}").json())["finished"] and j,
                                 what="job finished")
        assert job_state["done"] == 1 and job_state["failed"] == 0, job_state
        # Each repeated error once a minute: a few kB, not megabytes.
        assert logged < 100_000, hes.tail(60)
        assert "stored but not dispatched" in hes.log_path.read_text(errors="replace")
    finally:
        hes.stop()
        redis.stop()
