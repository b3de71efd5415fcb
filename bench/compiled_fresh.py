"""Exit 0 when every per-request module has an extension built from its current source in ROOT
(bench/run's test before it rebuilds them): ``python bench/compiled_fresh.py ROOT``."""

from __future__ import annotations

import os
import sys

root = sys.argv[1]
sys.path.insert(0, root)
from pronghorn.compiled import MODULES, compiled_file, stale  # noqa: E402

package = os.path.join(root, "pronghorn")
sys.exit(any(compiled_file(module, package) is None for module in MODULES) or bool(stale(package)))
