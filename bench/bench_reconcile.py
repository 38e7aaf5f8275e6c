"""Ground-truth reconciliation under a storm (issue 11): a fleet of simulated dial-out meters is
collected (load profile, daily, billing, event logs) through random outages (reads fail while they
last; the hours they cost are modelled by the meter's cursors standing where they stood, i.e. the
simulated time is accelerated), pushes on return, clocks days ahead and years behind, link drops
(reboots) before a read, forged plain pushes at collected intervals and tampers pushed and logged.
Then rounds run until the database holds exactly what every meter recorded; printed: missing,
duplicated and wrong values, event figures, rollup mismatches, quarantined rows, completeness %
and the time from the last fault to 100 % complete, and the event-loop lag (max and p99, ops's
``LoopLagMonitor``) from the storm to the end. The process is gevent-patched as the live node is
(run.py), so a read that blocks the hub shows up as lag.

    python bench/bench_reconcile.py --meters 200 [--database-url postgresql+psycopg://...]
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import queue  # noqa: E402
import random  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import bench_app, print_table  # noqa: E402
from tests.support.simulator import PASSWORD, start_simulator  # noqa: E402

LAG_WINDOW_SECONDS = 4 * 3600.0  # the whole storm and the rounds after it, not the monitor's last minute
KINDS = ("collect_load_profile", "collect_daily_snapshot", "collect_billing", "collect_events")


class PushSink:
    """The HES side of pushes: accepts the simulator's connections and queues each frame."""

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


def collect_all(ids: list[int], failures: list[str]) -> None:
    """One collection round over every meter; a failed read is counted and left to the next round."""
    from app.extensions import db
    from app.services.meter_access import execute_local

    for meter_id in ids:
        for kind in KINDS:
            try:
                execute_local(meter_id, kind)
            except Exception as exc:  # noqa: BLE001 - an unreachable meter fails its read
                db.session.rollback()
                failures.append(f"{meter_id}:{kind}:{type(exc).__name__}")


def reconcile(sim, ids: list[int], began: float, ended: float):
    """Compare rows recorded in [began, ended]: ended is when the last round started, so an interval
    that fell due while the round ran is not counted as missing before the next round could read it."""
    from app.services.reconcile import Reconciliation, finish, reconcile_meter

    result = Reconciliation()
    for i, meter_id in enumerate(ids):
        record = sim.get(f"/meters/{sim.serial(i)}/record?from={began - 86400 + 60}&to={ended}")
        record["billing"] = sim.get(f"/meters/{sim.serial(i)}/record?from=0&to={ended}&parts=billing")["billing"]
        reconcile_meter(result, meter_id, record)
    return finish(result)


