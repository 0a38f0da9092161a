"""The Grafana dashboard asks only for measurements, fields and tags the writer produces.

What the writer produces is derived, not typed in:

- ``raw_<modality>`` and ``events``: :func:`affectstream.store.blocks_to_batches` run on one
  block per stream of every device profile in :data:`affectstream.device.profiles.PROFILES`
  (plus a gap, for the events);
- ``features`` and ``quality``: the columns :func:`affectstream.signal.extract_features`
  gives for a synthetic ECG + EDA + EEG recording; feature columns go to ``features``, the
  ``quality_<family>``/``usable_<family>`` columns to ``quality`` under the same names;
- ``affect``: one field per target of :data:`affectstream.models.datasets.TARGETS`
  (``arousal``, ``valence``), tagged with ``model``.

The mapping of extractor and model output onto the ``features``/``quality``/``affect``
measurements (same names, tags participant + session, plus model for affect) is the
documented convention in deploy/grafana/README.md; the live runtime must follow it.

A second test writes such data to the real InfluxDB 1.6.7 and runs every dashboard query
(variables substituted) to check each one returns values.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from conftest import InfluxTarget

from affectstream.store.base import MEASUREMENTS, RAW_PREFIX, TAG_KEYS, SeriesBatch
from affectstream.store.influx import InfluxStore
from affectstream.types import Gap, SampleBlock

GRAFANA = Path(__file__).resolve().parents[2] / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "affectstream.json"
T0_S = 1_700_000_000.0
SESSION_TAGS = {"participant": "p01", "session": "dash-1"}


def dashboard() -> dict[str, object]:
    return json.loads(DASHBOARD.read_text())  # type: ignore[no-any-return]


def dashboard_queries() -> list[str]:
    """Every InfluxQL string in the dashboard: panel targets, variables, annotations."""
    board = dashboard()
    queries = [
        target["query"]
        for panel in board["panels"]  # type: ignore[attr-defined]
        for target in panel.get("targets", [])
    ]
    queries += [v["query"] for v in board["templating"]["list"]]  # type: ignore[index]
    queries += [a["query"] for a in board["annotations"]["list"]]  # type: ignore[index]
    return queries


@cache
def produced_batches() -> tuple[SeriesBatch, ...]:
    """One session as the writer produces it, every measurement of the schema."""
    from affectstream.device.profiles import PROFILES
    from affectstream.store import blocks_to_batches

    rng = np.random.default_rng(0)
    blocks = []
    for profile in PROFILES.values():
        for spec in profile.streams:
            n = 64
            blocks.append(
                SampleBlock.regular(
                    f"{profile.name}/{spec.kind}",
                    spec.modality,
                    spec.channels,
                    rng.normal(size=(n, len(spec.channels))) + 50,
                    spec.sfreq or 1.0,
                    T0_S,
                    device=profile.name,
                )
            )
    gap = Gap(blocks[0].stream, 10, 5, T0_S + 0.01, T0_S + 0.02, "counter_jump")
    blocks[0] = SampleBlock(**{**vars_of(blocks[0]), "gaps": (gap,)})
    batches = list(blocks_to_batches(blocks, **SESSION_TAGS))
    feature_names, quality_names = extractor_columns()
    time_ns = np.int64(T0_S * 1e9) + np.arange(4, dtype=np.int64) * 5_000_000_000
    batches.append(
        SeriesBatch("features", SESSION_TAGS, time_ns, {n: rng.random(4) for n in feature_names})
    )
    batches.append(
        SeriesBatch("quality", SESSION_TAGS, time_ns, {n: rng.random(4) for n in quality_names})
    )
    batches.append(affect_batch())
    return tuple(batches)


def affect_batch() -> SeriesBatch:
    """Estimates as the live runtime writes them: the live estimator's records on a
    synthetic recording's features (a shipped arousal bundle), through the session's writer."""
    from affectstream.models.bundle import load_bundle
    from affectstream.runtime.estimator import LiveEstimator, resolve_arousal_bundle
    from affectstream.runtime.session import _records_batch
    from affectstream.signal import extract_features
    from affectstream.signal.columns import feature_families
    from affectstream.signal.synthetic import synthetic_recording

    frame = extract_features(list(synthetic_recording(3.0, t0=T0_S).blocks))
    path = resolve_arousal_bundle(None, feature_families(frame.columns), allow_demo=True)
    assert path is not None
    bundle = load_bundle(path, allow_version_mismatch=True)
    reference_end = float(frame["t_end"].iloc[len(frame) // 2])
    records = LiveEstimator([bundle], baseline_end=reference_end).estimate(frame)
    assert set(affect_targets()) <= set(records[-1])
    return _records_batch(records, {**SESSION_TAGS, "model": "lgbm-v1"})


def vars_of(block: SampleBlock) -> dict[str, object]:
    return {name: getattr(block, name) for name in SampleBlock.__dataclass_fields__}


def extractor_columns() -> tuple[list[str], list[str]]:
    """Feature and quality column names of the signal layer's extractor."""
    from affectstream.signal import extract_features
    from affectstream.signal.columns import feature_columns
    from affectstream.signal.extractor import FAMILY_ORDER
    from affectstream.signal.synthetic import synthetic_recording

    frame = extract_features(list(synthetic_recording(1.5).blocks))
    features = feature_columns(frame)
    quality = [c for c in frame.columns if c.startswith(("quality_", "usable_"))]
    assert features and quality
    # Families this recording lacks (temp, acc, hr) get the same column names when a
    # session has them (extractor: quality_<family>/usable_<family> per processor family).
    quality += [f"{p}_{f}" for f in FAMILY_ORDER for p in ("quality", "usable")]
    return features, sorted(set(quality))


