"""Install the front-end packages from the npm registry and copy the files we serve into static/.

The HES often runs on closed utility networks, so nothing is loaded from a CDN: the files
listed under ``"vendor"`` in package.json are copied to ``app/static/vendor/`` at install time.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "app" / "static" / "vendor"


def main() -> int:
    """Run ``npm ci`` and copy each vendored file; exit non-zero if any is missing."""
    manifest = json.loads((ROOT / "package.json").read_text())
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=ROOT, check=True)
    missing = []
    for source, dest in manifest.get("vendor", {}).items():
        src = ROOT / "node_modules" / source
        dst = TARGET / dest
        if not src.exists():
            missing.append(source)
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)
        else:
            shutil.copy2(src, dst)
    if missing:
        print("missing vendored files: " + ", ".join(missing), file=sys.stderr)
        return 1
    (TARGET / ".vendored").write_text("ok\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
