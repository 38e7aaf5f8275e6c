"""Alert latency (issue 4c): simulated meters push tamper events at a steady rate; a Socket.IO client
on the HES records when each ``alert_raised`` arrives. Prints p50/p99. Goal: p99 under 1 s at 200/s."""

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

import socketio  # noqa: E402

from bench.common import print_table  # noqa: E402
from tests.support.live import LiveHes  # noqa: E402
from tests.support.simulator import PASSWORD, start_simulator  # noqa: E402


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main() -> None:
    """Connect the fleet, then push at the given rate for the given time and match arrivals to sends."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--meters", type=int, default=200)
    parser.add_argument("--rate", type=float, default=200.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    hes = LiveHes(Path(tempfile.mkdtemp(prefix="hes-bench-alerts-")),
                  env={"HES_SCHEDULER": "off", "HES_HEARTBEAT_SECONDS": "60"}).start()
    sim = None
    client = socketio.Client(reconnection=False)
    try:
        brand = hes.api("GET", "/brand/?q=(filters:!((col:name,opr:eq,value:hes_sim)))").json()["ids"][0]
        hes.api("PUT", f"/brand/{brand}/credentials", json={"password": PASSWORD.decode()})
        csv = "Meter Number,Concentrator ID,Meter Type,Comm Mode,Status\n" + "".join(
            f"ALR{i:08d},DCU,hes_sim,dial_in,active\n" for i in range(1, args.meters + 1))
        hes.api("POST", "/meter/import", files={"file": ("m.csv", io.BytesIO(csv.encode()))})
        sim = start_simulator(meters=args.meters, listen=False, dial_in=hes.meter_address, heartbeat_seconds=60,
                              extra=["--prefix", "ALR"])
        online = "/meter/?q=(filters:!((col:online,opr:eq,value:!t)),page_size:1)"
        hes.wait_for(lambda: hes.api("GET", online).json()["count"] >= args.meters, timeout=300, interval=1,
                     what="fleet online")
        sent: dict[tuple[str, int], float] = {}
        arrived: dict[tuple[str, int], float] = {}
        counts: dict[str, int] = {}
        lock = threading.Lock()

        def on_alert(data):
            now = time.perf_counter()
            with lock:
                arrived[(data["number"], data["count"])] = now

        client.on("alert_raised", on_alert)
        client.connect(hes.url, auth={"token": hes.http.headers["Authorization"].split()[1]},
                       transports=["websocket"], wait_timeout=10)
        import requests

        total = int(args.rate * args.seconds)
        senders = 16  # the control API answers one request at a time per connection
        began = time.perf_counter()

        def sender(offset: int) -> None:
            control = requests.Session()
            for i in range(offset, total, senders):
                pause = began + i / args.rate - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
                serial = sim.serial(i % args.meters)
                with lock:
                    counts[serial] = counts.get(serial, 0) + 1
                    sent[(serial, counts[serial])] = time.perf_counter()
                control.post(f"{sim.control}/meters/{serial}/push", json={"code": 11}, timeout=10)

        pool = [threading.Thread(target=sender, args=(n,)) for n in range(senders)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
        achieved = total / (time.perf_counter() - began)
        deadline = time.perf_counter() + 15
        while time.perf_counter() < deadline and len(arrived) < len(sent):
            time.sleep(0.2)
        latencies = [arrived[k] - t for k, t in sent.items() if k in arrived]
        lost = len(sent) - len(latencies)
        print_table(f"Alert latency: simulator push to Socket.IO client, {args.meters} meters", [
            ("events pushed (rate achieved)", f"{len(sent)} ({achieved:.0f}/s)", f"{args.rate:.0f}/s"),
            ("alerts received", f"{len(latencies)} ({lost} missing)", "all"),
            ("p50 latency", f"{percentile(latencies, 50) * 1000:.0f} ms" if latencies else "n/a", ""),
            ("p99 latency", f"{percentile(latencies, 99) * 1000:.0f} ms" if latencies else "n/a", "< 1000 ms"),
        ])
    finally:
        if client.connected:
            client.disconnect()
        if sim is not None:
            sim.stop()
        hes.stop()


if __name__ == "__main__":
    main()
