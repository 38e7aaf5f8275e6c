"""Collection round (issue 4b): N simulated dial-in meters' 15-minute profiles collected end to end
through a running HES (socket held by the comms node, DLMS session, storage, rollups), with the
concurrency a node's task workers use. Goal: well inside the 15-minute period."""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import print_table  # noqa: E402
from tests.support.live import LiveHes  # noqa: E402
from tests.support.simulator import PASSWORD, start_simulator  # noqa: E402


def round_time(hes: LiveHes, ids: list[int], workers: int) -> tuple[float, int]:
    """Collect every meter once with ``workers`` in flight; returns (seconds, failures)."""
    queue, failures, lock = list(ids), [0], threading.Lock()

    def worker():
        while True:
            with lock:
                if not queue:
                    return
                meter_id = queue.pop()
            resp = hes.api("POST", f"/meter/{meter_id}/collect", json={"kind": "load_profile"}, timeout=300)
            if resp.status_code != 200:
                with lock:
                    failures[0] += 1

    began = time.perf_counter()
    pool = [threading.Thread(target=worker) for _ in range(workers)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return time.perf_counter() - began, failures[0]


def main() -> None:
    """Register, connect, backfill once, then time a steady-state round."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--meters", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=16)
    args = parser.parse_args()
    hes = LiveHes(Path(tempfile.mkdtemp(prefix="hes-bench-round-")),
                  env={"HES_SCHEDULER": "off", "HES_BACKFILL_DAYS": "1", "HES_HEARTBEAT_SECONDS": "60",
                       "HES_RESPONSE_TIMEOUT": "30", "HES_IDENTIFY_TIMEOUT": "60"}).start()
    sim = None
    try:
        brand = hes.api("GET", "/brand/?q=(filters:!((col:name,opr:eq,value:hes_sim)))").json()["ids"][0]
        hes.api("PUT", f"/brand/{brand}/credentials", json={"password": PASSWORD.decode()})
        csv = "Meter Number,Concentrator ID,Meter Type,Comm Mode,Status\n" + "".join(
            f"RND{i:08d},DCU,hes_sim,dial_in,active\n" for i in range(1, args.meters + 1))
        assert hes.api("POST", "/meter/import", files={"file": ("m.csv", io.BytesIO(csv.encode()))},
                       timeout=600).status_code == 200
        sim = start_simulator(meters=args.meters, listen=False, dial_in=hes.meter_address, history_days=2,
                              heartbeat_seconds=60, extra=["--prefix", "RND"])
        online = "/meter/?q=(filters:!((col:online,opr:eq,value:!t)),page_size:1)"
        hes.wait_for(lambda: hes.api("GET", online).json()["count"] >= args.meters, timeout=600, interval=2,
                     what="fleet online")
        ids = []
        for page in range(0, (args.meters + 499) // 500):
            ids += hes.api("GET", f"/meter/?q=(page:{page},page_size:500)").json()["ids"]
        first, first_failed = round_time(hes, ids, args.workers)   # backfill: one day of history each
        steady, steady_failed = round_time(hes, ids, args.workers)  # a normal 15-minute round
        print_table(f"Collection round, {args.meters} dial-in meters, {args.workers} in flight", [
            ("first round incl. 1 day backfill", f"{first:.1f} s ({first_failed} failed)", ""),
            ("steady 15-minute round", f"{steady:.1f} s ({steady_failed} failed)", "well inside 900 s"),
            ("meters per second (steady)", f"{len(ids) / steady:.1f}", ""),
        ])
    finally:
        if sim is not None:
            sim.stop()
        hes.stop()


if __name__ == "__main__":
    main()
