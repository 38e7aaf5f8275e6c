"""Comms benchmarks (issue 3).

(a) connections: N simulated dial-in meters heartbeating every 60 s against one HES node; prints the
    node's RSS per connection and CPU at each step (goal: 10,000 meters under 1 GiB RSS).
(b) reads: on-demand read sessions (associate, clock + 2 registers + 96-row profile, release) through
    the HES REST API with concurrency, next to a bare gurux client loop against the same simulator in
    the same run (goal: the HES adds under 25% over the bare protocol cost).
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_protocol_bare import BareClient  # noqa: E402
from bench.common import print_table  # noqa: E402
from tests.support.live import LiveHes  # noqa: E402
from tests.support.simulator import PASSWORD, start_simulator  # noqa: E402


def rss_kb(pid: int) -> int:
    """Resident memory of a process in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    import os

    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def import_meters(hes: LiveHes, numbers: list[str], sim_prefix: str = "") -> None:
    """Register active meters through the CSV import API (dial-out through SIMs when a prefix is given)."""
    csv = io.StringIO()
    csv.write("Meter Number,Concentrator ID,Meter Type,SIM Number,Comm Mode,Status\n")
    for i, number in enumerate(numbers):
        sim, mode = (f"{sim_prefix}{i}", "dial_out") if sim_prefix else ("", "dial_in")
        csv.write(f"{number},DCU-{i // 500},hes_sim,{sim},{mode},active\n")
    resp = hes.api("POST", "/meter/import", files={"file": ("m.csv", csv.getvalue().encode())}, timeout=600)
    wait_import(hes, resp)


def wait_import(hes: LiveHes, resp) -> None:
    """An import answers 202 with a job: wait until it finished, and check it created the rows."""
    assert resp.status_code in (200, 202), resp.text
    if resp.status_code == 202:
        url = resp.json()["status_url"]
        job = hes.wait_for(lambda: (j := hes.http.get(f"{hes.url}{url}", timeout=30).json())["finished_at"] and j,
                           timeout=900, interval=1, what="meter import")
        assert job["state"] == "done" and not job["errors"], job


def online_count(hes: LiveHes) -> int:
    """Meters the HES shows online."""
    return hes.api("GET", "/meter/?q=(filters:!((col:online,opr:eq,value:!t)),page_size:1)").json()["count"]


def bench_connections(steps: list[int], settle: float) -> list[tuple]:
    """Grow the dial-in fleet step by step and measure the node."""
    hes = LiveHes(Path(tempfile.mkdtemp(prefix="hes-bench-conn-")),
                  env={"HES_HEARTBEAT_SECONDS": "60", "HES_SCHEDULER": "off", "HES_IDENTIFY_TIMEOUT": "60"}).start()
    sims = []
    rows = []
    try:
        brand = hes.api("GET", "/brand/?q=(filters:!((col:name,opr:eq,value:hes_sim)))").json()["ids"][0]
        hes.api("PUT", f"/brand/{brand}/credentials", json={"password": PASSWORD.decode()})
        import_meters(hes, [f"CON{i:08d}" for i in range(1, steps[-1] + 1)])
        base_rss = rss_kb(hes.proc.pid)
        have = 0
        for target in steps:
            sims.append(start_simulator(meters=target - have, listen=False, dial_in=hes.meter_address,
                                        first_serial=have + 1, heartbeat_seconds=60, extra=["--prefix", "CON"]))
            started = time.monotonic()
            hes.wait_for(lambda target=target: online_count(hes) >= target, timeout=600, interval=2,
                         what=f"{target} meters online")
            connect_seconds = time.monotonic() - started
            time.sleep(settle)
            cpu0, t0 = cpu_seconds(hes.proc.pid), time.monotonic()
            time.sleep(settle)
            cpu = (cpu_seconds(hes.proc.pid) - cpu0) / (time.monotonic() - t0) * 100
            rss = rss_kb(hes.proc.pid)
            rows.append((target, f"{rss / 1024:.0f} MiB", f"{(rss - base_rss) / target:.1f} KiB",
                         f"{cpu:.1f} %", f"{connect_seconds:.0f} s"))
            have = target
    finally:
        for sim in sims:
            sim.stop()
        hes.stop()
    return rows


