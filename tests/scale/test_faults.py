"""Faults: a killed process, a restarted PostgreSQL or Redis, a meter that stops mid-frame.
After each, no acknowledged reading or command is lost or duplicated, and the system recovers by itself."""

from __future__ import annotations

import datetime as dt
import io
import sqlite3
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.scale.conftest import PG, Cluster
from tests.support.live import LiveHes
from tests.support.redis_server import RedisServer
from tests.support.simulator import PASSWORD, start_simulator

UTC = dt.UTC


def register_dialout(hes: LiveHes, sim, prefix: str) -> dict[str, int]:
    """Register every simulator meter for dial-out through the CSV import API; returns number → id."""
    brand = hes.api("GET", "/brand/?q=(filters:!((col:name,opr:eq,value:hes_sim)))").json()["ids"][0]
    assert hes.api("PUT", f"/brand/{brand}/credentials", json={"password": PASSWORD.decode()}).status_code == 200
    count = len(sim.meters)
    sims = "Sim Number,IP Address,Port\n" + "".join(f"{prefix}-S{i},127.0.0.1,{sim.port(i)}\n" for i in range(count))
    assert hes.api("POST", "/sim/import", files={"file": ("s.csv", io.BytesIO(sims.encode()))}).status_code == 200
    meters = "Meter Number,Concentrator ID,Meter Type,SIM Number,Comm Mode,Status\n" + "".join(
        f"{sim.serial(i)},DCU,hes_sim,{prefix}-S{i},dial_out,active\n" for i in range(count))
    assert hes.api("POST", "/meter/import", files={"file": ("m.csv", io.BytesIO(meters.encode()))}).status_code == 200
    resp = hes.api("GET", f"/meter/?q=(filters:!((col:number,opr:sw,value:{sim.serial(0)[:3]})),page_size:500)")
    return {row["number"]: pk for row, pk in zip(resp.json()["result"], resp.json()["ids"], strict=True)}


def collect_all(hes: LiveHes, ids: dict[str, int], threads: int = 4,
                first_done: threading.Event | None = None) -> dict[str, int]:
    """POST /collect for every meter from a few threads; returns status code counts."""
    codes: dict[str, int] = {}
    lock = threading.Lock()
    queue = list(ids.values())

    def worker():
        while True:
            with lock:
                if not queue:
                    return
                meter_id = queue.pop()
            try:
                code = str(hes.api("POST", f"/meter/{meter_id}/collect", json={"kind": "load_profile"},
                                   timeout=120).status_code)
            except Exception as exc:  # the server may die under us: that is the point of the test
                code = type(exc).__name__
            with lock:
                codes[code] = codes.get(code, 0) + 1
            if first_done is not None and code == "200":
                first_done.set()

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return codes


def check_complete(hes: LiveHes, sim, ids: dict[str, int], since: dt.datetime) -> None:
    """Every meter has every 15-minute interval since ``since``, each exactly once, with the meter's value."""
    for index in range(len(sim.meters)):
        number = sim.serial(index)
        gaps = hes.api("GET", f"/meter/{ids[number]}/gaps", params={"from": since.isoformat()}).json()
        assert gaps["missing_intervals"] == 0, (number, gaps["ranges"][:3])


def reconciled(database_url: str, sim, ids: dict[str, int], since: float, until: float):
    """Ground truth (app.services.reconcile) against the database a stopped live HES wrote: every load-profile
    value each simulated meter captured in [since, until] stored once with the meter's value, rollups equal
    to their readings."""
    from app import create_app
    from app.services.reconcile import Reconciliation, finish, reconcile_meter
    from config import Config

    cfg = Config().as_dict()
    cfg.update(SQLALCHEMY_DATABASE_URI=database_url, HES_ASYNC_MODE="threading", RATELIMIT_ENABLED=False,
               TESTING=True)
    app = create_app(cfg)
    result = Reconciliation()
    with app.app_context():
        for index in range(len(sim.meters)):
            number = sim.serial(index)
            record = sim.get(f"/meters/{number}/record?from={since}&to={until}&parts=load_profile")
            reconcile_meter(result, ids[number], record)
        finish(result)
    return result


