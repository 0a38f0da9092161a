"""The live session runtime: the one place that wires device → signal → models → store.

For apps, scripts and notebooks: :class:`Session` (every estimate to a callback, markers
and self-reports from code, ``run_sync``). Building blocks: :class:`LiveSession`,
:class:`SessionConfig`, :class:`LiveEstimator`,
:class:`StreamLedger`, :class:`StudyProtocol`, :func:`load_protocol`, and the demo scenario
:func:`affectstream.runtime.demo.run_demo`. See docs/runtime.md.
"""

from affectstream.runtime.accounting import BACKLOG_REASON, StreamLedger
from affectstream.runtime.app import SELF_REPORT_KIND, Estimate, Session
from affectstream.runtime.estimator import LiveEstimator, resolve_arousal_bundle
from affectstream.runtime.protocol import ProtocolPhase, StudyProtocol, load_protocol
from affectstream.runtime.session import (
    LiveSession,
    LiveSnapshot,
    SessionConfig,
    new_session_id,
)

__all__ = [
    "BACKLOG_REASON",
    "SELF_REPORT_KIND",
    "Estimate",
    "LiveEstimator",
    "LiveSession",
    "LiveSnapshot",
    "ProtocolPhase",
    "Session",
    "SessionConfig",
    "StreamLedger",
    "StudyProtocol",
    "load_protocol",
    "new_session_id",
    "resolve_arousal_bundle",
]
