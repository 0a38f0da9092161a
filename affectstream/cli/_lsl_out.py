"""The ``--lsl-out`` option of the commands that run a live session."""

from __future__ import annotations

import argparse


def add_lsl_out_argument(parser: argparse.ArgumentParser, detail: str) -> None:
    """Add ``--lsl-out`` (a flag); its help is "publish ... as LSL outlets" + ``detail``."""
    parser.add_argument(
        "--lsl-out",
        action="store_true",
        help=f"publish raw streams, estimates and events as LSL outlets{detail}",
    )