def sqlite_rows(data_dir: Path, meter_id: int) -> list[tuple[str, float]]:
    with sqlite3.connect(data_dir / "hes.db") as conn:
        return conn.execute("SELECT r.ts, r.value FROM reading r JOIN channel c ON c.id = r.channel_id "
                            "WHERE r.meter_id = ? AND c.obis = '1.0.1.8.0.255' ORDER BY r.ts", (meter_id,)).fetchall()


@pytest.mark.standalone
def test_kill_9_mid_collection_loses_and_duplicates_nothing(monkeypatch):
    data_dir = Path(tempfile.mkdtemp(prefix="hes-kill-"))
    monkeypatch.setenv("HES_DATA_DIR", str(data_dir))
    env = {"HES_BACKFILL_DAYS": "3", "HES_SCHEDULER": "off", "HES_RESPONSE_TIMEOUT": "10"}
    sim = start_simulator(meters=40, history_days=4, extra=["--prefix", "KIL"])
    hes = LiveHes(data_dir, env=env).start()
    try:
        ids = register_dialout(hes, sim, "KIL")
        acknowledged = threading.Event()
        killer = threading.Thread(target=lambda: (acknowledged.wait(60), hes.kill()))
        killer.start()  # kill -9 as soon as the first collection has been acknowledged
        first = collect_all(hes, ids, first_done=acknowledged)
        killer.join()
        assert hes.proc.poll() is not None and set(first) - {"200"}, first  # it died mid-round
        hes = LiveHes(data_dir, env=env).start()  # same data dir: the restarted process carries on
        until = time.time() - 1
        assert collect_all(hes, ids) == {"200": len(ids)}
        since = dt.datetime.now(UTC) - dt.timedelta(days=3) + dt.timedelta(hours=1)
        check_complete(hes, sim, ids, since)
        hes.stop()
        # Against the meters' own record: nothing missing, duplicated or wrong, rollups right.
        result = reconciled(f"sqlite:///{data_dir / 'hes.db'}", sim, ids, since.timestamp(), until)
        assert result.expected > len(ids) * 60 * 4 and result.clean and result.completeness_pct == 100.0, \
            result.as_dict()
        for index in range(len(sim.meters)):
            rows = sqlite_rows(data_dir, ids[sim.serial(index)])
            assert len(rows) == len({ts for ts, _v in rows})  # no duplicate timestamp
            model = sim.model_meter(index)
            for ts, value in rows[-8:]:
                stamp = dt.datetime.fromisoformat(ts).replace(tzinfo=UTC).timestamp()
                assert value == model.import_wh(stamp)
    finally:
        hes.stop()
        sim.stop()


@pytest.mark.standalone
def test_half_frame_meter_costs_one_read_not_the_node():
    sim = start_simulator(meters=2, history_days=1, extra=["--prefix", "HLF"])
    hes = LiveHes(Path(tempfile.mkdtemp(prefix="hes-half-")),
                  env={"HES_RESPONSE_TIMEOUT": "3", "HES_DIAL_ATTEMPTS": "1", "HES_SCHEDULER": "off"}).start()
    try:
        ids = register_dialout(hes, sim, "HLF")
        bad, good = ids[sim.serial(0)], ids[sim.serial(1)]
        sim.post(f"/meters/{sim.serial(0)}/fault", {"kind": "half_frame"})
        started = time.monotonic()
        resp = hes.api("POST", f"/meter/{bad}/read", json={"points": ["energy_import"]})
        assert resp.status_code == 503 and time.monotonic() - started < 20, resp.text
        assert hes.api("POST", f"/meter/{good}/read", json={"points": ["energy_import"]}).status_code == 200
        sim.post(f"/meters/{sim.serial(0)}/fault", {"kind": "half_frame", "active": False})
        assert hes.api("POST", f"/meter/{bad}/read", json={"points": ["energy_import"]}).status_code == 200
    finally:
        hes.stop()
        sim.stop()


