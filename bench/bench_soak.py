"""Soak (issue 13): N simulated dial-in meters for a while at a collection schedule, with tamper pushes,
on-demand reads through the REST API and a group command (disconnect / reconnect, alternating) every few
minutes. The HES process's RSS and open file descriptors are sampled at the end of the warm-up and at the
end, its event-loop lag (p99 and max over the last minute, as it reports them on System › Comms Nodes)
throughout, and its tracked cache sizes at both points, so a leak can be told from a cache filling up.

Goal (issue 13): 5,000 meters for 60 minutes at the real 15-minute schedule; RSS and fds flat after the
warm-up (within 5 %), 0 API errors, loop lag p99 < 100 ms. ``--meters``, ``--minutes`` and
``--interval-minutes`` make a shorter, accelerated run; the table title says which run it was.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_comms import rss_kb, wait_import  # noqa: E402
from bench.common import free_port_in_range, print_table  # noqa: E402
from tests.support.live import LiveHes  # noqa: E402
from tests.support.simulator import PASSWORD, start_simulator  # noqa: E402

GOAL = {"meters": 5000, "minutes": 60, "interval": 15}
ONLINE = "/meter/?q=(filters:!((col:online,opr:eq,value:!t)),page_size:1)"


def serial(index: int) -> str:
    """The meter number at fleet position ``index`` (the simulator numbers them as the CSV does)."""
    return f"SOK{index + 1:08d}"


def online_count(hes: LiveHes) -> int:
    """Meters the HES shows online (-1 when the API did not answer)."""
    try:
        resp = hes.api("GET", ONLINE, timeout=30)
        return resp.json()["count"] if resp.ok else -1
    except Exception:  # counted by the caller's own checks
        return -1


def wait_online(hes: LiveHes, meters: int, timeout: float = 1800) -> None:
    """Wait for the whole fleet online, printing the count every minute (a stuck fleet shows where it stopped)."""
    began, last = time.monotonic(), 0.0
    while (count := online_count(hes)) < meters:
        if time.monotonic() - began > timeout:
            raise AssertionError(f"{count} of {meters} meters online after {timeout:.0f} s\n{hes.tail()}")
        if time.monotonic() - last >= 60:
            print(f"{time.monotonic() - began:5.0f} s: {count} of {meters} online", file=sys.stderr, flush=True)
            last = time.monotonic()
        time.sleep(2)
    print(f"{time.monotonic() - began:5.0f} s: all {meters} online", file=sys.stderr, flush=True)


def restart_postgresql() -> None:
    """Restart the machine's PostgreSQL cluster (every connection is dropped; the HES must reconnect)."""
    import subprocess

    version = sorted(os.listdir("/etc/postgresql"))[0]
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"], check=True,
                   capture_output=True, timeout=120)
    print(f"{time.strftime('%H:%M:%S')}: PostgreSQL restarted", file=sys.stderr, flush=True)


def open_fds(pid: int) -> int:
    """Open file descriptors of a process."""
    return len(os.listdir(f"/proc/{pid}/fd"))


