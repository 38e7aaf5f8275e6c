"""Where a read session's time goes (issue 13): bare gurux loop, HES comms path and REST API, one after another.

Sequential sessions (no concurrency) against one simulator, each kind timed in the same run; with ``--profile``
the comms path runs again under cProfile and the top functions are printed (``--rest-profile`` does the same for
the live HES process serving the REST reads: it runs under cProfile and dumps its stats when stopped).
Run: .venv/bin/python -m bench.profile_reads --sessions 40 --profile [--port-base 21000]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_comms import _service_reader, import_meters  # noqa: E402
from bench.bench_protocol_bare import BareClient  # noqa: E402
from tests.support.live import LiveHes  # noqa: E402
from tests.support.simulator import PASSWORD, start_simulator  # noqa: E402


def _timed(session, count: int, offset: int = 0) -> float:
    """Milliseconds per session over ``count`` sequential sessions."""
    started = time.perf_counter()
    for i in range(count):
        session(offset + i)
    return (time.perf_counter() - started) * 1000 / count


def _top(profile: cProfile.Profile, sessions: int, limit: int) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.sort_stats("tottime").print_stats(limit)
    stats.sort_stats("cumulative").print_stats(limit)
    return f"(totals over {sessions} sessions)\n" + out.getvalue()


def main() -> None:
    """Set up the simulator and a live HES, then time (and optionally profile) each kind of session."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--meters", type=int, default=20)
    parser.add_argument("--sessions", type=int, default=40)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--rest-profile", help="file the live HES writes its cProfile stats to")
    parser.add_argument("--limit", type=int, default=40)
    parser.add_argument("--dump", help="directory to write each profile's pstats file to (service.prof, ...)")
    parser.add_argument("--kinds", default="service,rest-app", help="which kinds to profile")
    parser.add_argument("--port-base", type=int)
    args = parser.parse_args()
    ports: list[str] = []
    if args.port_base:
        ports = ["--control", f"127.0.0.1:{args.port_base + 2}",
                 "--listen", f"127.0.0.1:{args.port_base + 10}-{args.port_base + 10 + args.meters - 1}"]
    sim = start_simulator(meters=args.meters, first_serial=1, history_days=2, extra=["--prefix", "RDB", *ports])
    command = None
    if args.rest_profile:
        command = [sys.executable, "-m", "cProfile", "-o", args.rest_profile, "run.py"]
    hes = LiveHes(Path(tempfile.mkdtemp(prefix="hes-profile-read-")),
                  env={"HES_SCHEDULER": "off", "HES_RESPONSE_TIMEOUT": "20"}, command=command,
                  web_port=args.port_base or None, meter_port=args.port_base + 1 if args.port_base else None).start()
    try:
        brand = hes.api("GET", "/brand/?q=(filters:!((col:name,opr:eq,value:hes_sim)))").json()["ids"][0]
        hes.api("PUT", f"/brand/{brand}/credentials", json={"password": PASSWORD.decode()})
        sims = io.StringIO("Sim Number,IP Address,Port\n" + "".join(
            f"RDB-SIM{i},127.0.0.1,{sim.port(i)}\n" for i in range(args.meters)))
        assert hes.api("POST", "/sim/import", files={"file": ("s.csv", sims.getvalue().encode())}).status_code == 200
        import_meters(hes, [sim.serial(i) for i in range(args.meters)], sim_prefix="RDB-SIM")
        meter_ids = hes.api("GET", f"/meter/?q=(page_size:{args.meters},order_column:number,order_direction:asc)"
                            ).json()["ids"]
        import datetime as dt

        end = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
        end -= dt.timedelta(minutes=end.minute % 15)
        body = {"points": ["clock", "energy_import", "voltage_l1", "load_profile"],
                "from": (end - dt.timedelta(minutes=15 * 95)).isoformat(), "to": end.isoformat()}

        def bare(i: int) -> None:
            BareClient(sim.port(i % args.meters), "wrapper", "low", [1], PASSWORD).run_session()

        def rest(i: int) -> None:
            resp = hes.http.post(f"{hes.url}/api/v1/meter/{meter_ids[i % len(meter_ids)]}/read", timeout=60,
                                 json=body)
            if resp.status_code != 200 or len(resp.json()["results"][3]["rows"]) != 96:
                raise RuntimeError(resp.text[:200])

        service = _service_reader(hes, meter_ids, body)
        from flask import current_app

        with service.app.app_context():  # the same REST request in this process, without the HTTP server
            client = current_app.test_client()
        token = client.post("/api/v1/security/login", json={"username": "admin", "password": hes.password,
                                                             "provider": "db"}).json["access_token"]

        def rest_inprocess(i: int) -> None:
            resp = client.post(f"/api/v1/meter/{meter_ids[i % len(meter_ids)]}/read", json=body,
                               headers={"Authorization": f"Bearer {token}"})
            if resp.status_code != 200 or len(resp.json["results"][3]["rows"]) != 96:
                raise RuntimeError(resp.text[:200])

        kinds = {"bare": bare, "service": service, "rest-app": rest_inprocess, "rest": rest}
        for session in kinds.values():  # warm-up: caches of scalers and capture objects, connections
            _timed(session, len(meter_ids))
        n = args.sessions
        figures = {name: _timed(session, n) for name, session in kinds.items()}
        figures["bare"] = (figures["bare"] + _timed(bare, n)) / 2
        for name, ms in figures.items():
            print(f"{name:8s} {ms:7.1f} ms/session  ({(ms / figures['bare'] - 1) * 100:+.0f} % vs bare)")
        if args.profile:
            for name in args.kinds.split(","):
                profile = cProfile.Profile()
                profile.enable()
                _timed(kinds[name], n)
                profile.disable()
                if args.dump:
                    profile.dump_stats(str(Path(args.dump) / f"{name}.prof"))
                print(f"## {name}\n" + _top(profile, n, args.limit))
    finally:
        hes.stop()
        sim.stop()


if __name__ == "__main__":
    main()