def _restart_postgresql() -> None:
    version = subprocess.check_output(["ls", "/etc/postgresql"], text=True).split()[0]
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"], check=True,
                   capture_output=True, timeout=120)


@pytest.mark.standalone
@pytest.mark.skipif(not PG, reason="needs HES_TEST_DATABASE_URL")
def test_postgresql_restart_during_ingest():
    cluster = Cluster(Path(tempfile.mkdtemp(prefix="hes-pgrestart-")))
    sim = start_simulator(meters=16, history_days=4, extra=["--prefix", "PGR"])
    env = cluster.env(HES_BACKFILL_DAYS="3", HES_SCHEDULER="off", HES_REDIS_URL="")
    env.pop("HES_REDIS_URL")
    hes = LiveHes(cluster.root / "hes", env=env).start()
    try:
        ids = register_dialout(hes, sim, "PGR")
        restarter = threading.Timer(1.0, _restart_postgresql)
        restarter.start()
        collect_all(hes, ids)
        restarter.join()
        # After the restart the same process serves again (pool_pre_ping) and collection completes.
        hes.wait_for(lambda: hes.login(), timeout=60, what="HES answering after the PostgreSQL restart")
        assert collect_all(hes, ids) == {"200": len(ids)}
        check_complete(hes, sim, ids, dt.datetime.now(UTC) - dt.timedelta(days=3) + dt.timedelta(hours=1))
        engine = create_engine(cluster.database_url)
        with engine.connect() as conn:
            dupes = conn.execute(text("SELECT count(*) FROM (SELECT meter_id, channel_id, ts FROM reading "
                                      "GROUP BY 1, 2, 3 HAVING count(*) > 1) d")).scalar()
        engine.dispose()
        assert dupes == 0
    finally:
        hes.stop()
        sim.stop()
        cluster.stop()


@pytest.mark.standalone
@pytest.mark.skipif(not PG, reason="needs HES_TEST_DATABASE_URL (Redis is a private redis-server of its own)")
def test_redis_restart_with_commands_queued():
    root = Path(tempfile.mkdtemp(prefix="hes-redisrestart-"))
    private_redis = RedisServer(root / "redis").start()
    cluster = Cluster(root, redis_url=private_redis.url)
    sim = start_simulator(meters=4, history_days=1, extra=["--prefix", "RDR"])
    try:
        node = cluster.start_node("node-a", scheduler=True)
        web = cluster.start_web(workers=1)
        ids = register_dialout(web, sim, "RDR")
        node.stop()  # nobody consumes the queue: the commands wait in Redis...
        created = []
        for number, meter_id in ids.items():
            resp = web.api("POST", "/command/", json={"kind": "disconnect", "meter_id": meter_id,
                                                      "idempotency_key": f"redis-restart-{number}"})
            assert resp.status_code == 201, resp.text
            created.append(resp.json()["id"])
        private_redis.restart()  # ...and Redis loses them (it keeps nothing on disk)
        node = LiveHes(cluster.root / "node-a", web=False, env=cluster.env(
            HES_NODE_ID="node-a", HES_WEB="off", HES_SCHEDULER="on", HES_COMMAND_STALE_SECONDS="5")).start()
        cluster.nodes["node-a"] = node

        def states():
            return [web.api("GET", f"/command/{cid}").json()["result"]["state"] for cid in created]

        web.wait_for(lambda: set(states()) == {"succeeded"}, timeout=180, interval=2,
                     what="commands recovered from the database and run")
        assert all(sim.get(f"/meters/{number}")["relay_connected"] is False for number in ids)
        listed = web.api("GET", "/command/?q=(filters:!((col:kind,opr:eq,value:disconnect)),page_size:100)").json()
        assert listed["count"] == len(ids)  # each sent once: the idempotency keys held
    finally:
        sim.stop()
        cluster.stop()
        private_redis.stop()
