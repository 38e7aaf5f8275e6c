"""``make bench``: run every benchmark and write one table, bench/RESULTS.md, with the machine and date.

Each benchmark prints Markdown tables with every figure next to its goal; this collects them.
Set HES_TEST_DATABASE_URL to include PostgreSQL figures.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCHES = [
    ("Fleet CSV import (issue 2)", ["bench.bench_import"]),
    ("Comms: connections and read sessions (issue 3)", ["bench.bench_comms"]),
    ("Connections per node (issue 13)", ["bench.bench_connections"]),
    ("Ingest (issues 4a, 13)", ["bench.bench_ingest"]),
    ("Queueing a collection round without stalling the loop (issue 13)", ["bench.bench_enqueue_loop"]),
    ("Collection round (issue 4b)", ["bench.bench_collection"]),
    ("Alert latency (issue 4c)", ["bench.bench_alerts"]),
    ("Console pages (issue 5)", ["bench.bench_pages"]),
    ("Group commands (issue 6)", ["bench.bench_commands"]),
    ("Reports (issue 7)", ["bench.bench_reports"]),
    ("Theft detection (issue 7)", ["bench.bench_detection"]),
    ("Soak (issues 8, 13; 5,000 meters, 60 min at the 15-minute schedule)", ["bench.bench_soak"]),
    ("Ground-truth reconciliation (issue 11)", ["bench.bench_reconcile"]),
    ("Report PDF off the event loop (issue 16)", ["bench.bench_pdf_loop", "--rows", "500", "--renders", "2"]),
]


def machine() -> str:
    """One line describing this machine."""
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem = next((int(line.split()[1]) // 1024 // 1024 for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")), 0)
    return f"{os.cpu_count()} CPUs ({cpu}), {mem} GiB RAM, {platform.system()} {platform.release()}, " \
           f"Python {platform.python_version()}"


def main() -> int:
    """Run the benchmarks one after another (each alone on the machine) and write RESULTS.md."""
    only = set(sys.argv[1:])
    parts = [f"# HES Core benchmark results\n\nMachine: {machine()}  \nDate: "
             f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M UTC}  \n"
             f"PostgreSQL: {'yes' if os.environ.get('HES_TEST_DATABASE_URL') else 'not configured'}\n"]
    failed = 0
    for title, module in BENCHES:
        if only and module[0].split(".")[-1] not in only:
            continue
        print(f"== {title}", flush=True)
        began = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", *module], cwd=ROOT, capture_output=True, text=True,
                              env=dict(os.environ, PYTHONPATH=str(ROOT)))
        tables = "\n".join(line for line in proc.stdout.splitlines() if line.startswith(("|", "###")))
        print(tables or proc.stdout[-2000:], flush=True)
        if proc.returncode != 0:
            failed += 1
            tables += f"\n\n**failed** (exit {proc.returncode}):\n\n```\n{proc.stderr[-3000:]}\n```"
        parts.append(f"## {title}\n\n_{time.monotonic() - began:.0f} s_\n\n{tables}\n")
    (ROOT / "bench" / "RESULTS.md").write_text("\n".join(parts))
    print(f"wrote bench/RESULTS.md ({failed} failed)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
