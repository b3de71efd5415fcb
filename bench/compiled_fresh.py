"""Exit 0 when every per-request module has an extension built from its current source in ROOT
(bench/run's test before it rebuilds them): ``python bench/compiled_fresh.py ROOT``."""

from __future__ import annotations

import os
import sys

root = sys.argv[1]
sys.path.insert(0, root)
from pronghorn.compiled import MODULES, compiled_file  # noqa: E402

package = os.path.join(root, "pronghorn")
for module in MODULES:
    built = compiled_file(module, package)
    if built is None or os.path.getmtime(built) < os.path.getmtime(os.path.join(package, module)):
        sys.exit(1)