class Errors:
    """API calls that failed (exception or non-2xx), by what was asked and why, with the first and last time.

    A 401 is first answered as an integrator does: log in again (the access token lives HES_JWT_SECONDS, an hour
    by default, so a run longer than that outlives its token) and retry once; only a second refusal counts. A 503
    with Retry-After (the database restarting: nothing was saved) is retried once after the time it names."""

    def __init__(self, hes: LiveHes) -> None:
        self.hes = hes
        self.counts: dict[str, int] = {}
        self.calls: dict[str, int] = {}
        self.reasons: dict[tuple[str, str], list] = {}
        self.relogins = 0
        self.retried_503 = 0
        self.lock = threading.Lock()

    def _attempt(self, request) -> tuple[object | None, str | None]:
        try:
            resp = request()
        except Exception as exc:  # a failing or hanging API during the soak is exactly what is counted
            return None, type(exc).__name__
        return resp, None if 200 <= resp.status_code < 300 else f"HTTP {resp.status_code}"

    def call(self, what: str, request) -> object | None:
        """Make one API call; count it, and count it as an error unless it answered 2xx."""
        with self.lock:
            self.calls[what] = self.calls.get(what, 0) + 1
        resp, failed = self._attempt(request)
        if failed == "HTTP 401" and self.hes.login():
            with self.lock:
                self.relogins += 1
            resp, failed = self._attempt(request)
        if failed == "HTTP 503" and resp.headers.get("Retry-After", "").isdecimal():
            with self.lock:
                self.retried_503 += 1
            time.sleep(min(int(resp.headers["Retry-After"]), 30))
            resp, failed = self._attempt(request)
        if failed:
            now = time.strftime("%H:%M:%S")
            with self.lock:
                self.counts[what] = self.counts.get(what, 0) + 1
                seen = self.reasons.setdefault((what, failed), [0, now, now])
                seen[0], seen[2] = seen[0] + 1, now
        return None if failed else resp

    def summary(self) -> str:
        return ", ".join(f"{what} {self.counts.get(what, 0)}/{n}" for what, n in sorted(self.calls.items()))

    def why(self) -> str:
        """Each kind of failure: how many, first and last time (UTC)."""
        return "; ".join(f"{what}: {reason} ×{n} ({first}–{last})"
                         for (what, reason), (n, first, last) in sorted(self.reasons.items())) or "none"


def process(hes: LiveHes, errors: Errors) -> dict:
    """The HES process's own report (loop lag, RSS, fds, caches)."""
    resp = errors.call("status", lambda: hes.api("GET", "/comms_node/processes", timeout=30))
    return resp.json()["result"][0] if resp is not None and resp.json()["result"] else {}


