"""The embedded web server (``run.py``): gevent's WSGI server with WebSocket support, as Flask-SocketIO's ``run``
starts it, except that every accepted connection sets TCP_NODELAY and an answer's headers leave with its body.

gevent's pywsgi writes a response's headers and its body in two ``send`` calls. With Nagle's algorithm on, the
body waits until the client acknowledges the headers, and a client on a keep-alive connection delays that ACK
(40 ms on Linux): every API answer on a reused connection took 40 ms more than its work (measured: a 404 read
72 ms on a kept connection against 32 ms on a new one).
"""

from __future__ import annotations

import socket

from flask import Flask


def serve(app: Flask, host: str, port: int) -> None:
    """Serve ``app`` (with Socket.IO) on host:port until stopped."""
    from gevent import pywsgi
    from geventwebsocket.handler import WebSocketHandler

    from app.extensions import socketio

    class NoDelayHandler(WebSocketHandler):
        """A connection's handler that first turns Nagle's algorithm off on its socket."""

        def __init__(self, sock, address, server, rfile=None):
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:  # not TCP (a UNIX socket): nothing to turn off
                pass
            super().__init__(sock, address, server, rfile)

        def _write_with_headers(self, data):
            """The status line, headers and first body chunk in one ``sendall`` (pywsgi sends the headers, then
            the body: two system calls, and over loopback two wake-ups of the client, for every answer)."""
            pending: list = []
            self._sendall = pending.append  # the instance attribute shadows the method while headers are built
            try:
                super()._write_with_headers(data)
            finally:
                del self._sendall
            if pending:
                self._sendall(pending[0] if len(pending) == 1 else b"".join(pending))

    server = pywsgi.WSGIServer((host, port), app, handler_class=NoDelayHandler, log=None)
    socketio.wsgi_server = server  # what socketio.stop() stops
    server.serve_forever()
