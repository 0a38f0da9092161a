"""The ``--line-freq`` option of the commands that compute features."""

from __future__ import annotations

import argparse

# affectstream.signal.mains.LINE_FREQS, spelt out so that --help need not import the signal
# package.
LINE_FREQS = (50.0, 60.0)


def add_line_freq_argument(parser: argparse.ArgumentParser, detail: str) -> None:
    """Add ``--line-freq`` (50 or 60, default None); its help is "mains frequency" + ``detail``."""
    parser.add_argument(
        "--line-freq",
        type=float,
        choices=LINE_FREQS,
        default=None,
        help=f"mains frequency{detail}",
    )