def bench_reads(meters: int, seconds: float, threads: int, port_base: int | None = None) -> dict[str, float]:
    """Read sessions/s three ways against one simulator: bare gurux loop, the HES comms service path
    (run_on_meter: registry, secrets, session, scaling — what every HES read goes through), and the
    full REST API of a running HES (adds HTTP, JWT, permissions, JSON). ``port_base``: the HES's web and
    meter ports, the simulator's control port and its meters' ports from there on (else ephemeral ports)."""
    ports: list[str] = []
    if port_base:
        ports = ["--control", f"127.0.0.1:{port_base + 2}",
                 "--listen", f"127.0.0.1:{port_base + 10}-{port_base + 10 + meters - 1}"]
    sim = start_simulator(meters=meters, first_serial=1, history_days=2, extra=["--prefix", "RDB", *ports])
    hes = LiveHes(Path(tempfile.mkdtemp(prefix="hes-bench-read-")),
                  env={"HES_SCHEDULER": "off", "HES_RESPONSE_TIMEOUT": "20"},
                  web_port=port_base or None, meter_port=port_base + 1 if port_base else None).start()
    try:
        brand = hes.api("GET", "/brand/?q=(filters:!((col:name,opr:eq,value:hes_sim)))").json()["ids"][0]
        hes.api("PUT", f"/brand/{brand}/credentials", json={"password": PASSWORD.decode()})
        sims = io.StringIO("Sim Number,IP Address,Port\n" + "".join(
            f"RDB-SIM{i},127.0.0.1,{sim.port(i)}\n" for i in range(meters)))
        assert hes.api("POST", "/sim/import", files={"file": ("s.csv", sims.getvalue().encode())}).status_code == 200
        import_meters(hes, [sim.serial(i) for i in range(meters)], sim_prefix="RDB-SIM")
        ids = hes.api("GET", f"/meter/?q=(page_size:{min(meters, 500)},order_column:number,order_direction:asc)")
        meter_ids = ids.json()["ids"]
        end = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
        end -= dt.timedelta(minutes=end.minute % 15)
        body = {"points": ["clock", "energy_import", "voltage_l1", "load_profile"],
                "from": (end - dt.timedelta(minutes=15 * 95)).isoformat(), "to": end.isoformat()}

        def rest_session(i: int) -> None:
            resp = hes.http.post(f"{hes.url}/api/v1/meter/{meter_ids[i % len(meter_ids)]}/read", timeout=60,
                                 json=body)
            if resp.status_code != 200 or len(resp.json()["results"][3]["rows"]) != 96:
                raise RuntimeError(resp.text[:200])

        def bare_session(i: int) -> None:
            BareClient(sim.port(i % meters), "wrapper", "low", [1], PASSWORD).run_session()

        service_session = _service_reader(hes, meter_ids, body)
        rates: dict[str, float] = {}
        warm: dict[str, bool] = {}
        pids = {"bench": os.getpid(), "hes": hes.proc.pid, "sim": sim.proc.pid}

        def measured(name: str, session) -> float:
            """Sessions/s, and each process's CPU ms per session (a figure the machine's load bends less).
            The HES paths first read each meter once, untimed: a head-end talks to the same meters all day, so
            its steady state has each meter's capture objects and scalers known (the bare loop keeps nothing)."""
            if name != "bare" and not warm.get(name):
                for i in range(len(meter_ids)):
                    session(i)
                warm[name] = True
            before = {k: cpu_seconds(pid) for k, pid in pids.items()}
            started = time.monotonic()
            rate = _rate(session, seconds, threads)
            count = max(1.0, rate * (time.monotonic() - started))
            for key, pid in pids.items():
                cpu = (cpu_seconds(pid) - before[key]) * 1000 / count
                rates[f"cpu_{name}_{key}"] = (rates.get(f"cpu_{name}_{key}", 0.0) + cpu) / (2 if name == "bare"
                                                                                          and "bare" in rates else 1)
            return rate

        rates["bare"] = measured("bare", bare_session)
        rates["service"] = measured("service", service_session)
        rates["rest"] = measured("rest", rest_session)
        rates["bare"] = (rates["bare"] + measured("bare", bare_session)) / 2  # before and after
        return rates
    finally:
        hes.stop()
        sim.stop()


