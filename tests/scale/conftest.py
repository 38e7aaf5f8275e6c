"""Scale-out mode on 127.0.0.1: PostgreSQL for data, Redis for queues and Socket.IO, two comms
nodes (``run.py`` with HES_WEB=off) and gunicorn web workers. Skipped unless both servers are given."""

from __future__ import annotations

import os
import sys
import tempfile
import uuid
from pathlib import Path

import pytest
import redis
from sqlalchemy import create_engine, text

from tests.support.live import LiveHes, free_port

PG = os.environ.get("HES_TEST_DATABASE_URL")
REDIS = os.environ.get("HES_TEST_REDIS_URL")
NEEDS_BOTH = "needs HES_TEST_DATABASE_URL and HES_TEST_REDIS_URL (PostgreSQL and Redis)"
HERE = Path(__file__).parent


def pytest_collection_modifyitems(config, items):
    """Skip this folder's tests without PostgreSQL and Redis. (A ``pytestmark`` in a conftest applies to no test
    module, so the module-scoped cluster fixture used to run and fail with ``None`` for a URL.) Tests that need
    only one of the two, or neither, mark themselves ``@pytest.mark.standalone``."""
    if PG and REDIS:
        return
    skip = pytest.mark.skip(reason=NEEDS_BOTH)
    for item in items:
        if HERE in item.path.parents and item.get_closest_marker("standalone") is None:
            item.add_marker(skip)


class Cluster:
    """Two comms nodes and a gunicorn web tier sharing one PostgreSQL schema and one Redis database."""

    def __init__(self, root: Path, redis_url: str | None = None):
        self.root = root
        self.redis_url = redis_url or REDIS
        self.schema = f"hes_scale_{uuid.uuid4().hex[:8]}"
        engine = create_engine(PG)
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{self.schema}"'))
        engine.dispose()
        sep = "&" if "?" in PG else "?"
        self.database_url = f"{PG}{sep}options=-csearch_path%3D{self.schema}"
        redis.Redis.from_url(self.redis_url).flushdb()
        self.nodes: dict[str, LiveHes] = {}
        self.web: LiveHes | None = None

    def env(self, **extra: str) -> dict[str, str]:
        # Every process must sign sessions and decrypt meter secrets alike.
        keys = {"SECRET_KEY": "scale-test-secret-key", "HES_SECRETS_KEY": "scale-test-secrets-key"}
        return {"DATABASE_URL": self.database_url, "HES_REDIS_URL": self.redis_url, "HES_HEARTBEAT_SECONDS": "1",
                "HES_MISSED_HEARTBEATS": "3", "HES_IDENTIFY_TIMEOUT": "3", "HES_RESPONSE_TIMEOUT": "5", **keys,
                **extra}

    def start_node(self, name: str, scheduler: bool = False) -> LiveHes:
        node = LiveHes(self.root / name, web=False, env=self.env(
            HES_NODE_ID=name, HES_WEB="off", HES_SCHEDULER="on" if scheduler else "off"))
        self.nodes[name] = node.start()
        return node

    def start_web(self, workers: int = 2) -> LiveHes:
        port = free_port()
        cmd = [sys.executable, "-m", "gunicorn", "-k", "geventwebsocket.gunicorn.workers.GeventWebSocketWorker",
               "-w", str(workers), "-b", f"127.0.0.1:{port}", "--graceful-timeout", "3", "wsgi:app"]
        self.web = LiveHes(self.root / "web", command=cmd, web_port=port,
                           env=self.env(HES_COMMS="off", HES_TASKS="off")).start()
        return self.web

    def addresses(self) -> str:
        """The meters' primary and backup HES addresses."""
        return ",".join(node.meter_address for node in self.nodes.values())

    def stop(self) -> None:
        for proc in [self.web, *self.nodes.values()]:
            if proc is not None:
                proc.stop()
        engine = create_engine(PG)
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE'))
        engine.dispose()


@pytest.fixture(scope="module")
def cluster():
    """node-a (scheduler), node-b, and two gunicorn web workers, started in that order."""
    c = Cluster(Path(tempfile.mkdtemp(prefix="hes-scale-")))
    try:
        c.start_node("node-a", scheduler=True)
        c.start_node("node-b")
        c.start_web()
        yield c
    finally:
        c.stop()
