"""Ground-truth reconciliation under a storm (issue 11): a fleet of simulated meters, dial-out and
dial-in mixed (the dial-in ones hold their sockets on an in-process comms node), is collected (load
profile, daily, billing, event logs; the brand reads profiles by entry) through a scripted storm:

- outages of half an hour to 20 hours (reads fail while they last; the hours they cost are modelled
  by the meter's cursors standing where they stood, i.e. simulated time is accelerated), with a push
  on return;
- clocks that went wrong during such an outage: hours ahead (within the tolerance: stored), days
  ahead, years behind (quarantined); the meter stamps its own profile rows and logs with that clock
  and pushes with it too;
- reboots (the link drops) before a read and, from a background greenlet, in the middle of the
  rounds' profile reads;
- forged plain pushes at collected intervals and tampers pushed and logged;
- firmware transfers on a few meters while the rounds' schedules and on-demand reads hit them.

Then rounds run until the database holds exactly what every meter recorded; printed: missing,
duplicated and wrong values, event figures, rollup mismatches, out-of-range rows (all in quarantine,
none under a cursor), completeness %, the time from the last fault to 100 % complete, and the
event-loop lag (max and p99, ``LoopLagMonitor``) from the storm to the end. The process is
gevent-patched as the live node is (run.py), so work that blocks the hub shows up as lag.

    python bench/bench_reconcile.py --meters 200 [--database-url postgresql+psycopg://... --redis-url redis://...]

With HES_TEST_DATABASE_URL set (as for `make bench`) and no --database-url, the SQLite run is followed by
the same storm on PostgreSQL (a temporary schema) and Redis (HES_TEST_REDIS_URL).

Not here: a kill -9 of the node and a PostgreSQL restart during collection are proved against a live
HES by tests/scale/test_faults.py (this bench runs in one process against a shared PostgreSQL).
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import os  # noqa: E402
import queue  # noqa: E402
import random  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import bench_app, print_table  # noqa: E402
from tests.support.simulator import (  # noqa: E402
    profiles_read_by_entry,
    register_meters,
    start_simulator,
)

LAG_WINDOW_SECONDS = 4 * 3600.0  # the whole storm and the rounds after it, not the monitor's last minute
KINDS = ("collect_load_profile", "collect_daily_snapshot", "collect_billing", "collect_events")
HISTORY_DAYS = 40


@dataclass(frozen=True)
class FleetMeter:
    """One simulated meter and its row in the HES."""

    sim: object
    index: int
    meter_id: int
    dial_in: bool

    @property
    def serial(self) -> str:
        return self.sim.serial(self.index)

    def post(self, action: str, body: dict) -> dict:
        return self.sim.post(f"/meters/{self.serial}/{action}", body)


class PushSink:
    """The HES side of pushes: accepts the simulators' connections and queues each frame."""

    def __init__(self) -> None:
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(64)
        self.frames: queue.Queue = queue.Queue()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def address(self) -> str:
        host, port = self.server.getsockname()
        return f"{host}:{port}"

    def _accept(self) -> None:
        from app.comms.framing import SocketStream

        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            try:
                self.frames.put(SocketStream(conn, "wrapper", 5).recv_frame())
            except Exception:  # noqa: BLE001 - a broken push is the simulator's problem here
                pass
            finally:
                conn.close()

    def next(self, timeout: float = 10.0) -> bytes:
        return self.frames.get(timeout=timeout)

    def drain(self) -> None:
        """Forget frames nobody waits for (pushes of events the logs carry anyway)."""
        while not self.frames.empty():
            self.frames.get_nowait()


def wait_connected(fleet: list[FleetMeter], timeout: float = 90.0) -> int:
    """Wait until every dial-in meter holds a socket on the node; returns how many still do not."""
    from app.comms.node import get_node

    node = get_node()
    deadline = time.monotonic() + timeout
    while True:
        missing = [m for m in fleet if m.dial_in and node.connection(m.meter_id) is None]
        if not missing or time.monotonic() > deadline:
            return len(missing)
        gevent.sleep(0.5)


READING: dict[str, FleetMeter] = {}  # the meter the round is reading now (the reboots pick it)


def collect_all(fleet: list[FleetMeter], failures: list[str]) -> None:
    """One collection round over every meter; a failed read is counted and left to the next round."""
    from app.extensions import db
    from app.services.meter_access import execute_local

    for meter in fleet:
        READING["now"] = meter
        for kind in KINDS:
            try:
                execute_local(meter.meter_id, kind)
            except Exception as exc:  # noqa: BLE001 - an unreachable or rebooting meter fails its read
                db.session.rollback()
                failures.append(f"{meter.meter_id}:{kind}:{type(exc).__name__}")


