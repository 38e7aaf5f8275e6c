"""No stalls (issue 13): queueing a collection task per meter on the SQLite task queue, on the event loop vs in
the hub's thread pool (``app.tasks.jobs.enqueue_all``, what the schedule dispatcher does), with the process's
loop lag measured meanwhile. Each enqueue is a committed SQLite write whose fsync does not yield."""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ["HES_DATA_DIR"] = tempfile.mkdtemp(prefix="hes-bench-enqueue-")
os.environ.pop("HES_REDIS_URL", None)

from app.comms.looplag import LoopLagMonitor  # noqa: E402
from app.tasks.jobs import collect, enqueue_all  # noqa: E402
from bench.common import print_table  # noqa: E402


def measure(enqueue_many, meters: int) -> tuple[float, dict]:
    """(seconds, loop-lag snapshot) while ``enqueue_many`` queues one task per meter."""
    monitor = LoopLagMonitor(tick=0.01).start()
    gevent.sleep(0.2)
    began = time.perf_counter()
    gevent.spawn(enqueue_many, range(meters)).join()
    seconds = time.perf_counter() - began
    gevent.sleep(0.05)
    lag = monitor.snapshot()
    monitor.stop()
    return seconds, lag


def main() -> None:
    """Both ways in one run."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--meters", type=int, default=10_000, help="tasks queued (5,000 meters x 2 schedules)")
    args = parser.parse_args()

    def one(meter_id: int) -> None:
        collect.schedule(args=(meter_id, "load_profile"), delay=600)

    def inline(ids) -> None:
        for meter_id in ids:
            one(meter_id)

    rows = []
    for label, way in (("on the event loop (before)", inline), ("enqueue_all (hub thread pool)", lambda ids:
                                                                   enqueue_all(ids, one))):
        seconds, lag = measure(way, args.meters)
        rows += [(f"{label}: time", f"{seconds:.1f} s", ""),
                 (f"{label}: loop lag max / p99", f"{lag['max_ms']:.0f} / {lag['p99_ms']:.0f} ms",
                  "< 1000 / < 100 ms")]
    print_table(f"Queueing {args.meters:,} collection tasks on the SQLite queue", rows)


if __name__ == "__main__":
    main()
