"""`pronghorn ctl -s PATH COMMAND...`: our own small client for the control socket (master/control.py),
speaking the protocol Gunicorn's ``gunicornc`` speaks, so either client drives either server.

    pronghorn ctl -s /run/app.ctl show workers
    pronghorn ctl -s /run/app.ctl worker add 2
    pronghorn ctl -s /run/app.ctl -c "shutdown graceful"

It prints the reply's data as JSON (indented; one line with -j) and exits 0, or prints the error to
stderr and exits 1. There is no default socket path, as the server opens none unless told where.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from typing import Any, Sequence

from .master.control_wire import encode, take_messages

TIMEOUT = 30.0  # seconds for the whole exchange (Gunicorn's client waits as long)


class ControlError(Exception):
    pass


def send_command(path: str, command: str, timeout: float = TIMEOUT) -> Any:
    """Send one command to the control socket at ``path``; the reply's data, or ControlError."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(path)
            sock.sendall(encode({"id": 1, "command": command, "args": []}))
            buffer = bytearray()
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    raise ControlError("the server closed the connection without a reply")
                buffer += chunk
                replies = take_messages(buffer)
                if replies:
                    break
    except OSError as exc:
        raise ControlError(f"cannot talk to {path}: {exc}") from None
    except ValueError as exc:
        raise ControlError(f"a reply that is not the control protocol: {exc}") from None
    reply = replies[0]
    if not isinstance(reply, dict):
        raise ControlError("a reply that is not the control protocol")
    if reply.get("status") != "ok":
        raise ControlError(str(reply.get("error", "unknown error")))
    return reply.get("data", {})


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pronghorn ctl", description="Send a command to a running pronghorn's (or Gunicorn's) "
        "control socket: show workers|stats|config|listeners|all, worker add|remove [N], "
        "worker kill PID, reload, reopen, shutdown [graceful|quick], help.")
    parser.add_argument("-s", "--socket", required=True, metavar="PATH",
                        help="the control socket (the server's --control-socket)")
    parser.add_argument("-c", "--command", help="the command as one string (as gunicornc -c)")
    parser.add_argument("-j", "--json", action="store_true", help="print the JSON on one line")
    parser.add_argument("words", nargs="*", metavar="COMMAND", help="the command's words")
    return parser


def main(argv: Sequence[str]) -> int:
    parser = _parser()
    args = parser.parse_args(list(argv))
    command = args.command if args.command is not None else " ".join(args.words)
    if not command.strip() or (args.command is not None and args.words):
        parser.error("give the command either as words or with -c, once")
    path = os.path.abspath(args.socket)
    try:
        data = send_command(path, command)
    except ControlError as exc:
        print(f"pronghorn ctl: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(data) if args.json else json.dumps(data, indent=2))
    return 0
