"""Write ``dashboards/affectstream.json`` (run after changing a panel; the JSON is committed).

    python deploy/grafana/build_dashboard.py

Layout: a sessions table (click a session: the time range jumps to it), then one row per
participant (Grafana repeats the row for every selected participant); in each row every
series is split by session (``GROUP BY "session"``), never averaged across participants or
sessions, and each panel has one unit on its axis. Raw waveforms are min/max envelopes per
``$__interval``: at long ranges an envelope, at short ones (an interval below the sample
period) the raw points themselves.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from affectstream.signal.extractor import FAMILY_ORDER as FAMILIES  # quality_<family> columns

OUT = Path(__file__).parent / "dashboards" / "affectstream.json"
DS = {"type": "influxdb", "uid": "affectstream-influxdb"}
WHERE = '"participant" =~ /^$participant$/ AND "session" =~ /^$session$/ AND $timeFilter'

_ids = iter(range(1, 1000))


def q(select: str, measurement: str, group: str = "", extra: str = "") -> str:
    """One InfluxQL query over the chosen participant and session(s)."""
    where = WHERE + (f" AND {extra}" if extra else "")
    tail = f" GROUP BY {group}" if group else ""
    return f'SELECT {select} FROM "{measurement}" WHERE {where}{tail}'


def series(select: str, measurement: str, by: str = '"session"', fill: str = "none") -> str:
    """A time series per session (and ``by``), aggregated per ``$__interval``."""
    return q(select, measurement, f"time($__interval), {by} fill({fill})")


def target(query: str, ref: str, alias: str = "$col $tag_session", fmt: str = "time_series") -> Any:
    return {
        "refId": ref,
        "datasource": DS,
        "rawQuery": True,
        "resultFormat": fmt,
        "query": query,
        "alias": alias,
    }


def panel(
    title: str,
    queries: list[str],
    *,
    unit: str,
    w: int = 12,
    h: int = 8,
    kind: str = "timeseries",
    description: str = "",
    minmax: tuple[float, float] | None = None,
    alias: str = "$col $tag_session",
    fmt: str = "time_series",
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": unit, "custom": {"lineWidth": 1, "spanNulls": False}}
    if minmax is not None:
        defaults["min"], defaults["max"] = minmax
    out: dict[str, Any] = {
        "id": next(_ids),
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "gridPos": {"h": h, "w": w, "x": 0, "y": 0},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "none"},
        },
        "targets": [target(s, chr(65 + i), alias, fmt) for i, s in enumerate(queries)],
    }
    out.update(extra or {})
    return out


def envelope(title: str, measurement: str, channels: list[str], unit: str) -> dict[str, Any]:
    select = ", ".join(f'min("{c}") AS "{c} min", max("{c}") AS "{c} max"' for c in channels)
    return panel(
        title,
        [series(select, measurement, '"session", "stream"')],
        unit=unit,
        description=(
            f"{measurement}: min and max per interval (an envelope at long ranges; at short "
            "ranges each interval holds one sample, so these are the raw points)."
        ),
        alias="$col $tag_stream",
        extra={"interval": "1ms", "maxDataPoints": 2000},
    )


def participant_row() -> list[dict[str, Any]]:
    row = {
        "id": next(_ids),
        "type": "row",
        "title": "Participant $participant",
        "collapsed": False,
        "repeat": "participant",
        "gridPos": {"h": 1, "w": 24, "x": 0, "y": 0},
        "panels": [],
    }
    unit01 = {"unit": "percentunit", "minmax": (0.0, 1.0)}
    panels = [
        panel(
            "Arousal (0 calm - 1 aroused)",
            [series('mean("arousal") AS "arousal"', "affect", '"session", "model"')],
            alias="$col $tag_session ($tag_model)",
            **unit01,
        ),
        panel(
            "Arousal confidence",
            [series('mean("arousal_confidence") AS "confidence"', "affect", '"session", "model"')],
            alias="$col $tag_session ($tag_model)",
            **unit01,
            description="coverage x agreement x reference (affectstream.runtime.estimator)",
        ),
        panel(
            "Valence (0 unpleasant - 1 pleasant)",
            [series('mean("valence") AS "valence"', "affect")],
            **unit01,
            description="Uncalibrated unless the table says so; see the valence basis.",
        ),
        panel(
            "Why: latest top contributions, basis and calibration",
            [
                q(
                    'last("arousal_top1") AS "top 1", last("arousal_top2") AS "top 2", '
                    'last("arousal_top3") AS "top 3", last("arousal_calibrated") AS '
                    '"arousal calibrated", last("valence_basis") AS "valence basis", '
                    'last("valence_calibrated") AS "valence calibrated"',
                    "affect",
                    '"session"',
                )
            ],
            unit="none",
            kind="table",
            fmt="table",
            alias="",
            description="feature:contribution (log-odds) of the latest estimate per session.",
        ),
        panel(
            "Signal quality per family",
            [series(", ".join(f'mean("quality_{f}") AS "{f}"' for f in FAMILIES), "quality")],
            **unit01,
        ),
        panel(
            "Gaps per stream (samples lost)",
            [
                series(
                    'sum("n_samples") AS "gap samples"', "events", '"session", "stream"', fill="0"
                )
            ],
            unit="short",
            alias="$tag_stream ($tag_session)",
            extra={
                "fieldConfig": {
                    "defaults": {"unit": "short", "custom": {"drawStyle": "bars"}},
                    "overrides": [],
                }
            },
        ),
        panel(
            "Heart rate",
            [
                series('mean("hrv_mean_hr") AS "mean HR (window)"', "features"),
                series('mean("hr") AS "HR (strap)"', "raw_hr"),
            ],
            unit="bpm",
        ),
        panel(
            "Heart-rate variability",
            [series('mean("hrv_rmssd") AS "RMSSD", mean("hrv_sdnn") AS "SDNN"', "features")],
            unit="ms",
        ),
        panel(
            "Skin conductance level",
            [series('mean("eda_tonic_mean") AS "tonic EDA"', "features")],
            unit="µS",
        ),
        panel(
            "Skin conductance responses",
            [series('mean("eda_scr_rate") AS "SCR rate"', "features")],
            unit="/min",
        ),
        panel(
            "EEG frontal alpha asymmetry",
            [series('mean("eeg_faa") AS "FAA"', "features")],
            unit="none",
            description="ln(alpha AF8) - ln(alpha AF7); no unit.",
        ),
        panel(
            "EEG relative alpha",
            [
                series(
                    'mean("eeg_alpha_rel_af7") AS "AF7", mean("eeg_alpha_rel_af8") AS "AF8"',
                    "features",
                )
            ],
            **unit01,
        ),
        envelope("ECG (raw)", "raw_ecg", ["ecg"], "µV"),
        envelope("EDA (raw)", "raw_eda", ["eda"], "µS"),
        envelope("EEG (raw, Muse)", "raw_eeg", ["tp9", "af7", "af8", "tp10"], "µV"),
        envelope("RR intervals (raw)", "raw_rr", ["rr"], "ms"),
    ]
    return [row, *panels]


def sessions_table() -> dict[str, Any]:
    link = (
        "/d/affectstream-session/affectstream-session?var-participant=${__data.fields.participant}"
        "&var-session=${__data.fields.session}&from=${__data.fields.start:date:x}"
        "&to=${__data.fields.end:date:x}"
    )
    select_first = 'first("arousal") AS "first"'
    select_last = 'last("arousal") AS "last"'
    where = '"participant" =~ /^$participant$/ AND $timeFilter'
    queries = [
        f'SELECT {s} FROM "affect" WHERE {where} GROUP BY "participant", "session"'
        for s in (select_first, select_last)
    ]
    return panel(
        "Sessions (click one: the time range follows it)",
        queries,
        unit="none",
        w=24,
        h=6,
        kind="table",
        fmt="table",
        alias="",
        extra={
            "transformations": [
                {"id": "joinByField", "options": {"byField": "session", "mode": "outer"}},
                {
                    "id": "organize",
                    "options": {
                        "renameByName": {
                            "Time 1": "start",
                            "Time 2": "end",
                            "participant 1": "participant",
                        },
                        "excludeByName": {"participant 2": True},
                    },
                },
            ],
            "fieldConfig": {
                "defaults": {"links": [{"title": "Show this session", "url": link}]},
                "overrides": [],
            },
        },
    )


def variable(name: str, label: str, query: str) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DS,
        "query": query,
        "definition": query,
        "refresh": 2,
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {},
        "sort": 1,
    }


def build() -> dict[str, Any]:
    panels = [sessions_table(), *participant_row()]
    x = y = 0
    for p in panels:  # flow the grid: rows full width, panels two a line
        pos = p["gridPos"]
        if x + pos["w"] > 24 or p["type"] == "row":
            x, y = 0, y + (1 if x else 0)
        pos["x"], pos["y"] = x, y
        x += pos["w"]
        if x >= 24:
            x, y = 0, y + pos["h"]
    return {
        "uid": "affectstream-session",
        "title": "affectstream: session",
        "tags": ["affectstream"],
        "description": "Per participant and session; see deploy/grafana/README.md.",
        "schemaVersion": 39,
        "version": 2,
        "editable": True,
        "graphTooltip": 1,
        "refresh": "5s",
        "time": {"from": "now-6h", "to": "now"},
        "timezone": "browser",
        "templating": {
            "list": [
                variable("participant", "Participant", 'SHOW TAG VALUES WITH KEY = "participant"'),
                variable(
                    "session",
                    "Session",
                    'SHOW TAG VALUES WITH KEY = "session" WHERE "participant" =~ /^$participant$/',
                ),
            ]
        },
        "annotations": {
            "list": [
                {
                    "name": "Events",
                    "datasource": DS,
                    "enable": True,
                    "iconColor": "orange",
                    "query": f'SELECT "label", "kind" FROM "events" WHERE {WHERE}',
                    "textColumn": "label",
                    "tagsColumn": "kind",
                }
            ]
        },
        "panels": panels,
    }


if __name__ == "__main__":
    OUT.write_text(json.dumps(build(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    sys.stdout.write(f"wrote {OUT}\n")
