"""Dial-out to meters with static SIM IPs: connect with a timeout, retry with exponential backoff."""

from __future__ import annotations

import logging
import random
import socket

import gevent

from app.comms.framing import SocketStream

log = logging.getLogger(__name__)


class DialError(ConnectionError):
    """The meter could not be reached after every attempt."""


def dial(host: str, port: int, interface: str, *, connect_timeout: float = 10.0, response_timeout: float = 30.0,
         attempts: int = 3, backoff: float = 1.0) -> SocketStream:
    """Open a TCP connection to a meter; raises DialError with the last reason."""
    last: Exception | None = None
    for attempt in range(1, attempts + 1):
        try:
            sock = socket.create_connection((host, port), timeout=connect_timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return SocketStream(sock, interface, timeout=response_timeout)
        except OSError as exc:
            last = exc
            log.info("dial %s:%s attempt %d/%d failed: %s", host, port, attempt, attempts, exc)
            if attempt < attempts:
                # Jitter keeps a fleet of retries from arriving in lockstep.
                gevent.sleep(backoff * (2 ** (attempt - 1)) * random.uniform(0.8, 1.2))
    raise DialError(f"cannot reach meter at {host}:{port} after {attempts} attempts: {last}")