def main() -> None:
    """Run the load; print warm-up and end samples, errors and loop lag against the goals."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--meters", type=int, default=GOAL["meters"])
    parser.add_argument("--minutes", type=float, default=GOAL["minutes"], help="measured time after the warm-up")
    parser.add_argument("--interval-minutes", type=int, default=GOAL["interval"], help="profile/event schedule")
    parser.add_argument("--warmup-minutes", type=float, default=None,
                        help="before the first sample (default: two schedule intervals, the first with backfill)")
    parser.add_argument("--pushes-per-second", type=float, default=5.0)
    parser.add_argument("--reads-per-minute", type=float, default=30.0, help="on-demand reads via the REST API")
    parser.add_argument("--group-every-minutes", type=float, default=5.0)
    parser.add_argument("--group-size", type=int, default=100)
    parser.add_argument("--postgresql", default="", help="run the HES on this PostgreSQL URL (a throwaway schema)")
    parser.add_argument("--redis", default="", help="run the HES's task queue on this Redis URL (a database it "
                        "may empty), the at-scale configuration; default SQLite")
    parser.add_argument("--token-seconds", type=int, default=None,
                        help="the HES's access-token lifetime (HES_JWT_SECONDS; default an hour): a short one proves "
                        "the client's login-again path inside a short run")
    parser.add_argument("--restart-postgresql-after-minutes", type=float, default=None,
                        help="restart the machine's PostgreSQL cluster this long into the measured time (with "
                        "--postgresql): the HES must ride it out with no API error")
    args = parser.parse_args()
    with database(args.postgresql) as url:
        soak(args, url)


@contextmanager
def database(base_url: str):
    """None (SQLite in the HES's data dir), or a throwaway schema on PostgreSQL as the HES's DATABASE_URL."""
    if not base_url:
        yield None
        return
    from sqlalchemy import create_engine, text

    schema = f"hes_soak_{uuid.uuid4().hex[:8]}"
    engine = create_engine(base_url, pool_pre_ping=True)  # outlives a restart of the cluster
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{base_url}{'&' if '?' in base_url else '?'}options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def soak(args, database_url: str | None) -> None:
    """The run itself."""
    if args.redis:
        import redis

        redis.Redis.from_url(args.redis).flushdb()
    warmup = args.warmup_minutes if args.warmup_minutes is not None else 2 * args.interval_minutes
    hes = LiveHes(Path(tempfile.mkdtemp(prefix="hes-soak-")), web_port=free_port_in_range(),
                  meter_port=free_port_in_range(),
                  env={"HES_HEARTBEAT_SECONDS": "60", "HES_BACKFILL_DAYS": "1", "HES_IDENTIFY_TIMEOUT": "60",
                       "HES_JOBS_PER_MINUTE": "1000", "HES_PROCESS_HEARTBEAT_SECONDS": "10",
                       **({"DATABASE_URL": database_url} if database_url else {}),
                       **({"HES_REDIS_URL": args.redis} if args.redis else {}),
                       **({"HES_JWT_SECONDS": str(args.token_seconds)} if args.token_seconds else {})}
                  ).start(timeout=180)
    sim = None
    stop = threading.Event()
    errors = Errors(hes)
    lag = {"p99": 0.0, "max": 0.0, "reports": 0}
    minutes_p99: list[float] = []
    try:
        brand = hes.api("GET", "/brand/?q=(filters:!((col:name,opr:eq,value:hes_sim)))").json()["ids"][0]
        hes.api("PUT", f"/brand/{brand}/credentials", json={"password": PASSWORD.decode()})
        csv = "Meter Number,Concentrator ID,Meter Type,Comm Mode,Status\n" + "".join(
            f"{serial(i)},DCU,hes_sim,dial_in,active\n" for i in range(args.meters))
        wait_import(hes, hes.api("POST", "/meter/import", files={"file": ("m.csv", io.BytesIO(csv.encode()))},
                                 timeout=600))
        for row in hes.api("GET", "/schedule/?q=(page_size:100)").json()["result"]:
            if row["kind"] in ("load_profile", "events"):
                hes.api("PUT", f"/schedule/{row['id']}", json={
                    "interval_minutes": args.interval_minutes, "spread_seconds": int(args.interval_minutes * 48)})
        control = f"127.0.0.1:{free_port_in_range()}"
        sim = start_simulator(meters=args.meters, listen=False, dial_in=hes.meter_address, heartbeat_seconds=60,
                              history_days=2, extra=["--prefix", "SOK", "--control", control])
        wait_online(hes, args.meters)
        ids = hes.api("GET", f"/meter/?q=(page_size:{min(args.meters, 1000)})").json()["ids"]

        def pushes() -> None:
            import requests

            session, i = requests.Session(), 0
            while not stop.wait(1 / args.pushes_per_second):
                try:
                    session.post(f"{sim.control}/meters/{serial(i % args.meters)}/push", json={"code": 10},
                                 timeout=10)
                except requests.RequestException:
                    pass  # the simulator's control port, not the HES
                i += 1

        def reads() -> None:
            i = 0
            while not stop.wait(60 / args.reads_per_minute):
                meter = ids[(i * 7919) % len(ids)]
                errors.call("on-demand read", lambda m=meter: hes.api(
                    "POST", f"/meter/{m}/read", json={"points": ["energy_import"]}, timeout=60))
                i += 1

        def groups() -> None:
            kinds, i = ("disconnect", "reconnect"), 0
            while not stop.wait(args.group_every_minutes * 60):
                group = ids[-args.group_size:]
                errors.call(f"group {kinds[i % 2]}", lambda k=kinds[i % 2], g=group: hes.api(
                    "POST", "/job/", json={"kind": k, "meter_ids": g, "confirm": True}, timeout=120))
                i += 1

        def watch() -> None:
            while not stop.wait(10):
                errors.call("online count", lambda: hes.api("GET", ONLINE, timeout=30))
                report = process(hes, errors).get("loop_lag") or {}
                if report.get("p99_ms") is not None and measuring.is_set():
                    lag["p99"], lag["max"] = max(lag["p99"], report["p99_ms"]), max(lag["max"], report["max_ms"])
                    lag["reports"] += 1
                    minutes_p99.append(report["p99_ms"])

        measuring = threading.Event()
        workers = [threading.Thread(target=f, daemon=True) for f in (pushes, reads, groups, watch)]
        for worker in workers:
            worker.start()
        time.sleep(warmup * 60)
        measuring.set()
        start = (rss_kb(hes.proc.pid), open_fds(hes.proc.pid), process(hes, errors).get("caches") or {})
        if args.restart_postgresql_after_minutes is not None and database_url:
            time.sleep(args.restart_postgresql_after_minutes * 60)
            restart_postgresql()
            time.sleep(max(0.0, args.minutes - args.restart_postgresql_after_minutes) * 60)
        else:
            time.sleep(args.minutes * 60)
        end = (rss_kb(hes.proc.pid), open_fds(hes.proc.pid), process(hes, errors).get("caches") or {})
        online = online_count(hes)
        stop.set()
        for worker in workers:
            worker.join(timeout=130)
        real = args.meters >= GOAL["meters"] and args.minutes >= GOAL["minutes"] \
            and args.interval_minutes >= GOAL["interval"]
        speed = GOAL["interval"] / args.interval_minutes
        title = (f"Soak{'' if real else ' (SHORTER, ACCELERATED RUN — not the goal run)'}, "
                 f"{'PostgreSQL' if database_url else 'SQLite'} + {'Redis' if args.redis else 'SQLite'} queue: "
                 f"{args.meters} meters, "
                 f"{warmup:.0f} min warm-up + {args.minutes:.0f} min measured, collection every "
                 f"{args.interval_minutes} min ({speed:.0f}x the real schedule), {args.pushes_per_second:g} pushes/s, "
                 f"{args.reads_per_minute:g} on-demand reads/min, a {args.group_size}-meter group command every "
                 f"{args.group_every_minutes:g} min")

        def growth(a: float, b: float) -> str:
            return f"{(b - a) / max(a, 1) * 100:+.1f} %"

        caches = sorted(set(start[2]) | set(end[2]))
        total_errors = sum(errors.counts.values())
        print_table(title, [
            ("HES RSS after warm-up → end", f"{start[0] / 1024:.0f} → {end[0] / 1024:.0f} MiB "
             f"({growth(start[0], end[0])})", "flat within 5 %"),
            ("open fds after warm-up → end", f"{start[1]} → {end[1]} ({growth(start[1], end[1])})", "flat within 5 %"),
            ("API errors (failed / calls)", f"{total_errors} ({errors.summary()})", "0"),
            ("API errors: why and when (UTC)", errors.why(), "none"),
            ("logins again after the access token expired", f"{errors.relogins}", "(for information)"),
            ("calls sent again after a 503 with Retry-After (database unavailable)", f"{errors.retried_503}",
             "(for information)"),
            ("loop lag p99, worst minute while measured", f"{lag['p99']:.1f} ms ({lag['reports']} reports)",
             "< 100 ms"),
            ("loop lag max, worst minute while measured", f"{lag['max']:.1f} ms", "< 1000 ms"),
            ("loop lag p99, median minute while measured",
             f"{statistics.median(minutes_p99):.1f} ms" if minutes_p99 else "n/a", "(for information)"),
            ("meters online at the end", f"{online} / {args.meters}", "all"),
            *((f"cache entries: {name}", f"{start[2].get(name, '–')} → {end[2].get(name, '–')}",
               "bounded by the fleet") for name in caches),
        ])
    finally:
        stop.set()
        if sim is not None:
            sim.stop()
        hes.stop()


if __name__ == "__main__":
    main()