def _service_reader(hes: LiveHes, meter_ids: list[int], body: dict):
    """A session function running the HES read operation in this process, on the live HES's database."""
    import os

    os.environ["HES_DATA_DIR"] = str(hes.data_dir)  # same SQLite file and secrets key as the live HES
    from app import create_app
    from app.services.meter_access import execute_local

    app = create_app()

    def session(i: int) -> None:
        with app.app_context():
            results = execute_local(meter_ids[i % len(meter_ids)], "read_points", refs=body["points"],
                                    start=body["from"], end=body["to"])
        if len(results[3]["rows"]) != 96:
            raise RuntimeError("short profile")

    session.app = app
    return session


def _rate(session, seconds: float, threads: int) -> float:
    done, errors, lock = [0], [0], threading.Lock()
    deadline = time.monotonic() + seconds

    def worker(offset: int) -> None:
        i = offset
        while time.monotonic() < deadline:
            try:
                session(i)
                with lock:
                    done[0] += 1
            except Exception as exc:  # a bench counts failures and goes on
                with lock:
                    errors[0] += 1
                print(f"session error: {exc}", file=sys.stderr)
            i += threads

    started = time.monotonic()
    pool = [threading.Thread(target=worker, args=(n * 7919,)) for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return done[0] / (time.monotonic() - started)


def main() -> None:
    """Run both parts and print their tables."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", default="1000,5000,10000", help="dial-in fleet sizes for (a)")
    parser.add_argument("--settle", type=float, default=20.0, help="seconds to settle and to measure CPU over")
    parser.add_argument("--read-meters", type=int, default=1000)
    parser.add_argument("--read-seconds", type=float, default=30.0)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--only", choices=("connections", "reads"))
    parser.add_argument("--port-base", type=int, help="reads: ports from here on (HES web, meter, simulator "
                                                        "control, then one per meter); default ephemeral")
    args = parser.parse_args()
    if args.only != "reads":
        rows = bench_connections([int(s) for s in args.steps.split(",")], args.settle)
        print_table("Dial-in connections held by one node (heartbeat every 60 s)",
                    [("meters", "node RSS", "RSS per connection", "node CPU", "time to all online")] + rows
                    + [("goal", "< 1 GiB at 10,000", "", "", "")])
    if args.only != "connections":
        rates = bench_reads(args.read_meters, args.read_seconds, args.threads, args.port_base)

        def overhead(rate: float) -> str:
            return f"{(rates['bare'] / rate - 1) * 100:.0f} %" if rate else "n/a"

        print_table(f"On-demand read sessions, {args.read_meters} simulated meters, {args.threads} concurrent "
                    "(the HES paths after one untimed read per meter)", [
            ("bare gurux loop sessions/s", f"{rates['bare']:.1f}", "baseline"),
            ("HES comms path (run_on_meter) sessions/s", f"{rates['service']:.1f}", ""),
            ("HES comms path overhead", overhead(rates["service"]), "< 25 %"),
            ("full REST API (HTTP+JWT+JSON) sessions/s", f"{rates['rest']:.1f}", ""),
            ("full REST API overhead", overhead(rates["rest"]), "< 60 %"),
        ])
        cpu = {name: {key: rates[f"cpu_{name}_{key}"] for key in ("bench", "hes", "sim")}
               for name in ("bare", "service", "rest")}
        print_table("CPU ms per read session, by process (same run; the machine's load bends it less than rates)", [
            ("bare loop: bench process / simulator", f"{cpu['bare']['bench']:.1f} / {cpu['bare']['sim']:.1f}",
             "baseline"),
            ("comms path: bench process / simulator", f"{cpu['service']['bench']:.1f} / {cpu['service']['sim']:.1f}",
             f"HES's own CPU {(cpu['service']['bench'] / cpu['bare']['bench'] - 1) * 100:.0f} % over the bare loop"),
            ("REST: HES process / bench (HTTP client) / simulator",
             f"{cpu['rest']['hes']:.1f} / {cpu['rest']['bench']:.1f} / {cpu['rest']['sim']:.1f}",
             f"HES's own CPU {(cpu['rest']['hes'] / cpu['bare']['bench'] - 1) * 100:.0f} % over the bare loop"),
        ])


if __name__ == "__main__":
    main()
