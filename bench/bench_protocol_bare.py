"""Bare gurux client loop against the simulator: associate, clock, 2 registers, 96-row profile, release.

Prints sessions per second, the baseline the HES path (DlmsSession, node, tasks) is compared to.
Run: .venv/bin/python bench/bench_protocol_bare.py --meters 50 --seconds 20 [--interface hdlc] [--auth high_gmac]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from gurux_dlms import GXByteBuffer, GXReplyData
from gurux_dlms.enums import Authentication, InterfaceType, Security
from gurux_dlms.objects import GXDLMSClock, GXDLMSProfileGeneric, GXDLMSRegister
from gurux_dlms.secure import GXDLMSSecureClient

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = b"BenchPass"
BLOCK_KEY = bytes(range(16))
AUTH_KEY = bytes(range(16, 32))


def start_simulator(args: argparse.Namespace) -> tuple[subprocess.Popen, dict]:
    """Start `python -m simulator` listening on ephemeral ports; return it and its meters."""
    cmd = [sys.executable, "-m", "simulator", "--meters", str(args.meters), "--listen", "127.0.0.1:0",
           "--control", "127.0.0.1:0", "--interface", args.interface, "--auth", args.auth,
           "--password", PASSWORD.decode(), "--history-days", "35"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=subprocess.PIPE,
                            text=True)
    ready_list, _, _ = select.select([proc.stdout], [], [], 30)
    if not ready_list:
        proc.kill()
        raise SystemExit("simulator did not start")
    ready = json.loads(proc.stdout.readline())
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{ready['control_port']}/meters?limit=100000") as response:
        return proc, {m["serial"]: m["port"] for m in json.loads(response.read())}


class BareClient:
    """Moves gurux frames over a socket, nothing else."""

    def __init__(self, port: int, interface: str, auth: str, counter: list[int], password: bytes = PASSWORD) -> None:
        """Connect and build the gurux client."""
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.interface = interface
        gx_interface = InterfaceType.WRAPPER if interface == "wrapper" else InterfaceType.HDLC
        level = {"none": Authentication.NONE, "low": Authentication.LOW, "high_gmac": Authentication.HIGH_GMAC}[auth]
        self.client = GXDLMSSecureClient(True, 1, 1, level, password if auth == "low" else None, gx_interface)
        self.counter = counter
        if auth == "high_gmac":
            self.client.ciphering.security = Security.AUTHENTICATION_ENCRYPTION
            self.client.ciphering.systemTitle = b"BENCH001"
            self.client.ciphering.blockCipherKey = BLOCK_KEY
            self.client.ciphering.authenticationKey = AUTH_KEY
            self.client.ciphering.invocationCounter = counter[0]
        self.buffer = b""

    def _frame(self) -> bytes:
        while True:
            if self.interface == "wrapper" and len(self.buffer) >= 8:
                size = 8 + int.from_bytes(self.buffer[6:8], "big")
            elif self.interface == "hdlc" and len(self.buffer) >= 3:
                size = (((self.buffer[1] & 0x07) << 8) | self.buffer[2]) + 2
            else:
                size = 1 << 30
            if len(self.buffer) >= size:
                frame, self.buffer = self.buffer[:size], self.buffer[size:]
                return frame
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buffer += chunk

    def exchange(self, frames: object) -> GXReplyData:
        """Send frames, follow blocks, return the reply."""
        reply = GXReplyData()
        for frame in frames if isinstance(frames, list) else [frames]:
            reply = GXReplyData()
            self.sock.sendall(bytes(frame))
            while not self.client.getData(GXByteBuffer(self._frame()), reply, GXReplyData()):
                pass
        while reply.isMoreData():
            self.sock.sendall(bytes(self.client.receiverReady(reply)))
            while not self.client.getData(GXByteBuffer(self._frame()), reply, GXReplyData()):
                pass
        return reply

    def run_session(self) -> int:
        """One collection session; returns the number of profile rows read."""
        c = self.client
        if self.interface == "hdlc":
            c.parseUAResponse(self.exchange(c.snrmRequest()).data)
        c.parseAareResponse(self.exchange(c.aarqRequest()).data)
        if c.getIsAuthenticationRequired():
            c.parseApplicationAssociationResponse(self.exchange(c.getApplicationAssociationRequest()).data)
        self.exchange(c.read(GXDLMSClock(), 2))
        self.exchange(c.read(GXDLMSRegister("1.0.1.8.0.255"), 2))
        self.exchange(c.read(GXDLMSRegister("1.0.32.7.0.255"), 2))
        profile = GXDLMSProfileGeneric("1.0.99.1.0.255")
        profile.addCaptureObject(GXDLMSClock(), 2, 0)
        end = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
        end = end - dt.timedelta(minutes=end.minute % 15)
        rows = self.exchange(c.readRowsByRange(profile, end - dt.timedelta(minutes=15 * 95), end)).value
        self.exchange(c.releaseRequest())
        if self.interface == "hdlc":
            self.exchange(c.disconnectRequest())
        if c.authentication == Authentication.HIGH_GMAC:
            self.counter[0] = int(c.ciphering.invocationCounter)
        self.sock.close()
        return len(rows or [])


def main() -> None:
    """Run the bench and print a JSON summary."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--meters", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--interface", choices=("wrapper", "hdlc"), default="wrapper")
    parser.add_argument("--auth", choices=("none", "low", "high_gmac"), default="low")
    args = parser.parse_args()
    proc, ports = start_simulator(args)
    serials = sorted(ports)
    done, rows_total, errors = [0], [0], [0]
    counters = {serial: [1] for serial in serials}
    lock = threading.Lock()
    deadline = time.monotonic() + args.seconds

    def worker(offset: int) -> None:
        i = offset
        while time.monotonic() < deadline:
            serial = serials[i % len(serials)]
            i += args.threads
            try:
                rows = BareClient(ports[serial], args.interface, args.auth, counters[serial]).run_session()
            except Exception as exc:  # noqa: BLE001 - a bench counts failures and goes on
                with lock:
                    errors[0] += 1
                print(f"{serial}: {exc}", file=sys.stderr)
                continue
            with lock:
                done[0] += 1
                rows_total[0] += rows

    started = time.monotonic()
    try:
        threads = [threading.Thread(target=worker, args=(n,)) for n in range(args.threads)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    elapsed = time.monotonic() - started
    print(json.dumps({"bench": "protocol_bare", "interface": args.interface, "auth": args.auth,
                      "meters": args.meters, "threads": args.threads, "sessions": done[0], "errors": errors[0],
                      "rows_per_session": rows_total[0] / max(1, done[0]),
                      "sessions_per_second": round(done[0] / elapsed, 1)}))


if __name__ == "__main__":
    main()
