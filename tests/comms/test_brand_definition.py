"""One typed brand definition: the same validation for obis.yaml, the REST API and the form; edits that
never destroy; kept versions; partial meter updates."""

from __future__ import annotations

import pytest
import yaml

from app.services.brand_definition import DefinitionError, compile_objects, normalise
from tests.comms.test_brands import BRANDS

BARE = "1.0.1.8.0.255\n1.0.2.8.0.255\n1.0.99.1.0.255\n0.0.1.0.0.255\n0.0.96.3.10.255\n0.0.99.98.0.255\n"


def test_bare_obis_list_gets_classes_attributes_and_roles_from_the_standard():
    d = normalise({"name": "acme_x1", "points_csv": BARE})
    by_key = {p["key"]: p for p in d["points"]}
    assert by_key["energy_import"]["class_id"] == 3 and by_key["energy_import"]["attribute"] == 2
    assert by_key["clock"]["datatype"] == "date_time" and by_key["clock"]["access"] == "rw"
    assert by_key["relay_disconnect"]["method"] == 1 and by_key["relay_disconnect"]["access"] == "x"
    assert d["roles"]["load_profile"] == "load_profile" and d["roles"]["relay"] == "relay_output_state"
    assert d["roles"]["event_logs"] == {"standard": {"point": "standard_event_log"}}
    assert compile_objects(d)["profiles"] == {"load_profile": "1.0.99.1.0.255"}
    assert d["connection"] == {"interface": "wrapper", "client_address": 1, "server_address": 1,
                               "auth_level": "low", "profile_period_minutes": 15, "push_policy": "auto",
                               "profile_read": "auto"}


def test_header_and_headerless_lists_say_the_same():
    with_header = "obis,class,attribute,datatype,name\n1.0.99.1.0.255,7,2,,LP\n0.128.1.0.0.255,3,2,uint16,Vendor\n"
    bare = "1.0.99.1.0.255, LP\n0.128.1.0.0.255, 3, 2, uint16, Vendor\n"
    a = normalise({"name": "x", "points_csv": with_header})
    b = normalise({"name": "x", "points_csv": bare})
    assert a == b and a["points"][1]["key"] == "obj_0_128_1_0_0_255" and a["points"][1]["name"] == "Vendor"


def test_what_the_standard_does_not_fix_is_asked_for_naming_point_and_field():
    with pytest.raises(DefinitionError) as exc:
        normalise({"name": "x", "points_csv": "0.128.1.0.0.255\n1.0.1.8.0.255\n"})
    assert exc.value.errors[0]["field"] == "class_id" and "0.128.1.0.0.255" in exc.value.errors[0]["point"]
    with pytest.raises(DefinitionError) as exc:  # a writable point needs a data type
        normalise({"name": "x", "points": [{"obis": "0.0.17.0.0.255", "class_id": 71, "attribute": 3}]})
    assert exc.value.errors[0] == {"point": "load_limit_threshold", "field": "datatype", "column": "datatype",
                                   "reason": exc.value.errors[0]["reason"], "value": None, "index": 1}
    assert "data type" in exc.value.errors[0]["reason"]


@pytest.mark.parametrize(("roles", "field", "words"), [
    ({"relay": "garbage"}, "roles.relay", "names no point"),
    ({"relay": "energy_import"}, "roles.relay", "class 70"),
    ({"load_profile": "9.9.9.9.9.9"}, "roles.load_profile", "no point of this brand has OBIS code"),
    ({"push_objects": ["nope"]}, "roles.push_objects", "names no point"),
    ({"teleport": "clock"}, "roles.teleport", "unknown role"),
])
def test_bad_roles_are_refused(roles, field, words):
    with pytest.raises(DefinitionError) as exc:
        normalise({"name": "x", "points_csv": BARE, "roles": roles})
    assert any(e["field"] == field and words in e["reason"] for e in exc.value.errors), exc.value.errors


def test_unknown_fields_and_bad_connection_are_refused_not_ignored():
    with pytest.raises(DefinitionError) as exc:
        normalise({"name": "x", "points_csv": BARE, "objects": {}, "auth_level": "bogus",
                   "profile_period_minutes": 0})
    fields = {e["field"] for e in exc.value.errors}
    assert fields == {"objects", "connection.auth_level", "connection.profile_period_minutes"}


def test_top_level_connection_fields_and_older_shape_are_understood():
    d = normalise({"name": "x", "points_csv": BARE, "auth_level": "none", "client_address": 16,
                   "profile_period_minutes": 30, "profiles": {"load_profile": "1.0.99.1.0.255"}})
    assert d["connection"]["auth_level"] == "none" and d["connection"]["client_address"] == 16
    assert d["connection"]["profile_period_minutes"] == 30 and d["roles"]["load_profile"] == "load_profile"


@pytest.mark.parametrize("brand", ["hes_sim", "generic_dlms"])
def test_shipped_brands_validate_and_keep_only_their_specifics(brand):
    raw = yaml.safe_load((BRANDS / brand / "obis.yaml").read_text())
    assert "defaults" not in raw and "connection" not in raw  # the HES's connection defaults apply
    assert set(raw.get("roles", {})) <= {"push_objects"}  # every other role follows from standard OBIS codes
    d = normalise(raw)
    assert d["roles"]["load_profile"] == "load_profile" and d["roles"]["relay"] == "relay_output_state"
    assert set(d["roles"]["event_logs"]) == {"standard", "tamper", "power"}
    plugin = (BRANDS / brand / "plugin.py").read_text()
    assert "hes_map_event" not in plugin and "hes_encode_token" not in plugin


# --- through the REST API ---------------------------------------------------------------------------------

