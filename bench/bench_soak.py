"""Soak (issue 8): N simulated dial-in meters for a while with heartbeats, scheduled profile and event
collection every minute, tamper pushes and group read jobs; the HES's RSS, open file descriptors and
error counts are sampled. Goal: flat memory and descriptors, no growing errors."""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_comms import rss_kb  # noqa: E402
from bench.common import print_table  # noqa: E402
from tests.support.live import LiveHes  # noqa: E402
from tests.support.simulator import PASSWORD, start_simulator  # noqa: E402


def open_fds(pid: int) -> int:
    """Open file descriptors of a process."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def main() -> None:
    """Run the load and print samples at the start, middle and end."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--meters", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--sample", type=float, default=30)
    args = parser.parse_args()
    hes = LiveHes(Path(tempfile.mkdtemp(prefix="hes-soak-")),
                  env={"HES_HEARTBEAT_SECONDS": "10", "HES_BACKFILL_DAYS": "1", "HES_IDENTIFY_TIMEOUT": "60",
                       "HES_JOBS_PER_MINUTE": "100"}).start()
    sim = None
    stop = threading.Event()
    errors = {"http": 0, "jobs": 0}
    try:
        brand = hes.api("GET", "/brand/?q=(filters:!((col:name,opr:eq,value:hes_sim)))").json()["ids"][0]
        hes.api("PUT", f"/brand/{brand}/credentials", json={"password": PASSWORD.decode()})
        csv = "Meter Number,Concentrator ID,Meter Type,Comm Mode,Status\n" + "".join(
            f"SOK{i:08d},DCU,hes_sim,dial_in,active\n" for i in range(1, args.meters + 1))
        hes.api("POST", "/meter/import", files={"file": ("m.csv", io.BytesIO(csv.encode()))}, timeout=600)
        for row in hes.api("GET", "/schedule/?q=(page_size:100)").json()["result"]:
            if row["kind"] in ("load_profile", "events"):
                hes.api("PUT", f"/schedule/{row['id']}", json={"interval_minutes": 1, "spread_seconds": 40})
        sim = start_simulator(meters=args.meters, listen=False, dial_in=hes.meter_address, heartbeat_seconds=10,
                              history_days=2, extra=["--prefix", "SOK"])
        online = "/meter/?q=(filters:!((col:online,opr:eq,value:!t)),page_size:1)"
        hes.wait_for(lambda: hes.api("GET", online).json()["count"] >= args.meters, timeout=600, interval=2,
                     what="fleet online")
        ids = hes.api("GET", "/meter/?q=(page_size:100)").json()["ids"]

        def pushes():
            import requests

            session, i = requests.Session(), 0
            while not stop.is_set():
                session.post(f"{sim.control}/meters/{sim.serial(i % args.meters)}/push", json={"code": 10}, timeout=10)
                i += 1
                stop.wait(0.2)

        def jobs():
            while not stop.wait(60):
                resp = hes.api("POST", "/job/", json={"kind": "read", "meter_ids": ids[:50],
                                                      "points": ["energy_import"], "confirm": True})
                if resp.status_code not in (200, 201):
                    errors["jobs"] += 1

        workers = [threading.Thread(target=pushes, daemon=True), threading.Thread(target=jobs, daemon=True)]
        for worker in workers:
            worker.start()
        samples = []
        began = time.monotonic()
        while time.monotonic() - began < args.seconds:
            try:
                count = hes.api("GET", online, timeout=30).json()["count"]
            except Exception:  # a failing API during the soak is exactly what is being counted
                errors["http"] += 1
                count = -1
            samples.append((time.monotonic() - began, rss_kb(hes.proc.pid), open_fds(hes.proc.pid), count))
            time.sleep(args.sample)
        stop.set()
        first, middle, last = samples[1 if len(samples) > 2 else 0], samples[len(samples) // 2], samples[-1]
        rows = [(f"t = {t:.0f} s", f"{rss / 1024:.0f} MiB", fds, online_now) for t, rss, fds, online_now in
                (first, middle, last)]
        growth = (last[1] - first[1]) / max(1, first[1]) * 100
        print_table(f"Soak: {args.meters} meters for {args.seconds:.0f} s (heartbeats 10 s, collection every "
                    "minute, pushes 5/s, a 50-meter read job every minute)",
                    [("sample", "HES RSS", "open fds", "meters online")] + rows + [
                        ("RSS growth first→last", f"{growth:+.1f} %", "flat (within noise)", ""),
                        ("API errors / rejected jobs", f"{errors['http']} / {errors['jobs']}", "0 / 0", "")])
    finally:
        stop.set()
        if sim is not None:
            sim.stop()
        hes.stop()


if __name__ == "__main__":
    main()
