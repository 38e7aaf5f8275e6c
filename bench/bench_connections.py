"""Connections per node (issue 13): as many dial-in meters as the file limit allows held by one comms node.

The bench raises its soft RLIMIT_NOFILE to the hard limit (the HES and the simulators it starts inherit it),
registers (hard limit - reserve) meters and brings them online in steps, heartbeating every 60 s. Printed per
step: meters online, the node's RSS and open files, RSS per connection (over the node's RSS before any
meter), CPU while idle-heartbeating, and the time until all were online; then the RSS projected for 100,000.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_comms import cpu_seconds, import_meters, online_count, rss_kb  # noqa: E402
from bench.bench_soak import open_fds  # noqa: E402
from bench.common import free_port_in_range, print_table  # noqa: E402
from tests.support.live import LiveHes  # noqa: E402
from tests.support.simulator import PASSWORD, start_simulator  # noqa: E402

PROJECTED = 100_000


def raise_file_limit() -> tuple[int, int]:
    """Soft limit up to the hard limit; returns (before, after)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return soft, hard


def wait_online(hes: LiveHes, target: int, stall_seconds: float = 60.0) -> int:
    """Wait until ``target`` meters are online, or until the count stops growing for ``stall_seconds``."""
    best, since = -1, time.monotonic()
    while True:
        count = online_count(hes)
        if count >= target:
            return count
        if count > best:
            best, since = count, time.monotonic()
        elif time.monotonic() - since > stall_seconds:
            return count
        time.sleep(2)


def main() -> None:
    """Grow the dial-in fleet to the file limit and measure the node at each step."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reserve", type=int, default=1000, help="descriptors left for the HES's own files")
    parser.add_argument("--steps", default="2000,10000", help="fleet sizes before the last step (the limit)")
    parser.add_argument("--settle", type=float, default=20.0, help="seconds to settle and to measure CPU over")
    args = parser.parse_args()
    soft, hard = raise_file_limit()
    limit = hard - args.reserve
    steps = [s for s in (int(x) for x in args.steps.split(",")) if s < limit] + [limit]
    hes = LiveHes(Path(tempfile.mkdtemp(prefix="hes-bench-conn-")), web_port=free_port_in_range(),
                  meter_port=free_port_in_range(),
                  env={"HES_HEARTBEAT_SECONDS": "60", "HES_SCHEDULER": "off", "HES_IDENTIFY_TIMEOUT": "120",
                       "HES_PROCESS_HEARTBEAT_SECONDS": "10"}).start(timeout=180)
    sims, rows, measured = [], [], []
    try:
        brand = hes.api("GET", "/brand/?q=(filters:!((col:name,opr:eq,value:hes_sim)))").json()["ids"][0]
        hes.api("PUT", f"/brand/{brand}/credentials", json={"password": PASSWORD.decode()})
        import_meters(hes, [f"CON{i:08d}" for i in range(1, limit + 1)])
        time.sleep(args.settle)
        base_rss, base_fds = rss_kb(hes.proc.pid), open_fds(hes.proc.pid)
        have = 0
        for target in steps:
            sims.append(start_simulator(
                meters=target - have, listen=False, dial_in=hes.meter_address, first_serial=have + 1,
                heartbeat_seconds=60, extra=["--prefix", "CON", "--control", f"127.0.0.1:{free_port_in_range()}"]))
            started = time.monotonic()
            online = wait_online(hes, target)
            seconds = time.monotonic() - started
            time.sleep(args.settle)
            cpu0, t0 = cpu_seconds(hes.proc.pid), time.monotonic()
            time.sleep(args.settle)
            cpu = (cpu_seconds(hes.proc.pid) - cpu0) / (time.monotonic() - t0) * 100
            rss, fds = rss_kb(hes.proc.pid), open_fds(hes.proc.pid)
            measured.append((online, rss))
            per = (rss - base_rss) / max(online, 1)
            rows.append((f"{online:,} of {target:,}", f"{rss / 1024:.0f} MiB", f"{per:.1f} KiB", f"{fds:,}",
                         f"{cpu:.1f} %", f"{seconds:.0f} s"))
            have = target
            if online < target:
                break
    finally:
        for sim in sims:
            sim.stop()
        hes.stop()
    (n0, r0), (n1, r1) = measured[0], measured[-1]
    slope = (r1 - r0) / max(n1 - n0, 1)  # KiB per extra connection, between the first and last step
    projected = (r1 + slope * (PROJECTED - n1)) / 1024 / 1024
    print_table(f"Dial-in connections held by one comms node up to the file limit (soft {soft:,} raised to hard "
                f"{hard:,}; {args.reserve:,} kept for the node's own files; heartbeat every 60 s)",
                [("meters online", "node RSS", "RSS per connection", "node fds", "node CPU", "time to online")]
                + rows + [("before any meter", f"{base_rss / 1024:.0f} MiB", "", f"{base_fds:,}", "", ""),
                          ("marginal RSS per connection (first → last step)", f"{slope:.1f} KiB", "", "", "", ""),
                          (f"projected at {PROJECTED:,} per node", f"{projected:.1f} GiB", "", f"> {PROJECTED:,}",
                           "", "")])


if __name__ == "__main__":
    main()
