"""The long-running parts of an HES process besides the web server, started and stopped together."""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Flask

log = logging.getLogger(__name__)
Stopper = Callable[[], None]


def start_background_services(app: Flask) -> Stopper:
    """Start the comms node, the task consumer, the demo fleet, the process heartbeat and the background count of
    the slow fleet figures; return a function that stops them."""
    stoppers: list[Stopper] = []
    from app.services.process_status import start_process_status
    from app.services.recent import start_slow_figures

    if str(app.config.get("HES_GC_FREEZE", "on")).lower() != "off":
        from app.comms.looplag import freeze_heap

        frozen = freeze_heap(float(app.config.get("HES_GC_THAW_HOURS", 6)))
        log.info("garbage collector: %d start-up objects frozen, survivors of each full collection too", frozen)

    for starter in (start_comms_node, start_task_consumers, recover_commands, recover_imports, start_demo_fleet,
                    start_process_status, start_slow_figures):
        stop = starter(app)
        if stop is not None:
            stoppers.append(stop)
    install_stop_signals()

    def stop_all() -> None:
        for stop in reversed(stoppers):
            try:
                stop()
            except Exception:  # one part failing to stop must not keep the others running
                log.exception("error while stopping a background service")

    return stop_all


def start_comms_node(app: Flask) -> Stopper | None:
    """Listen for dial-in meters on HES_METER_LISTEN and pushes on HES_PUSH_LISTEN (unless HES_COMMS=off
    for a web-only process). The node calls the services back through the handlers wired here."""
    if str(app.config.get("HES_COMMS", "on")).lower() == "off":
        return None
    from app.comms.node import CommsNode
    from app.services.comms_node import node_handlers

    node = CommsNode(app, handlers=node_handlers(app))
    node.start()
    return node.stop


def start_task_consumers(app: Flask) -> Stopper | None:
    """Run Huey consumers in this process with greenlet workers: the shared queue (with the periodic
    scheduler when HES_SCHEDULER is on) and, in multi-node mode, this node's own queue."""
    if str(app.config.get("HES_TASKS", "on")).lower() == "off":
        return None
    import os

    from app.tasks import huey
    from app.tasks.context import set_task_app

    set_task_app(app)
    from app.tasks import commands, jobs  # noqa: F401  (registers the task functions)

    workers = int(app.config.get("HES_TASK_WORKERS", 16))
    queues = [(huey, str(app.config.get("HES_SCHEDULER", "on")).lower() != "off")]
    if os.environ.get("HES_REDIS_URL"):
        from app.comms.node import get_node
        from app.tasks.routing import node_queue

        node = get_node()
        if node is not None:
            queues.append((node_queue(node.node_id)[0], False))
    consumers = []
    for queue, periodic in queues:
        consumer = queue.create_consumer(workers=workers, worker_type="greenlet", periodic=periodic,
                                         check_worker_health=False, initial_delay=0.05, max_delay=1.0)
        consumer.start()
        consumers.append(consumer)

    def stop() -> None:
        for consumer in consumers:
            consumer.stop(graceful=True)

    return stop


def recover_commands(app: Flask) -> None:
    """Commands this node left ``sent`` when it stopped (kill -9, power cut) are resolved at once: re-asked
    of the meter where its state shows the outcome, otherwise failed with the reason."""
    if str(app.config.get("HES_TASKS", "on")).lower() == "off":
        return
    from app.services.commands.queue import recover_interrupted

    with app.app_context():
        recover_interrupted(app.config["HES_NODE_ID"])


def recover_imports(app: Flask) -> None:
    """CSV imports and detection runs this node was running when it stopped are marked failed, with what to do
    about it."""
    from app.services.analytics import detection_jobs
    from app.services.import_jobs import fail_interrupted

    with app.app_context():
        fail_interrupted(app.config["HES_NODE_ID"])
        detection_jobs.fail_interrupted(app.config["HES_NODE_ID"])


def install_stop_signals() -> None:
    """SIGTERM (``kill``, ``systemctl stop``) and SIGINT end the process from its main greenlet, which then stops
    every part in order. Call from the main greenlet, after the task consumers (Huey installs handlers meant for
    its own main loop). A Python signal handler runs in whichever greenlet holds the thread: raising there killed a
    busy task worker (whose error handling swallowed it) and left the process running."""
    import signal

    import gevent
    import greenlet

    main, hub = greenlet.getcurrent(), gevent.get_hub()

    def stop_main(exc: BaseException) -> None:
        if not main.dead:
            main.throw(exc)

    def on_signal(signum, _frame) -> None:
        exc = KeyboardInterrupt() if signum == signal.SIGINT else SystemExit(0)
        hub.loop.run_callback_threadsafe(stop_main, exc)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)


def start_demo_fleet(app: Flask) -> Stopper | None:
    """Register and start HES_DEMO_METERS simulated meters dialing in to this node."""
    count = int(app.config.get("HES_DEMO_METERS", 0))
    if count <= 0:
        return None
    from app.comms.node import get_node
    from app.services.demo import start_demo

    node = get_node()
    if node is None:
        log.warning("demo fleet needs the comms node; skipped")
        return None
    return start_demo(app, count, node.listen)