def reconcile(fleet: list[FleetMeter], began: float, ended: float):
    """Compare rows captured in [began, ended]: ended is when the last round started, so an interval
    that fell due while the round ran is not counted as missing before the next round could read it."""
    from app.services.reconcile import Reconciliation, finish, reconcile_meter

    result = Reconciliation()
    for meter in fleet:
        record = meter.sim.get(f"/meters/{meter.serial}/record?from={began - 86400 + 60}&to={ended}")
        record["billing"] = meter.sim.get(f"/meters/{meter.serial}/record?from=0&to={ended}&parts=billing")["billing"]
        reconcile_meter(result, meter.meter_id, record)
    return finish(result)


def rewind(meter: FleetMeter, hours: float) -> None:
    """Model an outage of ``hours``: the meter's cursors stand where they stood then (the entry they stood
    at is not known: the next read starts from the time), and what was read since is gone."""
    from app.extensions import db
    from app.models import CollectionCursor, Reading
    from app.services.ingest import channel_id
    from app.services.rollups import IMPORT_OBIS, refresh_rollups

    for profile in ("load_profile", "log:standard", "log:tamper", "log:power"):
        cursor = db.session.get(CollectionCursor, (meter.meter_id, profile))
        if cursor is None:
            continue
        since = cursor.last_ts - dt.timedelta(hours=hours)
        if profile == "load_profile":
            db.session.execute(Reading.__table__.delete().where(Reading.meter_id == meter.meter_id,
                                                                Reading.ts > since))
            # The rollups never saw what was never received.
            refresh_rollups({(meter.meter_id, channel_id(IMPORT_OBIS), ts): (0.0,)
                             for ts in (since, cursor.last_ts)})
        cursor.last_ts, cursor.last_entry = since, None
    db.session.commit()


