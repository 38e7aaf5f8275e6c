"""The pluggy plugin manager: built-ins, then the ``hes`` entry points, then ``plugins/`` folders."""

from __future__ import annotations

import importlib.util
import logging
import sys
from functools import lru_cache
from pathlib import Path

import pluggy
import yaml

from app.plugins import hookspecs

log = logging.getLogger(__name__)
PLUGINS_DIR = Path(__file__).resolve().parents[2] / "plugins"


class FolderBrand:
    """A brand folder's ``obis.yaml`` offered through ``hes_register_brands``."""

    def __init__(self, folder: Path):
        self.folder = folder

    @hookspecs.hookimpl
    def hes_register_brands(self):
        with open(self.folder / "obis.yaml", encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
        data.setdefault("name", self.folder.name)
        return [data]


def _load_module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def build_manager(plugins_dir: Path = PLUGINS_DIR) -> pluggy.PluginManager:
    """A fresh plugin manager with every plugin discovered and hook names checked."""
    pm = pluggy.PluginManager("hes")
    pm.add_hookspecs(hookspecs)
    pm.load_setuptools_entrypoints("hes")
    for kind in ("meter_brands", "rules"):
        base = plugins_dir / kind
        if not base.is_dir():
            continue
        for folder in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))):
            if (folder / "obis.yaml").exists():
                pm.register(FolderBrand(folder), name=f"{kind}.{folder.name}.data")
            if (folder / "plugin.py").exists():
                module = _load_module(folder / "plugin.py", f"hes_plugins.{kind}.{folder.name}")
                pm.register(module, name=f"{kind}.{folder.name}")
    pm.check_pending()
    return pm


@lru_cache(maxsize=1)
def plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager."""
    return build_manager()


def hook():
    """Shortcut for ``plugin_manager().hook``."""
    return plugin_manager().hook
