"""Command line: python -m simulator --meters N (--dial-in HOST:PORT | --listen HOST:FIRST-LAST) ..."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time

import gevent

from simulator.behaviours import BEHAVIOURS
from simulator.dlms_server import AUTH_LEVELS
from simulator.fleet import Fleet, parse_hostport, parse_port_range
from simulator.meter import FleetConfig


def build_parser() -> argparse.ArgumentParser:
    """The simulator's command-line options."""
    p = argparse.ArgumentParser(prog="python -m simulator", description=__doc__)
    p.add_argument("--meters", type=int, default=10, help="number of meters (default 10)")
    p.add_argument("--prefix", default="SIM", help="meter number prefix (default SIM)")
    p.add_argument("--first-serial", type=int, default=1, help="first serial number (default 1)")
    p.add_argument("--dial-in", help="HES address(es) the meters connect to: host:port[,host:port...] "
                                     "(primary first; the next one is tried when a connection fails)")
    p.add_argument("--listen", help="host:first-last ports, one per meter, for dial-out (port 0 = ephemeral)")
    p.add_argument("--interface", choices=("wrapper", "hdlc"), default="wrapper")
    p.add_argument("--auth", choices=tuple(AUTH_LEVELS), default="low",
                   help="authentication of the management client 1 (client 16 is always public): LLS, HLS "
                        "MD5/SHA-1/SHA-256 with --password as the HLS secret, HLS GMAC ciphered or plain")
    p.add_argument("--password", default=os.environ.get("SIM_PASSWORD", "00000000"),
                   help="LLS password (default $SIM_PASSWORD, else 00000000; the environment keeps a real "
                        "password out of the process list)")
    p.add_argument("--block-cipher-key", default=bytes(range(16)).hex(), help="hex, default 000102..0f")
    p.add_argument("--authentication-key", default=bytes(range(16, 32)).hex(), help="hex, default 101112..1f")
    p.add_argument("--seed", type=int, default=1, help="fleet seed for load shapes (default 1)")
    p.add_argument("--history-days", type=int, default=35, help="days of profile history (default 35)")
    p.add_argument("--utc-offset-minutes", type=int, default=0, help="meters' local time offset from UTC")
    p.add_argument("--heartbeat-seconds", type=float, default=60.0, help="dial-in heartbeat period")
    p.add_argument("--image-block-size", type=int, default=128, help="firmware image block size")
    p.add_argument("--push-to", help="host:port for Data-Notification pushes (each on its own connection)")
    p.add_argument("--push-from", help="source address of pushes (e.g. 127.0.0.2, a meter's static SIM IP)")
    p.add_argument("--behaviour", action="append", default=[], choices=sorted(BEHAVIOURS),
                   help="a real-meter behaviour every meter shows (repeatable); per meter: control API")
    p.add_argument("--control", help="host:port for the JSON control API (port 0 = ephemeral)")
    p.add_argument("--log-level", default="WARNING")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run a fleet until SIGINT/SIGTERM; prints one JSON 'ready' line with the control port."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if not args.dial_in and not args.listen:
        print("need --dial-in and/or --listen", file=sys.stderr)
        return 2
    cfg = FleetConfig(
        interface=args.interface, auth=args.auth, password=args.password.encode(),
        block_cipher_key=bytes.fromhex(args.block_cipher_key),
        authentication_key=bytes.fromhex(args.authentication_key),
        history_days=args.history_days, utc_offset_minutes=args.utc_offset_minutes,
        image_block_size=args.image_block_size, start_time=time.time(),
        behaviours=frozenset(args.behaviour) or None,
    )
    fleet = Fleet(
        args.meters, cfg, prefix=args.prefix, first_serial=args.first_serial, seed=args.seed,
        dial_in=[parse_hostport(a) for a in args.dial_in.split(",")] if args.dial_in else None,
        listen=parse_port_range(args.listen) if args.listen else None,
        heartbeat_seconds=args.heartbeat_seconds,
        push_to=parse_hostport(args.push_to) if args.push_to else None, push_from=args.push_from,
        control=parse_hostport(args.control) if args.control else None,
    ).start()
    gevent.signal_handler(signal.SIGTERM, fleet.stop)
    gevent.signal_handler(signal.SIGINT, fleet.stop)
    ready = {"ready": True, "control_port": fleet.control_port, "meters": len(fleet.meters),
             "first_port": min(fleet.ports.values()) if fleet.ports else None,
             "install_time": cfg.install_time, "start_time": cfg.start_time}
    print(json.dumps(ready), flush=True)
    fleet.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
