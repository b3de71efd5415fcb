"""master_app, with a gate at import for the systemd tests: while the file named by SYSTEMD_APP_GATE
does not exist, a worker stays booting (it cannot answer yet), so a test can check that READY=1
waits for it. Gives up waiting after 60 s."""

from __future__ import annotations

import os
import time

_gate = os.environ.get("SYSTEMD_APP_GATE")
if _gate:
    _deadline = time.monotonic() + 60
    while not os.path.exists(_gate) and time.monotonic() < _deadline:
        time.sleep(0.01)

from master_app import app  # noqa: E402  (after the gate, on purpose)

application = app
