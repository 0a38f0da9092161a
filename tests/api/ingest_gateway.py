"""A gateway feeding the real service's ingest endpoint: synthetic labelled streams of the
declared device kinds, sent faster than real time (windows follow the data's own times)."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import httpx
import numpy as np
import pandas as pd

from affectstream.api.loadgen import json_batches
from affectstream.export.session import load_session
from affectstream.models.synthetic import synthetic_labelled_recording
from affectstream.store import open_store
from affectstream.types import SampleBlock
from tests.api.conftest import Server

#: Streams each declared device kind sends (a heart-rate strap: bpm and RR intervals; a
#: Polar strap read for RR intervals only).
STREAMS = {"hr": ("hr", "rr"), "polar": ("rr",), "eda": ("eda",), "muse": ("eeg",)}
#: Seconds of data per ingest batch (every stream's slice of the same span, in time order,
#: as a gateway forwards them).
BATCH_S = 5.0


def gateway_blocks(devices: str, seconds: float, t0: float) -> list[SampleBlock]:
    """What a gateway with ``devices`` sends for ``seconds`` from ``t0``: synthetic labelled
    streams (Muse EEG at 256 Hz on AF7/AF8/TP9/TP10), plus the strap's bpm per beat."""
    kinds = [k for k in devices.split(",") if k]
    modalities = tuple(m for k in kinds for m in STREAMS[k] if m != "hr")
    recording = synthetic_labelled_recording(
        "G", seed=3, duration=seconds, baseline_seconds=seconds, modalities=modalities,
        eeg_rate=256.0,
    )  # fmt: skip
    shift = t0 - min(float(b.t[0]) for b in recording.blocks)
    blocks = [dataclasses.replace(b, t=b.t + shift) for b in recording.blocks]
    if "hr" in kinds:
        rr = next(b for b in blocks if b.modality == "rr")
        blocks.append(
            dataclasses.replace(
                rr, stream=rr.stream.replace("/rr", "/hr"), modality="hr", channels=("hr",),
                unit="bpm", values=60_000.0 / rr.values,
            )
        )  # fmt: skip
    # Earliest stream first: a live session's window grid starts at the first sample it is
    # sent, a replay's at the recording's earliest, so the two have the same windows.
    return sorted(blocks, key=lambda b: float(b.t[0]))


def run_ingest(
    server: Server, admin: httpx.Client, participant: int, devices: str, seconds: float
) -> tuple[dict[str, Any], pd.DataFrame, dict[str, Any]]:
    """Start an ingest session for ``devices``, send ``seconds`` of data, stop it.

    Returns its status once stopped (``id`` the session's; ``running`` its live state after
    the data was sent; ``t0`` when the data starts, just after the session did), its stored
    estimates and its stored settings (the ``start`` event's, which a replay reads)."""
    body = {"participant_id": participant, "kind": "ingest", "devices": devices}
    created = admin.post("/sessions", json=body)
    assert created.status_code == 201, created.text
    session = str(created.json()["id"])
    t0 = time.time()  # the session started just before: its reference counts from there
    blocks = gateway_blocks(devices, seconds, t0)
    edges = list(np.arange(0.0, seconds + BATCH_S, BATCH_S))
    for _, batch in json_batches(blocks, t0, edges):
        sent = admin.post(f"/sessions/{session}/ingest", json=batch)
        assert sent.status_code == 200, sent.text
    running = admin.get(f"/sessions/{session}").json()["live"]
    stopped = admin.post(f"/sessions/{session}/stop")
    assert stopped.status_code == 200, stopped.text
    status = {**stopped.json(), "running": running, "t0": t0}
    with open_store(server.home / "store") as store:
        stored = load_session(store, session)
    return status, stored.tables["affect"], stored.settings()
