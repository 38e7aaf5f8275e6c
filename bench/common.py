"""Helpers shared by the benchmarks: a throwaway app on a temporary database, and timing."""

from __future__ import annotations

import os
import random
import socket
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path


def free_port_in_range() -> int:
    """A free TCP port for a server a bench starts: inside HES_BENCH_PORT_RANGE ("31000-39999") when set,
    else any the system gives."""
    low, _, high = os.environ.get("HES_BENCH_PORT_RANGE", "").partition("-")
    for _attempt in range(200):
        port = random.randint(int(low), int(high)) if high else 0
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise RuntimeError("no free port in HES_BENCH_PORT_RANGE")


def bench_app(database_url: str | None = None, **overrides):
    """A migrated HES app in a temporary data dir (SQLite unless a URL is given)."""
    data_dir = Path(tempfile.mkdtemp(prefix="hes-bench-"))
    os.environ["HES_DATA_DIR"] = str(data_dir)
    from app import create_app
    from app.services.bootstrap import prepare_database
    from config import Config

    cfg = Config().as_dict()
    cfg.update(RATELIMIT_ENABLED=False, HES_ASYNC_MODE="threading")
    if database_url:
        cfg["SQLALCHEMY_DATABASE_URI"] = database_url
    cfg.update(overrides)
    app = create_app(cfg)
    prepare_database(app)
    return app


@contextmanager
def timed(label: str, results: dict):
    """Record the wall time of a block under ``label``."""
    start = time.perf_counter()
    yield
    results[label] = time.perf_counter() - start


def print_table(title: str, rows: list[tuple]) -> None:
    """Print figures as a small Markdown table (what `make bench` collects into RESULTS.md)."""
    print(f"\n### {title}\n")
    print("| figure | value | goal |")
    print("|---|---|---|")
    for row in rows:
        print("| " + " | ".join(str(c) for c in row) + " |")
