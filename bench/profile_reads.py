"""Where a read session's time goes (issue 13): bare gurux loop, HES comms path and REST API, one after another.

Sequential sessions (no concurrency) against one simulator, each kind timed in the same run; with ``--profile``
the comms path runs again under cProfile and the top functions are printed (``--rest-profile`` does the same for
the live HES process while it serves the timed REST reads: ``bench.profiled_run`` switches its profiler on and off).
Run: .venv/bin/python -m bench.profile_reads --sessions 40 --profile [--port-base 21000]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_comms import _rate, _service_reader, cpu_seconds, import_meters  # noqa: E402
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


SECTIONS = [  # (module, attribute path) of what an API read passes through, timed inclusive
    ("flask.app", "Flask.wsgi_app"), ("flask.app", "Flask.preprocess_request"), ("flask.app", "Flask.process_response"),
    ("flask.ctx", "RequestContext.push"), ("flask.ctx", "RequestContext.pop"),
    ("flask_appbuilder.security.decorators", "verify_jwt_in_request"),
    ("flask_jwt_extended.view_decorators", "decode_token"),
    ("flask_jwt_extended.view_decorators", "verify_token_not_blocklisted"),
    ("app.security", "HesSecurityManager.get_user_by_id"), ("app.security", "HesSecurityManager.get_user_and_epoch"),
    ("app.services.sessions", "_epoch"),
    ("app.security", "HesSecurityManager.is_item_public"), ("app.security", "HesSecurityManager._grants_stamp"),
    ("flask_appbuilder.security.manager", "BaseSecurityManager.has_access"),
    ("app.views.meter_ops_api", "MeterOperationsMixin._meter_visible"), ("app.views.meter_ops_api", "load_meter_view"),
    ("app.services.reads", "read_now"), ("app.services.reads", "load_meter_view"),
    ("app.services.meter_access", "execute_local"), ("app.comms.session", "DlmsSession._rows"),
    ("app.services.meter_ops", "profile_table"), ("app.comms.session", "DlmsSession._make_client"),
    ("app.comms.session", "DlmsSession._recv"), ("app.comms.session", "DlmsSession._send"),
    ("gurux_dlms.GXDLMSClient", "GXDLMSClient.getData"), ("app.services.meter_access", "load_meter_view"),
    ("app.services.meter_access", "dial"),
    ("app.comms.session", "DlmsSession.associate"), ("app.comms.session", "DlmsSession.release"),
    ("app.comms.session", "DlmsSession.__init__"), ("app.services.meter_view", "MeterView.session_params"),
    ("app.services.operations", "Operation.load"), ("app.services.meter_ops", "read_points"),
    ("app.services.meter_ops", "_prefetch"), ("app.comms.session", "DlmsSession.read_profile"),
    ("app.comms.session", "DlmsSession._profile_object"), ("gurux_dlms.GXDLMSClient", "GXDLMSClient.readRowsByRange"),
    ("app.services.health", "session_succeeded"), ("app.services.identity", "learn_system_title"),
    ("app.services.reads", "audit.record"), ("app.services.reads", "audit.append"),
    ("sqlalchemy.orm.session", "Session.commit"),
    ("flask_appbuilder.api", "BaseApi.response"),
]


def _sections(request, n: int, title: str) -> str:
    """CPU ms per request (this thread's: the load of other processes bends it less than wall time) spent in
    each of SECTIONS (inclusive), by wrapping them with timers."""
    import functools
    import importlib

    spent: dict[str, float] = {}
    undo = []
    for module_name, path in SECTIONS:
        owner = importlib.import_module(module_name)
        *parents, attr = path.split(".")
        for part in parents:
            owner = getattr(owner, part)
        original = owner.__dict__.get(attr) if isinstance(owner, type) else getattr(owner, attr, None)
        if original is None or isinstance(original, (staticmethod, classmethod)):
            continue

        def timed(*args, __f=original, __k=f"{module_name}.{path}", **kwargs):
            t0 = time.thread_time()
            try:
                return __f(*args, **kwargs)
            finally:
                spent[__k] = spent.get(__k, 0.0) + time.thread_time() - t0

        setattr(owner, attr, functools.wraps(original)(timed))
        undo.append((owner, attr, original))
    try:
        cpu = time.thread_time()
        total = _timed(lambda i: request(), n)
        cpu = (time.thread_time() - cpu) * 1000 / n
    finally:
        for owner, attr, original in reversed(undo):
            setattr(owner, attr, original)
    lines = [f"## sections of an in-process {title} (CPU ms per request, inclusive; total {cpu:.2f} CPU, "
             f"{total:.2f} wall)"]
    lines += [f"{spent[k] * 1000 / n:8.3f}  {k}" for k in (f"{m}.{p}" for m, p in SECTIONS) if k in spent]
    return "\n".join(lines) + "\n"


def main() -> None:
    """Set up the simulator and a live HES, then time (and optionally profile) each kind of session."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--meters", type=int, default=20)
    parser.add_argument("--sessions", type=int, default=40)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--rest-profile", help="file the live HES writes its cProfile stats to (of the sequential "
                                               "REST reads, or with --threads of the concurrent ones)")
    parser.add_argument("--limit", type=int, default=40)
    parser.add_argument("--dump", help="directory to write each profile's pstats file to (service.prof, ...)")
    parser.add_argument("--kinds", default="service,rest-app", help="which kinds to profile")
    parser.add_argument("--port-base", type=int)
    parser.add_argument("--threads", type=int, default=1, help="also REST reads this many at a time (CPU figure)")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long the concurrent REST reads run")
    parser.add_argument("--sections", action="store_true",
                        help="time the parts of an in-process REST read with timers (no profiler), per request")
    args = parser.parse_args()
    ports: list[str] = []
    if args.port_base:
        ports = ["--control", f"127.0.0.1:{args.port_base + 2}",
                 "--listen", f"127.0.0.1:{args.port_base + 10}-{args.port_base + 10 + args.meters - 1}"]
    sim = start_simulator(meters=args.meters, first_serial=1, history_days=2, extra=["--prefix", "RDB", *ports])
    command = None
    if args.rest_profile:  # profiled only while the REST reads are timed (SIGUSR1 .. SIGUSR2)
        command = [sys.executable, "-m", "bench.profiled_run", str(Path(args.rest_profile).resolve())]
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

        def rest_404(i: int) -> None:  # the REST layer alone: a read of a meter that does not exist
            resp = client.post("/api/v1/meter/99999999/read", json=body, headers={"Authorization": f"Bearer {token}"})
            if resp.status_code != 404:
                raise RuntimeError(resp.text[:200])

        kinds = {"bare": bare, "service": service, "rest-app": rest_inprocess, "rest": rest, "rest-404": rest_404}
        for session in kinds.values():  # warm-up: caches of scalers and capture objects, connections
            _timed(session, len(meter_ids))
        n = args.sessions
        hes_cpu = cpu_seconds(hes.proc.pid)
        figures = {}
        for name, session in kinds.items():
            profiled = name == "rest" and args.rest_profile and args.threads == 1
            if profiled:
                os.kill(hes.proc.pid, signal.SIGUSR1)
            figures[name] = _timed(session, n)
            if profiled:
                os.kill(hes.proc.pid, signal.SIGUSR2)
                print(f"live HES profile of {n} REST reads: {args.rest_profile}")
        figures["bare"] = (figures["bare"] + _timed(bare, n)) / 2
        for name, ms in figures.items():
            print(f"{name:8s} {ms:7.1f} ms/session  ({(ms / figures['bare'] - 1) * 100:+.0f} % vs bare)")
        # This process's CPU per session of the kinds it runs itself (bare loop, comms path), as bench_comms counts.
        cpu = {}
        for name in ("bare", "service"):
            started = time.thread_time()
            _timed(kinds[name], n)
            cpu[name] = (time.thread_time() - started) * 1000 / n
        print(f"CPU per session in this process: bare loop {cpu['bare']:.2f} ms, comms path {cpu['service']:.2f} ms "
              f"({(cpu['service'] / cpu['bare'] - 1) * 100:+.0f} %)")
        # The live HES's CPU per REST read, sequential (only "rest" reaches it; its idle work is counted too).
        started, hes_cpu = time.perf_counter(), cpu_seconds(hes.proc.pid)
        _timed(rest, n)
        print(f"live HES CPU per REST read: {(cpu_seconds(hes.proc.pid) - hes_cpu) * 1000 / n:.1f} ms "
              f"(wall {(time.perf_counter() - started) * 1000 / n:.1f} ms)")
        def rest_404_live(i: int) -> None:
            if hes.http.post(f"{hes.url}/api/v1/meter/99999999/read", timeout=60, json=body).status_code != 404:
                raise RuntimeError("expected 404")

        _timed(rest_404_live, 10)
        started, hes_cpu = time.perf_counter(), cpu_seconds(hes.proc.pid)
        _timed(rest_404_live, n * 4)
        print(f"live HES CPU per REST 404 read (HTTP, security checks, no meter): "
              f"{(cpu_seconds(hes.proc.pid) - hes_cpu) * 1000 / (n * 4):.2f} ms "
              f"(wall {(time.perf_counter() - started) * 1000 / (n * 4):.1f} ms)")
        if args.threads > 1:  # as bench_comms runs them: the HES's CPU per read when reads overlap
            if args.rest_profile:  # with --threads, the live HES is profiled while the reads overlap
                os.kill(hes.proc.pid, signal.SIGUSR1)
            started, hes_cpu = time.monotonic(), cpu_seconds(hes.proc.pid)
            rate = _rate(rest, args.seconds, args.threads)
            if args.rest_profile:
                os.kill(hes.proc.pid, signal.SIGUSR2)
                print(f"live HES profile of the concurrent REST reads: {args.rest_profile}")
            count = rate * (time.monotonic() - started)
            print(f"live HES CPU per REST read, {args.threads} concurrent: "
                  f"{(cpu_seconds(hes.proc.pid) - hes_cpu) * 1000 / count:.1f} ms ({rate:.1f} reads/s)")
        if args.sections:
            print(_sections(lambda: rest_inprocess(0), n, "read") + _sections(lambda: rest_404(0), n, "404 read")
                  + _sections(lambda: service(0), n, "comms path session"))
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
