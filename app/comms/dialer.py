"""Dial-out to meters with static SIM IPs: connect with a timeout, retry with exponential backoff."""

from __future__ import annotations

import ipaddress
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
            sock = _connect(host, port, connect_timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return SocketStream(sock, interface, timeout=response_timeout)
        except OSError as exc:
            last = exc
            log.info("dial %s:%s attempt %d/%d failed: %s", host, port, attempt, attempts, exc)
            if attempt < attempts:
                # Jitter keeps a fleet of retries from arriving in lockstep.
                gevent.sleep(backoff * (2 ** (attempt - 1)) * random.uniform(0.8, 1.2))
    raise DialError(f"cannot reach meter at {host}:{port} after {attempts} attempts: {last}")


def _connect(host: str, port: int, timeout: float) -> socket.socket:
    """A connected socket. A SIM's address is an IP literal: connected directly, without ``getaddrinfo`` — under
    gevent every ``create_connection`` resolves in the hub's thread pool (a thread hop and its wake-ups per dial
    for a name that needs no look-up). A host name still goes through ``create_connection``."""
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        return socket.create_connection((host, port), timeout=timeout)
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect((host, port))
    except BaseException:
        sock.close()
        raise
    return sock
