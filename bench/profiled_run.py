"""``run.py`` with a profiler switched on and off by signals, so a bench profiles only the part it is measuring:
SIGUSR1 starts cProfile (every greenlet of the process's one thread), SIGUSR2 stops it and writes the stats to the
file named on the command line (each SIGUSR2 overwrites it with everything collected so far).
Run: python -m bench.profiled_run STATS_FILE   (as ``python run.py``; ``bench.profile_reads --rest-profile`` does)
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import cProfile  # noqa: E402
import runpy  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    """Install the two signal handlers, then run ``run.py`` as ``__main__``."""
    target = sys.argv[1]
    profile = cProfile.Profile()

    def start(_signum, _frame) -> None:
        profile.enable()

    def stop(_signum, _frame) -> None:
        profile.disable()
        profile.dump_stats(target)

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
    sys.argv = [str(ROOT / "run.py")]
    sys.path.insert(0, str(ROOT))
    runpy.run_path(str(ROOT / "run.py"), run_name="__main__")


if __name__ == "__main__":
    main()
