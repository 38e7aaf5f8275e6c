"""SIGTERM stops a busy HES process through its main greenlet. A Python signal handler runs in whichever greenlet
holds the thread; raising SystemExit there once landed in a Huey worker, whose bare ``except:`` logged "Process
Worker-9 died!" and kept the soak's HES running for an hour after ``kill``."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

BUSY_PROCESS = textwrap.dedent("""
    from gevent import monkey
    monkey.patch_all()
    import os
    import signal
    import sys
    import gevent
    from app.runtime import install_stop_signals

    def worker():  # a task worker whose error handling catches everything, as Huey's worker loop does
        while True:
            try:
                gevent.sleep(0.01)
                if sys.argv[-1] == "now":
                    sys.argv[-1] = "sent"
                    os.kill(os.getpid(), signal.SIGTERM)  # delivered here, inside this greenlet
            except BaseException as exc:
                print("worker swallowed", type(exc).__name__, flush=True)

    for _ in range(4):
        gevent.spawn(worker)
    install_stop_signals()
    print("ready", flush=True)
    gevent.sleep(0.3)
    sys.argv[-1] = "now"
    try:
        gevent.sleep(60)
    finally:
        print("stopping in order", flush=True)
""")


def test_sigterm_stops_a_busy_process_through_its_main_greenlet():
    proc = subprocess.Popen([sys.executable, "-c", BUSY_PROCESS, "wait"], cwd=ROOT, stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        code = proc.wait(timeout=15)  # a worker sends SIGTERM to its own process
        assert code == 0
        assert proc.stdout.read().strip() == "stopping in order"  # not swallowed; the main greenlet's clean-up ran
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
