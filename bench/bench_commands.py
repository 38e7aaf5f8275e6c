"""Command benchmark (issue 6): a group disconnect, then a group reconnect, of N simulated dial-in meters
through the HES job API (``POST /api/v1/job/``), each command sent once and its relay state read back.

Prints the completion time of each job and commands/s (goal: the whole 1,000-meter group in under 60 s).
Run: .venv/bin/python bench/bench_commands.py --meters 1000 [--workers 32]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import print_table  # noqa: E402
from tests.support.live import LiveHes  # noqa: E402
from tests.support.simulator import PASSWORD, start_simulator  # noqa: E402

PREFIX = "CMD"


def import_meters(hes: LiveHes, count: int) -> list[int]:
    """Register dial-in hes_sim meters through the CSV import API; returns their ids."""
    csv = io.StringIO()
    csv.write("Meter Number,Concentrator ID,Meter Type,Comm Mode,Status\n")
    for i in range(1, count + 1):
        csv.write(f"{PREFIX}{i:08d},DCU-{i // 500},hes_sim,dial_in,active\n")
    resp = hes.api("POST", "/meter/import", files={"file": ("m.csv", csv.getvalue().encode())}, timeout=600)
    assert resp.status_code == 200, resp.text
    ids = []
    page = 0
    while True:
        q = f"(filters:!((col:number,opr:sw,value:{PREFIX})),page:{page},page_size:500,columns:!(id))"
        rows = hes.api("GET", f"/meter/?q={q}").json()["result"]
        if not rows:
            return ids
        ids += [r["id"] for r in rows]
        page += 1


def online_count(hes: LiveHes) -> int:
    """Meters the HES shows online."""
    return hes.api("GET", "/meter/?q=(filters:!((col:online,opr:eq,value:!t)),page_size:1)").json()["count"]


def run_job(hes: LiveHes, kind: str, ids: list[int], timeout: float) -> tuple[float, dict]:
    """Start a confirmed group job and wait until every command finished; returns (seconds, job)."""
    started = time.monotonic()
    resp = hes.api("POST", "/job/", json={"kind": kind, "meter_ids": ids, "confirm": True}, timeout=120)
    assert resp.status_code == 201, resp.text
    job_id = resp.json()["id"]
    job = hes.wait_for(lambda: (j := hes.api("GET", f"/job/{job_id}").json())["finished"] and j,
                       timeout=timeout, interval=0.2, what=f"{kind} job finished")
    return time.monotonic() - started, job


def relay_states(control: str, count: int) -> dict[bool, int]:
    """How many simulated meters have their relay connected / disconnected."""
    out = {True: 0, False: 0}
    for i in range(1, count + 1):
        with urllib.request.urlopen(f"{control}/meters/{PREFIX}{i:08d}", timeout=10) as response:
            out[json.loads(response.read())["relay_connected"]] += 1
    return out


def main() -> None:
    """Run the benchmark and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=32, help="Huey greenlet workers of the HES")
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()
    hes = LiveHes(Path(tempfile.mkdtemp(prefix="hes-bench-cmd-")),
                  env={"HES_HEARTBEAT_SECONDS": "60", "HES_SCHEDULER": "off", "HES_IDENTIFY_TIMEOUT": "60",
                       "HES_TASK_WORKERS": str(args.workers), "HES_JOB_MAX_METERS": str(max(args.meters, 1000)),
                       "HES_LOG_LEVEL": "WARNING"}).start()
    sim = None
    try:
        brand = hes.api("GET", "/brand/?q=(filters:!((col:name,opr:eq,value:hes_sim)))").json()["ids"][0]
        hes.api("PUT", f"/brand/{brand}/credentials", json={"password": PASSWORD.decode()})
        ids = import_meters(hes, args.meters)
        assert len(ids) == args.meters, len(ids)
        sim = start_simulator(meters=args.meters, listen=False, dial_in=hes.meter_address, first_serial=1,
                              heartbeat_seconds=60, history_days=2, extra=["--prefix", PREFIX])
        hes.wait_for(lambda: online_count(hes) >= args.meters, timeout=300, interval=1, what="all meters online")
        rows = []
        total_seconds = 0.0
        for kind, expect_connected in (("disconnect", False), ("reconnect", True)):
            seconds, job = run_job(hes, kind, ids, args.timeout)
            total_seconds += seconds
            relays = relay_states(sim.control, args.meters)
            rows.append((f"{kind}: {args.meters} meters, completion time", f"{seconds:.1f} s", "< 60 s"))
            rows.append((f"{kind}: commands/s", f"{args.meters / seconds:.0f}", "≥ 17"))
            rows.append((f"{kind}: succeeded / failed", f"{job['done']} / {job['failed']}", f"{args.meters} / 0"))
            rows.append((f"{kind}: simulator relays in the expected state", relays[expect_connected],
                         args.meters))
        rows.append(("disconnect + reconnect, whole group", f"{total_seconds:.1f} s", "< 60 s"))
        print_table(f"Group commands over {args.meters} dial-in meters ({args.workers} greenlet workers, SQLite)",
                    rows)
    finally:
        if sim is not None:
            sim.stop()
        hes.stop()


if __name__ == "__main__":
    main()
