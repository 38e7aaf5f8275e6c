"""The build everyone uses: every imported package pinned, a hashed lock that agrees with the pins, and a
`make test` that a newcomer without PostgreSQL and Redis sees green."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_CODE = ["app", "plugins", "simulator", "migrations", "run.py", "wsgi.py", "config.py"]
DEV_CODE = ["tests", "bench", "scripts"]
FIRST_PARTY = {"app", "config", "simulator", "plugins", "tests", "bench", "run", "wsgi"}


def _name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", re.split(r"[\[=<>~!; ]", requirement, maxsplit=1)[0]).lower()


def pins(path: Path) -> dict[str, str]:
    """name → version of every ``name==version`` line (``-r`` lines and comments skipped)."""
    found = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip().rstrip("\\").strip()
        if line and not line.startswith("-"):
            assert "==" in line, f"{path.name}: '{line}' is not pinned to one version"
            found[_name(line)] = line.split("==", 1)[1].split(";")[0].strip()
    return found


def imported_modules(paths: list[str]) -> set[str]:
    """Top-level modules imported by the Python files under ``paths`` (absolute imports only)."""
    modules = set()
    for entry in paths:
        base = ROOT / entry
        for file in [base] if base.is_file() else base.rglob("*.py"):
            for node in ast.walk(ast.parse(file.read_text(), str(file))):
                if isinstance(node, ast.Import):
                    modules |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules.add(node.module.split(".")[0])
    return modules - FIRST_PARTY - set(sys.stdlib_module_names) - {"__future__"}


def distributions(modules: set[str]) -> dict[str, set[str]]:
    mapping = packages_distributions()
    missing = sorted(m for m in modules if m not in mapping)
    assert not missing, f"imported but not installed from any pinned distribution: {missing}"
    return {m: {_name(d) for d in mapping[m]} for m in modules}


def test_every_runtime_import_is_pinned_in_requirements():
    runtime = pins(ROOT / "requirements.txt")
    unpinned = {m: d for m, d in distributions(imported_modules(RUNTIME_CODE)).items() if not d & runtime.keys()}
    assert not unpinned, f"imported by the application but not pinned in requirements.txt: {unpinned}"


def test_every_test_import_is_pinned_and_test_tools_stay_out_of_runtime():
    runtime, dev = pins(ROOT / "requirements.txt"), pins(ROOT / "requirements-dev.txt")
    allowed = runtime.keys() | dev.keys()
    unpinned = {m: d for m, d in distributions(imported_modules(DEV_CODE)).items() if not d & allowed}
    assert not unpinned, f"imported by tests/bench/scripts but not pinned: {unpinned}"
    for tool in ("pytest", "hypothesis", "playwright", "schemathesis", "pypdf", "ruff"):
        assert tool in dev and tool not in runtime, tool


@pytest.mark.parametrize(("spec", "lock"), [("requirements.txt", "requirements.lock"),
                                            ("requirements-dev.txt", "requirements-dev.lock")])
def test_lock_files_agree_with_the_pins_and_carry_hashes(spec, lock):
    text = (ROOT / lock).read_text()
    entries = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._\-\[\]]*)==(\S+)((?:\s*\\\n\s+--hash=sha256:[0-9a-f]{64})*)",
                         text, flags=re.M)
    locked = {_name(name): version for name, version, _hashes in entries}
    assert all(hashes for _n, _v, hashes in entries), f"{lock}: an entry without --hash"
    wanted = pins(ROOT / spec) | (pins(ROOT / "requirements.txt") if spec == "requirements-dev.txt" else {})
    stale = {name: (version, locked.get(name)) for name, version in wanted.items() if locked.get(name) != version}
    assert not stale, f"{lock} disagrees with {spec} (pin, locked): {stale}; run `make lock`"
    makefile = (ROOT / "Makefile").read_text()
    assert f"--require-hashes -r {lock}" in makefile


def test_fresh_machine_without_postgresql_or_redis_skips_those_tests_with_a_reason():
    """`make test` on a newcomer's machine: the scale tests must skip, not error in their fixtures."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HES_TEST_")}
    proc = subprocess.run([sys.executable, "-m", "pytest", "tests/scale", "-rs", "-k", "not kill_9 and not half_frame"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "error" not in proc.stdout.splitlines()[-1]
    assert "needs HES_TEST_DATABASE_URL" in proc.stdout
