"""The role matrix covers every permission of the HES, and a role saved from it holds exactly its cells."""

from __future__ import annotations

from app.services.roles import AREAS, cell_of, permissions_for, role_matrix, unclassified


def test_every_permission_belongs_to_a_cell_of_the_matrix(app):
    with app.app_context():
        sm = app.appbuilder.sm
        pvms = sm.session.query(sm.permissionview_model).all()
        assert not unclassified(pvms), "give these views an area in app/services/roles.py"


def test_levels_follow_what_a_permission_does():
    assert cell_of("can_list", "MeterView") == ("meters", "view")
    assert cell_of("can_edit", "MeterView") == ("meters", "operate")
    assert cell_of("can_delete", "MeterView") == ("meters", "administer")
    assert cell_of("can_acknowledge", "AlertApi") == ("dashboard", "operate")
    assert cell_of("menu_access", "Energy Consumption") == ("reports", "view")
    assert cell_of("can_list", "UserDBModelView") == ("users", "administer")  # admin-only areas have one level
    assert cell_of("can_this_form_post", "ResetMyPasswordView") is None  # self-service stays with everyone


def test_a_role_saved_from_cells_holds_exactly_those_cells(app):
    with app.app_context():
        sm = app.appbuilder.sm
        pvms = sm.session.query(sm.permissionview_model).all()
        role = sm.add_role("Matrix test role")
        try:
            role.permissions = permissions_for({("reports", "view"), ("dashboard", "view")}, pvms)
            sm.session.commit()
            matrix = role_matrix(role, pvms)
            granted = {(area, level) for area, row in matrix.items() for level, state in row.items() if state == "all"}
            assert granted == {("reports", "view"), ("dashboard", "view")}
            assert all(state in ("none", "-") for area in AREAS if area.key not in ("reports", "dashboard")
                       for state in matrix[area.key].values())
            names = {(p.permission.name, p.view_menu.name) for p in role.permissions}
            assert ("can_get", "ConsumptionApi") in names and ("can_this_form_post", "ResetMyPasswordView") in names
            assert ("can_acknowledge", "AlertApi") not in names
        finally:
            sm.session.delete(role)
            sm.session.commit()


def test_a_grant_taken_from_a_role_applies_from_the_next_request(app, client, make_user, api_token):
    """Permission pairs are kept per process (an API call checked them with three queries): taking a grant from a
    role, or giving it back, is seen by the very next request."""
    from flask_appbuilder.security.sqla.models import assoc_permissionview_role as grants
    from sqlalchemy import delete, insert, select

    from app.extensions import db

    headers = api_token(make_user("Operator"))
    assert client.get("/api/v1/meter/?q=(page_size:1)", headers=headers).status_code == 200
    with app.app_context():
        sm = app.appbuilder.sm
        role = sm.find_role("Operator")
        pv = sm.find_permission_view_menu("can_get", "MeterApi")
        row = db.session.execute(select(grants.c.id).where(grants.c.role_id == role.id,
                                                           grants.c.permission_view_id == pv.id)).scalar()
        assert row is not None
        db.session.execute(delete(grants).where(grants.c.id == row))
        db.session.commit()
        role_id, pv_id = role.id, pv.id
    try:
        assert client.get("/api/v1/meter/?q=(page_size:1)", headers=headers).status_code == 403
    finally:
        with app.app_context():
            db.session.execute(insert(grants).values(role_id=role_id, permission_view_id=pv_id))
            db.session.commit()
    assert client.get("/api/v1/meter/?q=(page_size:1)", headers=headers).status_code == 200
