"""Feature-extraction benchmark; same as ``affectstream bench features``.

Usage: ``python benchmarks/bench_features.py [--minutes 60] [--naive-windows 24]``
"""

from __future__ import annotations

import sys

from affectstream.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["bench", "features", *sys.argv[1:]]))
