"""Publish a live session as Lab Streaming Layer outlets (``--lsl-out``).

While a session runs, :class:`LslPublisher` offers one outlet per raw stream (channel
labels, units and types, nominal rate and the device in the stream's XML metadata), one
``affectstream-features`` outlet (type ``Features``: the feature columns of each window at
its end time), one ``affectstream-estimates`` outlet (type ``Affect``: the estimate's
numeric fields, confidence included) and one ``affectstream-events`` marker outlet
(markers, phases, session start/stop). Timestamps are the samples' host times moved onto
the LSL clock, so LabRecorder or any inlet records them aligned with other LSL streams.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd

from affectstream.device.lsl_meta import load_pylsl, lsl_epoch_offset
from affectstream.runtime.session import LiveSession
from affectstream.signal.columns import feature_columns
from affectstream.types import SampleBlock

logger = logging.getLogger(__name__)

#: Source ids of the outlets start with this, so a recorder can tell and re-find them.
SOURCE_PREFIX = "affectstream"
#: Estimate fields that are not values (they are the timestamp or text).
_NOT_VALUES = frozenset({"t_end"})


class LslPublisher:
    """Outlets of one session, created as streams first appear.

    Parameters
    ----------
    session_id : str
        Put in every outlet's metadata and source id.
    """

    def __init__(self, session_id: str) -> None:
        self.pylsl = load_pylsl()
        self.session_id = session_id
        self.offset = lsl_epoch_offset()
        self.outlets: dict[str, Any] = {}
        self._estimate_fields: list[str] = []
        self._feature_fields: list[str] = []
        self.pushed: dict[str, int] = {}

    def _info(self, name: str, kind: str, channels: list[tuple[str, str, str]],
              rate: float, fmt: Any) -> Any:  # fmt: skip
        info = self.pylsl.StreamInfo(
            name, kind, len(channels), rate, fmt, f"{SOURCE_PREFIX}/{self.session_id}/{name}"
        )
        desc = info.desc()
        desc.append_child_value("manufacturer", "affectstream")
        desc.append_child_value("session", self.session_id)
        node = desc.append_child("channels")
        for label, unit, ctype in channels:
            channel = node.append_child("channel")
            channel.append_child_value("label", label)
            channel.append_child_value("unit", unit)
            channel.append_child_value("type", ctype)
        return info

    def _open_values(
        self, key: str, name: str, kind: str, channel_type: str, fields: list[str]
    ) -> None:
        """Open an irregular float64 outlet with one channel per field (estimates, features)."""
        channels = [(f, "", channel_type) for f in fields]
        info = self._info(name, kind, channels, 0.0, self.pylsl.cf_double64)
        self.outlets[key] = self.pylsl.StreamOutlet(info)

    def raw(self, block: SampleBlock) -> None:
        """Push a block's data rows (missing rows are not sent: LSL has no NaN gaps).

        Parameters
        ----------
        block : SampleBlock
            A block from the device layer.
        """
        outlet = self.outlets.get(block.stream)
        if outlet is None:
            kind = block.modality.upper()
            channels = [(c, block.unit, kind) for c in block.channels]
            info = self._info(block.stream, kind, channels, block.sfreq or 0.0,
                              self.pylsl.cf_float32)  # fmt: skip
            info.desc().append_child_value("device", block.device)
            outlet = self.outlets[block.stream] = self.pylsl.StreamOutlet(info)
        keep = ~np.all(np.isnan(block.values), axis=1)
        for row, t in zip(block.values[keep], block.t[keep], strict=True):
            outlet.push_sample(row.tolist(), float(t) - self.offset)
        self.pushed[block.stream] = self.pushed.get(block.stream, 0) + int(keep.sum())

    def _estimate(self, record: Mapping[str, Any]) -> None:
        if not self._estimate_fields:
            self._estimate_fields = sorted(
                k for k, v in record.items()
                if k not in _NOT_VALUES and isinstance(v, int | float) and not isinstance(v, bool)
            )  # fmt: skip
            if not self._estimate_fields:
                return
            self._open_values("estimates", "affectstream-estimates", "Affect", "Affect",
                              self._estimate_fields)  # fmt: skip
        outlet = self.outlets.get("estimates")
        if outlet is None:
            return
        row = []
        for name in self._estimate_fields:
            value = record.get(name)
            row.append(float(value) if isinstance(value, int | float) else float("nan"))
        outlet.push_sample(row, float(record["t_end"]) - self.offset)
        self.pushed["estimates"] = self.pushed.get("estimates", 0) + 1

    def features(self, rows: pd.DataFrame) -> None:
        """Push feature rows (a :attr:`LiveSession.row_listeners` entry).

        The outlet's channels are the feature columns of the first rows (an outlet's
        channel count is fixed); a column that appears later is not sent.

        Parameters
        ----------
        rows : pandas.DataFrame
            ``t_end`` plus feature columns (``quality_``/``usable_``/``reason_`` are not sent).
        """
        if not len(rows):
            return
        if not self._feature_fields:
            self._feature_fields = feature_columns(rows)
            if not self._feature_fields:
                return
            self._open_values("features", "affectstream-features", "Features", "Feature",
                              self._feature_fields)  # fmt: skip
        values = rows.reindex(columns=self._feature_fields).to_numpy(dtype=np.float64)
        stamps = rows["t_end"].to_numpy(dtype=np.float64) - self.offset
        outlet = self.outlets["features"]
        for row, stamp in zip(values, stamps, strict=True):
            outlet.push_sample(row.tolist(), float(stamp))
        self.pushed["features"] = self.pushed.get("features", 0) + len(values)

    def _event(self, event: Mapping[str, Any]) -> None:
        outlet = self.outlets.get("events")
        if outlet is None:
            info = self._info("affectstream-events", "Markers", [("label", "", "Marker")],
                              0.0, self.pylsl.cf_string)  # fmt: skip
            outlet = self.outlets["events"] = self.pylsl.StreamOutlet(info)
        label = str(event["label"])
        if event.get("kind", "marker") != "marker":
            label = f"{event['kind']}:{label}"
        outlet.push_sample([label], float(event["t"]) - self.offset)
        self.pushed["events"] = self.pushed.get("events", 0) + 1

    def listener(self, what: str, payload: Mapping[str, Any]) -> None:
        """A :attr:`LiveSession.listeners` entry: estimates and events to their outlets.

        Parameters
        ----------
        what : str
            ``"estimate"`` or ``"event"``.
        payload : mapping
            The record or event.
        """
        if what == "estimate":
            self._estimate(payload)
        elif what == "event":
            self._event(payload)

    def close(self) -> None:
        """Withdraw every outlet."""
        self.outlets.clear()  # liblsl withdraws an outlet when it is destroyed


def attach(session: LiveSession) -> LslPublisher:
    """Publish ``session`` over LSL: its events and estimates, and every block submitted.

    Give it as a driver's ``on_session`` hook (``run_demo``, ``replay_blocks``,
    ``record_session``): they call the hook before they hand ``session.submit`` to their
    block source, so the source then feeds the publishing ``submit`` set here.

    Parameters
    ----------
    session : LiveSession
        The session to publish.

    Returns
    -------
    LslPublisher
        Close it (:meth:`LslPublisher.close`) when the session has ended.
    """
    publisher = LslPublisher(session.session_id)
    session.listeners.append(publisher.listener)
    session.row_listeners.append(publisher.features)
    submit = session.submit

    def publishing_submit(block: SampleBlock) -> None:
        submit(block)
        try:
            publisher.raw(block)
        except Exception:  # publishing must never cost the recording
            logger.exception("LSL outlet for %s failed", block.stream)

    session.submit = publishing_submit  # type: ignore[method-assign]
    return publisher


@contextlib.contextmanager
def publishing(session: LiveSession) -> Iterator[LslPublisher]:
    """:func:`attach` for the duration of a block, then withdraw the outlets.

    Parameters
    ----------
    session : LiveSession
        The session to publish.

    Yields
    ------
    LslPublisher
    """
    publisher = attach(session)
    try:
        yield publisher
    finally:
        with contextlib.suppress(ValueError):
            session.listeners.remove(publisher.listener)
        with contextlib.suppress(ValueError):
            session.row_listeners.remove(publisher.features)
        logger.info("LSL outlets published %s", publisher.pushed)
        publisher.close()
