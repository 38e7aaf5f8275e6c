"""Brand plugins: the hes_sim OBIS list matches what the simulator serves; hooks behave."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pluggy
import pytest
import yaml

from app.comms.cosem import obis_bytes
from app.comms.heartbeat import heartbeat_frame
from app.plugins import hookspecs
from simulator import objects

BRANDS = Path(__file__).resolve().parents[2] / "plugins" / "meter_brands"


def _load(brand: str):
    spec = importlib.util.spec_from_file_location(f"brand_{brand}", BRANDS / brand / "plugin.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _definition(brand: str) -> dict:
    """The brand's definition as the HES sees it (the standard fills in what obis.yaml leaves out)."""
    from app.services.brand_definition import compile_objects, normalise

    definition = normalise(yaml.safe_load((BRANDS / brand / "obis.yaml").read_text()))
    return {**definition, "push_objects": compile_objects(definition)["push_objects"]}


def test_hes_sim_points_are_exactly_what_the_simulator_serves():
    definition = _definition("hes_sim")
    served = set()
    for point in definition["points"]:
        access = objects.OBJECT_INDEX[(point["class_id"], obis_bytes(point["obis"]))]
        readable, writable, methods = access
        if point["access"] == "x":
            assert point["method"] in methods, point["key"]
        else:
            assert point["attribute"] in readable, point["key"]
            assert ("w" in point["access"]) == (point["attribute"] in writable), point["key"]
        served.add((point["class_id"], obis_bytes(point["obis"])))
    listed = {(c, ln) for c, ln, *_ in objects.OBJECTS if c != 15}
    assert listed == served
    assert [[c, o, a] for c, o, a in definition["push_objects"]] == [
        [c, ".".join(map(str, ln)), a] for c, ln, a in objects.PUSH_OBJECTS]
    assert {int(k): v for k, v in definition["event_codes"].items()} == objects.EVENT_CODES
    logs = {log: spec["point"] for log, spec in definition["roles"]["event_logs"].items()}
    points = {p["key"]: p["obis"] for p in definition["points"]}
    assert {log: obis_bytes(points[key]) for log, key in logs.items()} == objects.LOGS


@pytest.mark.parametrize("brand", ["hes_sim", "generic_dlms"])
def test_brand_files_are_complete(brand):
    definition = _definition(brand)
    assert definition["name"] == brand
    keys = [p["key"] for p in definition["points"]]
    assert len(keys) == len(set(keys))
    groups = {"Energy", "Instantaneous", "Profiles", "Events", "Relay", "Prepaid", "Clock", "Network",
              "Firmware", "Identification", "Configuration"}
    for point in definition["points"]:
        obis_bytes(point["obis"])
        assert point["group"] in groups and point["access"] in ("r", "w", "rw", "x")
    assert (BRANDS / brand / "README.md").exists()


def test_plugin_hooks_through_pluggy():
    pm = pluggy.PluginManager("hes")
    pm.add_hookspecs(hookspecs)
    plugins = [_load("generic_dlms"), _load("hes_sim")]
    try:
        for plugin in plugins:
            pm.register(plugin)
        pm.check_pending()
        beat = pm.hook.hes_parse_heartbeat(frame=heartbeat_frame("SIM00000009"))
        assert beat.meter_number == "SIM00000009"
        assert pm.hook.hes_parse_heartbeat(frame=b"METER42\x01\r\n").meter_number == "METER42"
        # Tokens and event codes are data now (ASCII tokens are the default; code tables live in obis.yaml).
        assert pm.hook.hes_encode_token(brand="hes_sim", token="12345678901234567890") is None
        assert pm.hook.hes_map_event(brand="hes_sim", log="tamper", code=11) is None
    finally:
        for plugin in plugins:
            pm.unregister(plugin)