def affect_targets() -> tuple[str, ...]:
    from affectstream.models.datasets import TARGETS

    return tuple(TARGETS)


def produced_schema() -> dict[str, tuple[set[str], set[str]]]:
    """measurement -> (field names, tag keys) the writer produces."""
    schema: dict[str, tuple[set[str], set[str]]] = {}
    for batch in produced_batches():
        fields, tags = schema.setdefault(batch.measurement, (set(), set()))
        fields.update(batch.fields)
        tags.update(batch.tags)
    return schema


_IDENTIFIER = re.compile(r'"((?:[^"\\]|\\.)*)"')


def query_parts(query: str) -> tuple[str | None, set[str], set[str]]:
    """(measurement, fields, tag keys) an InfluxQL query of the dashboard's style names."""
    show = re.match(r'SHOW TAG VALUES(?: FROM "([^"]+)")? WITH KEY = "([^"]+)"(.*)$', query)
    if show:
        return show.group(1), set(), {show.group(2), *_IDENTIFIER.findall(show.group(3))}
    match = re.match(r"SELECT (.*?) FROM \"([^\"]+)\"(.*)$", query)
    assert match, f"unexpected query style: {query}"
    select, measurement, rest = match.groups()
    fields = set(_IDENTIFIER.findall(re.sub(r'AS "[^"]+"', "", select)))
    return measurement, fields, set(_IDENTIFIER.findall(rest))


def test_every_query_names_produced_measurements_fields_and_tags() -> None:
    pytest.importorskip("affectstream.signal.extractor")
    schema = produced_schema()
    assert {m for m in schema if not m.startswith(RAW_PREFIX)} == set(MEASUREMENTS)
    used_measurements = set()
    for query in dashboard_queries():
        measurement, fields, tags = query_parts(query)
        assert tags <= set(TAG_KEYS), (query, tags - set(TAG_KEYS))
        if measurement is None:  # SHOW TAG VALUES over every measurement
            assert any(tags <= t for _, t in schema.values()), query
            continue
        assert measurement in schema, f"{measurement!r} is never written ({query})"
        produced_fields, produced_tags = schema[measurement]
        assert fields <= produced_fields, (query, fields - produced_fields)
        assert tags <= produced_tags, (query, tags - produced_tags)
        used_measurements.add(measurement)
    # the dashboard covers raw signals, features, quality, affect and events
    assert {"features", "quality", "affect", "events"} <= used_measurements
    assert any(m.startswith(RAW_PREFIX) for m in used_measurements)


def test_provisioning_points_at_the_dashboard_and_its_datasource() -> None:
    yaml = pytest.importorskip("yaml", reason="PyYAML reads Grafana's provisioning files")
    datasources = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "affectstream.yaml").read_text()
    )
    providers = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "affectstream.yaml").read_text()
    )
    (source,) = datasources["datasources"]
    assert source["type"] == "influxdb" and source["jsonData"]["version"] == "InfluxQL"
    uids = {
        target["datasource"]["uid"]
        for panel in dashboard()["panels"]  # type: ignore[attr-defined]
        for target in panel.get("targets", [])
    }
    assert uids == {source["uid"]}
    assert providers["providers"][0]["type"] == "file"


@pytest.mark.servers
def test_every_query_returns_data_on_a_real_influxdb(
    influx_target: InfluxTarget, tmp_path: Path
) -> None:
    pytest.importorskip("affectstream.signal.extractor")
    if influx_target.name == "external":
        pytest.skip("writes a fixed session id; run against the local InfluxDB only")
    with InfluxStore(influx_target.url, bucket=influx_target.bucket, spool_dir=tmp_path) as store:
        store.write(produced_batches())
        store.flush(timeout=30)
        start_ns = int(T0_S * 1e9) - 10**9
        substitutions = {
            "$participant": SESSION_TAGS["participant"],
            "$session": SESSION_TAGS["session"],
            "$model": ".*",
            "$timeFilter": f"time >= {start_ns} AND time < {start_ns + 3600 * 10**9}",
            "$__interval": "1s",
        }
        for query in dashboard_queries():
            for variable, value in substitutions.items():
                query = query.replace(variable, value)
            series = store.query(query)
            values = [v for s in series for row in s["values"] for v in row[1:] if v is not None]
            assert values, f"no data for: {query}"


def test_panels_are_per_session_with_one_unit_each() -> None:
    """No averaging across sessions or participants; one unit per panel axis; one row per
    participant; the data source does not claim to be Grafana's default."""
    yaml = pytest.importorskip("yaml", reason="PyYAML reads Grafana's provisioning files")
    board = dashboard()
    panels = board["panels"]  # type: ignore[index]
    rows = [p for p in panels if p["type"] == "row"]  # type: ignore[index]
    assert [r.get("repeat") for r in rows] == ["participant"]
    for p in panels:  # type: ignore[attr-defined]
        if p["type"] != "timeseries":
            continue
        defaults = p["fieldConfig"]["defaults"]
        assert defaults.get("unit"), p["title"]
        assert not any(
            prop["id"] == "unit" for o in p["fieldConfig"]["overrides"] for prop in o["properties"]
        ), p["title"]
        for t in p["targets"]:
            assert 'GROUP BY time($__interval), "session"' in t["query"], t["query"]
        if any(t["query"].split(" FROM ")[1].startswith('"raw_') for t in p["targets"]):
            assert all("min(" in t["query"] and "max(" in t["query"] for t in p["targets"]) or (
                p["title"] == "Heart rate"
            ), p["title"]
    (source,) = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "affectstream.yaml").read_text()
    )["datasources"]
    assert source["isDefault"] is False