def _brand(client, headers, **body):
    resp = client.post("/api/v1/brand/", json=body, headers=headers)
    assert resp.status_code == 201, resp.get_data(as_text=True)
    return resp.json["id"]


def test_api_title_only_put_keeps_every_point_and_keeps_versions(client, admin_headers):
    pk = _brand(client, admin_headers, name="t_keep", points_csv=BARE)
    before = client.get(f"/api/v1/brand/{pk}/definition", headers=admin_headers).json["result"]
    resp = client.put(f"/api/v1/brand/{pk}", json={"title": "Renamed"}, headers=admin_headers)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    after = client.get(f"/api/v1/brand/{pk}/definition", headers=admin_headers).json["result"]
    assert after["title"] == "Renamed" and after["points"] == before["points"] and after["roles"] == before["roles"]
    assert len(after["points"]) == 11  # relay: 5 points, clock: 2
    # A role changed by PATCH leaves the other roles alone; a bad one is refused and changes nothing.
    resp = client.patch(f"/api/v1/brand/{pk}", json={"roles": {"relay": "garbage"}}, headers=admin_headers)
    assert resp.status_code == 422 and resp.json["errors"][0]["field"] == "roles.relay"
    resp = client.patch(f"/api/v1/brand/{pk}", json={"connection": {"profile_period_minutes": 30}},
                        headers=admin_headers)
    assert resp.status_code == 200
    versions = client.get(f"/api/v1/brand/{pk}/versions", headers=admin_headers).json["result"]
    assert [v["version"] for v in versions] == [3, 2, 1]
    assert versions[0]["definition"]["connection"]["profile_period_minutes"] == 30
    assert versions[2]["definition"]["title"] == "t_keep"


def test_api_refuses_what_it_used_to_ignore(client, admin_headers):
    resp = client.post("/api/v1/brand/", json={"name": "t_bad", "points_csv": BARE, "relay": "garbage"},
                       headers=admin_headers)
    assert resp.status_code == 422 and resp.json["errors"][0]["field"] == "roles.relay"
    resp = client.post("/api/v1/brand/", json={"name": "t_bad2", "points_csv": BARE, "auth_level": "none",
                                                "client_address": 16}, headers=admin_headers)
    assert resp.status_code == 201
    shown = client.get(f"/api/v1/brand/{resp.json['id']}", headers=admin_headers).json["result"]
    assert shown["auth_level"] == "none" and shown["client_address"] == 16


def test_api_preview_and_openapi_document_the_definition(client, admin_headers):
    resp = client.post("/api/v1/brand/preview", json={"name": "t_prev", "points_csv": BARE}, headers=admin_headers)
    assert resp.status_code == 200 and any("load profile every 15 min" in line for line in resp.json["plan"])
    spec = client.get("/api/v1/_openapi", headers=admin_headers).json
    schema = spec["components"]["schemas"]["BrandDefinitionSchema"]
    assert {"points", "roles", "connection", "points_csv"} <= set(schema["properties"])
    post = spec["paths"]["/api/v1/brand/"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("BrandDefinitionSchema")


def test_one_field_meter_put_works_and_brand_defaults_stay_defaults(client, admin_headers):
    brands = client.get("/api/v1/brand/?q=(filters:!((col:name,opr:eq,value:hes_sim)))", headers=admin_headers)
    resp = client.post("/api/v1/meter/", json={"number": "T-PUT-1", "brand": brands.json["ids"][0]},
                       headers=admin_headers)
    assert resp.status_code == 201, resp.get_data(as_text=True)
    pk = resp.json["id"]
    area = client.post("/api/v1/area/", json={"name": "T area", "kind": "feeder"}, headers=admin_headers)
    assert area.status_code == 201, area.get_data(as_text=True)
    resp = client.put(f"/api/v1/meter/{pk}", json={"area": area.json["id"]}, headers=admin_headers)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    meter = client.get(f"/api/v1/meter/{pk}", headers=admin_headers).json["result"]
    assert meter["area_id"] == area.json["id"]
    assert meter["interface"] is None and meter["auth_level"] is None  # still the brand's defaults


def test_caches_follow_changes_and_pushes_use_the_meters_own_scaler(app, client, admin_headers):
    import datetime as dt

    from app.comms.push import PushNotification
    from app.extensions import db
    from app.models import Meter, MeterBrand
    from app.services.meter_access import object_cache_for
    from app.services.push_ingest import push_values

    pk = _brand(client, admin_headers, name="t_cache", points_csv=BARE)
    resp = client.post("/api/v1/meter/", json={"number": "T-CACHE-1", "brand": pk}, headers=admin_headers)
    meter_id = resp.json["id"]
    push = PushNotification(timestamp=dt.datetime(2026, 11, 27, 12, tzinfo=dt.UTC), values=[5], objects=[
        {"class_id": 3, "obis": "1.0.1.8.0.255", "attribute": 2, "value": 5}])
    with app.app_context():
        meter = db.session.get(Meter, meter_id)
        assert [v.value for v in push_values(meter, push)[1]] == [5.0]  # brand: no scaler
        object_cache_for(meter_id).scalers[("1.0.1.8.0.255", 3)] = (2, 30)  # what a session read from it
        assert [v.value for v in push_values(meter, push)[1]] == [500.0]  # the meter's own, as profiles
        assert db.session.get(MeterBrand, pk).name == "t_cache"
    assert client.put(f"/api/v1/brand/{pk}", json={"title": "edited"}, headers=admin_headers).status_code == 200
    assert object_cache_for(meter_id).scalers == {}  # a brand save forgets what its meters' sessions cached
