"""Helpers shared by the benchmarks: a throwaway app on a temporary database, and timing."""

from __future__ import annotations

import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path


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
