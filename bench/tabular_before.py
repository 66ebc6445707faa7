"""This server as it was before its OpenMP handling, for bench/tabular.py's comparison: every
model call on all cores, and OpenMP's default waiting (spinning before it sleeps).

    python -m bench.tabular_before --config PATH ...   (the options of python -m serving)
"""

from __future__ import annotations

import os
import sys

# Not a policy libgomp knows, so it keeps its default (spin, then sleep); set before the
# OpenMP runtime loads, and before serving's own default (PASSIVE) would apply.
os.environ["OMP_WAIT_POLICY"] = "default"

from serving import fastpath  # noqa: E402
from serving.__main__ import main  # noqa: E402

fastpath.OPENMP_PARALLEL_ROWS = 0  # every batch is "large": all cores, as OpenMP chooses

if __name__ == "__main__":
    sys.exit(main())
