"""The live session runtime: the one place that wires device → signal → models → store.

Public API: :class:`LiveSession`, :class:`SessionConfig`, :class:`LiveEstimator`,
:class:`StreamLedger`, :class:`Protocol`, :func:`load_protocol`, and the demo scenario
:func:`affectstream.runtime.demo.run_demo`. See docs/runtime.md.
"""

from affectstream.runtime.accounting import BACKLOG_REASON, StreamLedger
from affectstream.runtime.estimator import LiveEstimator, resolve_arousal_bundle
from affectstream.runtime.protocol import Protocol, ProtocolPhase, load_protocol
from affectstream.runtime.session import (
    LiveSession,
    LiveSnapshot,
    SessionConfig,
    new_session_id,
)

__all__ = [
    "BACKLOG_REASON",
    "LiveEstimator",
    "LiveSession",
    "LiveSnapshot",
    "Protocol",
    "ProtocolPhase",
    "SessionConfig",
    "StreamLedger",
    "load_protocol",
    "new_session_id",
    "resolve_arousal_bundle",
]