def storm(fleet: list[FleetMeter], sink: PushSink, rng: random.Random) -> dict[str, int]:
    """Faults on a share of the fleet; returns how many of each."""
    from app.extensions import db
    from app.models import CollectionCursor, Source
    from app.services.ingest import Value, store_readings
    from app.services.meter_access import execute_local
    from app.services.push_ingest import handle_push

    counts = dict.fromkeys(("outages", "pushes_on_return", "bad_clocks (rows and a push)", "link_drops",
                            "forged_pushes", "tampers"), 0)
    meters = list(fleet)
    rng.shuffle(meters)
    share = max(1, len(meters) // 10)
    outage, clocks, drops, forged, tampers = (meters[k * share:(k + 1) * share] for k in range(5))
    sink.drain()
    for meter in outage:
        meter.post("fault", {"kind": "offline"})
        try:
            execute_local(meter.meter_id, "collect_load_profile")
        except Exception:  # noqa: BLE001 - expected: the meter is unreachable
            db.session.rollback()
        rewind(meter, rng.choice([0.5, 1, 3, 8, 20]))
        meter.post("fault", {"kind": "offline", "active": False})
        meter.post("push", {"code": 0})
        handle_push(meter.meter_id, sink.next())
        counts["outages"] += 1
        counts["pushes_on_return"] += 1
    for meter in clocks:
        # The clock went wrong during an outage of a few hours: the rows captured since carry its stamps.
        hours = rng.choice([2, 4, 6])
        offset = rng.choice([3 * 3600, 2 * 86400, 30 * 86400, -900 * 86400, -3000 * 86400])
        rewind(meter, hours)
        meter.post("clock", {"offset_seconds": offset, "since_seconds_ago": hours * 3600})
        meter.post("push", {"code": 0})
        handle_push(meter.meter_id, sink.next())
        meter.post("clock", {"offset_seconds": 0})
        counts["bad_clocks (rows and a push)"] += 1
    for meter in drops:
        meter.post("fault", {"kind": "link_drop"})
        counts["link_drops"] += 1
    for meter in forged:
        cursor = db.session.get(CollectionCursor, (meter.meter_id, "load_profile"))
        if cursor is not None:
            store_readings([Value(meter.meter_id, "1.0.1.8.0.255", cursor.last_ts, 1.0, source=Source.PUSH,
                                  authenticated=False)])
            counts["forged_pushes"] += 1
    for meter in tampers:
        meter.post("clock", {"offset_seconds": rng.randint(-60, 60)})
        meter.post("event", {"code": rng.choice([10, 11, 12])})
        handle_push(meter.meter_id, sink.next())
        counts["tampers"] += 1
    gevent.sleep(1.5)  # the storm ends over a second before the first round (its window's end)
    return counts


def reboots_during(fleet: list[FleetMeter], rng: random.Random, count: int, spread: float, done: list[int],
                   last_fault: list[float]) -> None:
    """Reboot ``count`` meters within ``spread`` seconds, each while the round is reading it: the link
    drops in the middle of its profile reads, and the meter is back 3 s later."""
    for _ in range(count):
        gevent.sleep(rng.uniform(0, spread / max(count, 1)))
        meter = READING.get("now")
        if meter is None:
            continue
        gevent.sleep(rng.uniform(0.02, 0.2))
        try:
            meter.post("fault", {"kind": "link_drop", "seconds": 3})  # down for 3 s, then back
        except OSError:
            continue
        done.append(meter.meter_id)
        last_fault[0] = time.perf_counter()


def firmware_during(app, meters: list[FleetMeter], outcome: dict[int, str]) -> list[gevent.Greenlet]:
    """A firmware transfer (64 KiB) to each meter, running beside the rounds; an on-demand read of each
    meter goes in while its transfer runs (it borrows the transfer's association between blocks)."""
    from app.services.commands.queue import create_command, execute
    from app.services.firmware import upload_image
    from app.services.meter_access import execute_local

    image = upload_image("HESSIM-STORM-1", os.urandom(64 * 1024))

    def transfer(meter: FleetMeter, command_id: int) -> None:
        with app.app_context():
            outcome[meter.meter_id] = execute(command_id) or "?"

    def on_demand(meter: FleetMeter) -> None:
        with app.app_context():
            gevent.sleep(0.5)
            try:
                execute_local(meter.meter_id, "read_points", refs=["energy_import"])
                outcome[-meter.meter_id] = "read"
            except Exception as exc:  # noqa: BLE001 - counted in the table
                outcome[-meter.meter_id] = f"read failed: {exc}"

    greenlets = []
    for meter in meters:
        command, _ = create_command("firmware", meter.meter_id, {"image_id": image.id})
        greenlets += [gevent.spawn(transfer, meter, command.id), gevent.spawn(on_demand, meter)]
    return greenlets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--meters", type=int, default=200)
    parser.add_argument("--dial-in-share", type=float, default=0.3)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--redis-url", default=None, help="Huey queues, the meter gate and Socket.IO on Redis")
    parser.add_argument("--postgresql", default=os.environ.get("HES_TEST_DATABASE_URL", ""),
                        help="after the SQLite run, run again on this PostgreSQL (a temporary schema) with Redis "
                             "(--redis-url or HES_TEST_REDIS_URL); `make bench` passes it through the environment")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--max-rounds", type=int, default=5)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    if args.redis_url:
        os.environ["HES_REDIS_URL"] = args.redis_url
    app = bench_app(args.database_url, HES_BACKFILL_DAYS=1, HES_METER_LISTEN="127.0.0.1:0",
                    HES_RESPONSE_TIMEOUT=10, HES_DIAL_ATTEMPTS=1)
    sink = PushSink()
    dial_in_count = int(args.meters * args.dial_in_share)
    from app.comms.node import CommsNode
    from app.services.comms_node import node_handlers

    node = CommsNode(app, handlers=node_handlers(app)).start()
    address = f"{node.listen[0]}:{node.listen[1]}"
    sims = [start_simulator(meters=args.meters - dial_in_count, history_days=HISTORY_DAYS, seed=args.seed,
                            first_serial=50001, push_to=sink.address, extra=["--prefix", "REC"])]
    if dial_in_count:
        sims.append(start_simulator(meters=dial_in_count, history_days=HISTORY_DAYS, seed=args.seed + 1,
                                    first_serial=60001, push_to=sink.address, listen=False, dial_in=address,
                                    heartbeat_seconds=30, extra=["--prefix", "RDI"]))
    firmware: dict[int, str] = {}
    reboots: list[int] = []
    try:
        with app.app_context(), profiles_read_by_entry():
            from app.extensions import db

            installed = dt.datetime.fromtimestamp(sims[0].install_time, dt.UTC)
            fleet = [FleetMeter(sims[0], i, meter_id, False) for i, meter_id in
                     enumerate(register_meters(sims[0], prefix="REC", installed_at=installed))]
            if dial_in_count:
                fleet += [FleetMeter(sims[1], i, meter_id, True) for i, meter_id in
                          enumerate(register_meters(sims[1], prefix="RDI", dial_in=True, installed_at=installed))]
            not_connected = wait_connected(fleet)
            failures: list[str] = []
            t0 = time.perf_counter()
            collect_all(fleet, failures)
            first_round = time.perf_counter() - t0
            # Every meter's backfill window starts one day before its own first read: compare from the latest.
            began = time.time()
            from app.comms.looplag import LoopLagMonitor

            lag = LoopLagMonitor(window=LAG_WINDOW_SECONDS).start()
            counts = storm(fleet, sink, rng)
            last_fault = [time.perf_counter()]
            dial_out = [m for m in fleet if not m.dial_in]
            greenlets = firmware_during(app, rng.sample(dial_out, min(3, len(dial_out))), firmware)
            greenlets.append(gevent.spawn(reboots_during, fleet, rng, max(2, len(fleet) // 20),
                                          max(10.0, first_round), reboots, last_fault))
            rounds, result = 0, None
            while rounds < args.max_rounds:
                rounds += 1
                wait_connected(fleet, timeout=70)
                round_began = time.time() - 1
                collect_all(fleet, failures)
                greenlets[-1].join()  # the reboots fall in the first round
                result = reconcile(fleet, began, round_began)
                if result.clean and result.completeness_pct == 100.0 and all(g.ready() for g in greenlets):
                    break
            to_complete = time.perf_counter() - last_fault[0]
            gevent.joinall(greenlets, timeout=120)
            loop_lag = lag.snapshot()
            lag.stop()
            backend = db.engine.dialect.name
    finally:
        node.stop()
        for sim in sims:
            sim.stop()
    transfers = [v for k, v in firmware.items() if k > 0]
    reads = [v for k, v in firmware.items() if k < 0]
    rows = [("meters (dial-out + dial-in)", f"{args.meters - dial_in_count} + {dial_in_count}", "≥ 200, mixed"),
            ("database", backend, "SQLite and PostgreSQL"),
            ("dial-in meters not connected at the start", not_connected, "0"),
            ("first round (s)", f"{first_round:.1f}", ""), *((k, v, "") for k, v in counts.items()),
            ("reboots during the rounds' reads", len(reboots), ""),
            ("firmware transfers beside the rounds (succeeded)", f"{transfers.count('succeeded')} of {len(transfers)}",
             "all"),
            ("on-demand reads during a transfer (read)", f"{reads.count('read')} of {len(reads)}", "all"),
            ("failed reads (retried next round)", len(failures), ""),
            ("values recorded by the meters", result.expected, ""), ("missing", result.missing, "0"),
            ("duplicated", result.duplicated, "0"), ("wrong", result.wrong, "0"),
            ("events recorded", result.events, ""), ("events missing", result.events_missing, "0"),
            ("events duplicated", result.events_duplicated, "0"),
            ("rollup buckets ≠ sum of readings", result.rollup_mismatches, "0"),
            ("out-of-range rows the meters stamped", result.out_of_range, ""),
            ("… of them not in quarantine", result.quarantine_missing, "0"),
            ("out-of-range timestamps stored", result.out_of_range_stored, "0"),
            ("cursors on an out-of-range time", result.cursors_out_of_range, "0"),
            ("quarantined rows", result.quarantined, "out-of-range rows + bad-clock pushes beyond the tolerance"),
            ("completeness %", result.completeness_pct, "100"), ("rounds after the storm", rounds, ""),
            ("last fault → 100 % complete (s)", f"{to_complete:.1f}", ""),
            ("event-loop lag max, storm → complete (ms)", loop_lag["max_ms"], "< 1000"),
            ("event-loop lag p99, storm → complete (ms)", loop_lag["p99_ms"], f"{loop_lag['samples']} samples")]
    print_table("Ground-truth reconciliation (issue 11)", rows)
    if result.examples:
        print("\nexamples:", *result.examples, sep="\n  ")
    if any(v != "read" for v in reads) or any(v != "succeeded" for v in transfers):
        print("\nfirmware / on-demand:", firmware)
    if args.postgresql and not args.database_url:
        again_on_postgresql(args)


def again_on_postgresql(args) -> None:
    """The same storm on PostgreSQL (+ Redis when given), in a schema of its own, in a fresh process."""
    import subprocess
    import uuid

    from sqlalchemy import create_engine, text

    schema = f"hes_reconcile_{uuid.uuid4().hex[:8]}"
    engine = create_engine(args.postgresql)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in args.postgresql else "?"
    command = [sys.executable, str(Path(__file__).resolve()), "--meters", str(args.meters), "--seed", str(args.seed),
               "--database-url", f"{args.postgresql}{sep}options=-csearch_path%3D{schema}"]
    redis_url = args.redis_url or os.environ.get("HES_TEST_REDIS_URL")
    if redis_url:
        command += ["--redis-url", redis_url]
    try:
        subprocess.run(command, check=False, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


if __name__ == "__main__":
    main()