def storm(sim, sink: PushSink, ids: list[int], rng: random.Random) -> dict[str, int]:
    """Faults on a share of the fleet; returns how many of each."""
    from app.extensions import db
    from app.models import CollectionCursor, Reading, Source
    from app.services.ingest import Value, store_readings
    from app.services.meter_access import execute_local
    from app.services.push_ingest import handle_push

    counts = {"outages": 0, "pushes_on_return": 0, "bad_clock_pushes": 0, "link_drops": 0, "forged_pushes": 0,
              "tampers": 0}
    indices = list(range(len(ids)))
    rng.shuffle(indices)
    share = max(1, len(ids) // 10)
    outage, clocks, drops, forged, tampers = (indices[k * share:(k + 1) * share] for k in range(5))
    for i in outage:
        sim.post(f"/meters/{sim.serial(i)}/fault", {"kind": "offline"})
        try:
            execute_local(ids[i], "collect_load_profile")
        except Exception:  # noqa: BLE001 - expected: the meter is unreachable
            db.session.rollback()
        hours = rng.choice([0.5, 1, 3, 8, 20])
        for profile in ("load_profile", "log:standard", "log:tamper", "log:power"):
            cursor = db.session.get(CollectionCursor, (ids[i], profile))
            if cursor is None:
                continue
            since = cursor.last_ts - dt.timedelta(hours=hours)
            if profile == "load_profile":
                db.session.execute(Reading.__table__.delete().where(Reading.meter_id == ids[i], Reading.ts > since))
            cursor.last_ts = since
        db.session.commit()
        sim.post(f"/meters/{sim.serial(i)}/fault", {"kind": "offline", "active": False})
        sim.post(f"/meters/{sim.serial(i)}/push", {"code": 0})
        handle_push(ids[i], sink.next())
        counts["outages"] += 1
        counts["pushes_on_return"] += 1
    for i in clocks:
        offset = rng.choice([2 * 86400, 30 * 86400, -900 * 86400, -3000 * 86400])
        sim.post(f"/meters/{sim.serial(i)}/clock", {"offset_seconds": offset})
        sim.post(f"/meters/{sim.serial(i)}/push", {"code": 0})
        handle_push(ids[i], sink.next())
        sim.post(f"/meters/{sim.serial(i)}/clock", {"offset_seconds": 0})
        counts["bad_clock_pushes"] += 1
    for i in drops:
        sim.post(f"/meters/{sim.serial(i)}/fault", {"kind": "link_drop"})
        counts["link_drops"] += 1
    for i in forged:
        cursor = db.session.get(CollectionCursor, (ids[i], "load_profile"))
        if cursor is not None:
            store_readings([Value(ids[i], "1.0.1.8.0.255", cursor.last_ts, 1.0, source=Source.PUSH,
                                  authenticated=False)])
            counts["forged_pushes"] += 1
    for i in tampers:
        sim.post(f"/meters/{sim.serial(i)}/clock", {"offset_seconds": rng.randint(-60, 60)})
        sim.post(f"/meters/{sim.serial(i)}/event", {"code": rng.choice([10, 11, 12])})
        handle_push(ids[i], sink.next())
        counts["tampers"] += 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--meters", type=int, default=200)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--max-rounds", type=int, default=4)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    app = bench_app(args.database_url, HES_BACKFILL_DAYS=1)
    sink = PushSink()
    sim = start_simulator(meters=args.meters, history_days=40, seed=args.seed, first_serial=50001,
                          push_to=sink.address, extra=["--prefix", "REC"])
    try:
        with app.app_context():
            from sqlalchemy import select

            from app.extensions import db
            from app.models import CommMode, Meter, MeterBrand, MeterStatus, Sim
            from app.services.secrets import store_credentials

            brand = db.session.execute(select(MeterBrand).where(MeterBrand.name == "hes_sim")).scalar_one()
            brand.default_secret = store_credentials(brand.default_secret, password=PASSWORD.decode())
            ids = []
            for i in range(args.meters):
                card = Sim(number=f"REC-SIM-{i}", ip_address="127.0.0.1", port=sim.port(i))
                meter = Meter(number=sim.serial(i), brand_id=brand.id, comm_mode=CommMode.dial_out,
                              status=MeterStatus.active, sim=card)
                db.session.add_all([card, meter])
                db.session.flush()
                ids.append(meter.id)
            db.session.commit()
            began = time.time()
            failures: list[str] = []
            t0 = time.perf_counter()
            collect_all(ids, failures)
            first_round = time.perf_counter() - t0
            # Every meter's backfill window starts one day before its own first read: compare from the latest.
            began = time.time()
            from app.comms.looplag import LoopLagMonitor

            lag = LoopLagMonitor(window=LAG_WINDOW_SECONDS).start()
            counts = storm(sim, sink, ids, rng)
            last_fault = time.perf_counter()
            rounds, result = 0, None
            while rounds < args.max_rounds:
                rounds += 1
                round_began = time.time() - 1
                collect_all(ids, failures)
                result = reconcile(sim, ids, began, round_began)
                if result.clean and result.completeness_pct == 100.0:
                    break
            to_complete = time.perf_counter() - last_fault
            loop_lag = lag.snapshot()
            lag.stop()
            backend = db.engine.dialect.name
    finally:
        sim.stop()
    rows = [("meters", args.meters, "≥ 200"), ("database", backend, "SQLite and PostgreSQL"),
            ("first round (s)", f"{first_round:.1f}", ""), *((k, v, "") for k, v in counts.items()),
            ("failed reads (retried next round)", len(failures), ""),
            ("values recorded by the meters", result.expected, ""), ("missing", result.missing, "0"),
            ("duplicated", result.duplicated, "0"), ("wrong", result.wrong, "0"),
            ("events recorded", result.events, ""), ("events missing", result.events_missing, "0"),
            ("events duplicated", result.events_duplicated, "0"),
            ("rollup buckets ≠ sum of readings", result.rollup_mismatches, "0"),
            ("out-of-range timestamps stored", result.out_of_range_stored, "0"),
            ("quarantined rows", result.quarantined, f"= {counts['bad_clock_pushes']} bad-clock pushes"),
            ("completeness %", result.completeness_pct, "100"), ("rounds after the storm", rounds, ""),
            ("last fault → 100 % complete (s)", f"{to_complete:.1f}", ""),
            ("event-loop lag max, storm → complete (ms)", loop_lag["max_ms"], ""),
            ("event-loop lag p99, storm → complete (ms)", loop_lag["p99_ms"], f"{loop_lag['samples']} samples")]
    print_table("Ground-truth reconciliation (issue 11)", rows)
    if result.examples:
        print("\nexamples:", *result.examples, sep="\n  ")


if __name__ == "__main__":
    main()
