"""System › Comms Nodes: each node's listeners, sockets and push counters, and the pushes not stored."""

from __future__ import annotations

from flask_appbuilder import AppBuilder, BaseView, expose, has_access
from flask_appbuilder.api import BaseApi, protect, safe
from flask_appbuilder.api import expose as api_expose
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import permission_name
from flask_babel import lazy_gettext as _
from sqlalchemy import select

from app.extensions import db
from app.models import CommsNode, HesProcess, PushFailure
from app.services.push_ingest import failure_summary
from app.views.fleet_api import HesModelRestApi

PUSH_COUNTER_LABELS = (("push_received", _("Received")), ("push_stored", _("Stored")),
                       ("push_undecodable", _("Undecodable")), ("push_unknown_sender", _("Unknown sender")),
                       ("push_refused", _("Refused")))


LOOP_LAG_KEYS = ("p99_ms", "max_ms", "max_since_start_ms")
GC_KEYS = ("gc_max_ms", "gc_full_collections", "gc_max_since_start_ms")


class CommsNodesView(BaseView):
    """Which node holds how many meters, and what happened to the pushes it received."""

    route_base = "/nodes"
    default_view = "index"

    @expose("/")
    @has_access
    def index(self):
        nodes = db.session.execute(select(CommsNode).order_by(CommsNode.node_id)).scalars().all()
        return self.render_template("hes/nodes.html", nodes=nodes, labels=PUSH_COUNTER_LABELS,
                                    failures=failure_summary(25), processes=processes())


def processes() -> list[dict]:
    """Every HES process that reported in the last ten minutes, with its loop lag over the last minute."""
    rows = db.session.execute(select(HesProcess).order_by(HesProcess.roles, HesProcess.key)).scalars()
    return [{"key": p.key, "roles": p.roles, "node_id": p.node_id, "pid": p.pid,
             "started_at": p.started_at.isoformat() if p.started_at else None,
             "heartbeat_at": p.heartbeat_at.isoformat() if p.heartbeat_at else None,
             "loop_lag": {key: (p.stats or {}).get(key) for key in LOOP_LAG_KEYS},
             "gc": {key: (p.stats or {}).get(key) for key in GC_KEYS},
             "rss_mib": (p.stats or {}).get("rss_mib"), "fds": (p.stats or {}).get("fds"),
             "caches": (p.stats or {}).get("caches") or {}} for p in rows]


class CommsNodeApi(BaseApi):
    """``GET /api/v1/comms_node/``: nodes with their listeners, socket count and counters."""

    resource_name = "comms_node"
    base_permissions = ["can_get"]

    @api_expose("/", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def get_list(self):
        """Every comms node and its counters.
        ---
        get:
          summary: Comms nodes with listeners, connected meters, push counters and event-loop lag (last minute)
          responses:
            200: {description: "result: one object per node"}
        """
        nodes = db.session.execute(select(CommsNode).order_by(CommsNode.node_id)).scalars()
        return self.response(200, result=[{
            "node_id": n.node_id, "listen": n.listen, "push_listen": n.push_listen, "pid": n.pid,
            "started_at": n.started_at.isoformat() if n.started_at else None,
            "heartbeat_at": n.heartbeat_at.isoformat() if n.heartbeat_at else None,
            "connections": n.connections, "counters": n.counters or {},
            "loop_lag": {key: (n.counters or {}).get(f"loop_lag_{key}") for key in LOOP_LAG_KEYS}} for n in nodes])

    @api_expose("/processes", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def get_processes(self):
        """Every HES process (web, comms, tasks) with its event-loop lag.
        ---
        get:
          summary: HES processes with their roles, event-loop lag (p99 and max over the last minute), RSS and fds
          responses:
            200: {description: "result: one object per process that reported in the last ten minutes"}
        """
        return self.response(200, result=processes())


class PushFailureApi(HesModelRestApi):
    """``/api/v1/push_failure/``: pushes that were not stored, with the reason and their bytes (hex)."""

    resource_name = "push_failure"
    datamodel = SQLAInterface(PushFailure)
    base_permissions = ["can_get", "can_info", "can_delete"]
    list_columns = ["id", "received_at", "node_id", "remote_addr", "port", "meter_id", "identity", "category",
                    "reason", "frame_hex"]
    show_columns = list_columns
    search_columns = ["category", "meter_id", "identity", "remote_addr", "received_at"]
    order_columns = ["id", "received_at"]
    base_order = ("id", "desc")


def register(appbuilder: AppBuilder) -> None:
    """System › Comms Nodes, and the node and push-failure APIs."""
    appbuilder.add_view(CommsNodesView, "Comms Nodes", icon="fa-server", category="System",
                        label=_("Comms Nodes"))
    appbuilder.add_api(CommsNodeApi)
    appbuilder.add_api(PushFailureApi)
