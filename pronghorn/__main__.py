"""The ``pronghorn`` command (and ``python -m pronghorn``): the server, or one of its subcommands.

``pronghorn systemd-unit ...`` writes systemd units for a command line (pronghorn/systemd_unit.py);
``pronghorn ctl ...`` talks to a running server's control socket (pronghorn/ctl.py); anything else
runs the server (pronghorn/cli.py). The choice is made here, above both: the subcommand
is built on the server's command line, so cli.py must not import it back.
"""

from __future__ import annotations

import sys
from typing import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["systemd-unit"]:  # no module name has a "-", so no app is mistaken for it
        from .systemd_unit import main as systemd_unit

        return systemd_unit(args[1:])
    if args[:1] == ["ctl"] and len(args) > 1:
        # "ctl" is also a valid module name: "pronghorn ctl" alone still serves an app called ctl;
        # with arguments after it (the client needs -s PATH) it is the subcommand.
        from .ctl import main as ctl

        return ctl(args[1:])
    # Only now: the server's start-up imports as little as it can before it forks.
    from .cli import main as serve

    return serve(args)


if __name__ == "__main__":
    sys.exit(main())
