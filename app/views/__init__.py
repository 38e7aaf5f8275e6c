"""Web views and REST APIs; each module exposes ``register(appbuilder)``, called here in order."""

from __future__ import annotations

from flask_appbuilder import AppBuilder


def register_all(appbuilder: AppBuilder) -> None:
    """Register every view, API and menu entry (menu order follows the customer's page tree)."""
    from app.services.audit import install_audit_listener
    from app.views import (
        alerts,
        brands,
        collection,
        commands_api,
        comms,
        csp,
        dashboard,
        errors,
        fleet,
        fleet_api,
        home,
        i18n,
        imports,
        meter_pages,
        monitoring,
        my_meters,
        nodes,
        online_rate,
        remote,
        reports,
        revenue,
        roles,
        sessions_api,
        settings,
        stock,
        trace,
    )

    install_audit_listener()
    for module in (csp, errors, stock, i18n, home, dashboard, fleet, imports, comms, brands, settings, collection,
                   fleet_api, monitoring, online_rate, alerts, reports, revenue, commands_api, meter_pages, remote,
                   my_meters, roles, nodes, trace, sessions_api):
        module.register(appbuilder)
    i18n.translate_labels(appbuilder)
