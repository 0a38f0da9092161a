"""``affectstream bench models``: training time, single-row latency and batch throughput."""

from __future__ import annotations

import argparse
import time
from typing import Any

from affectstream.cli._output import add_json_argument, emit_result, say


def register(subparsers: Any) -> None:
    """Add ``bench models`` to ``subparsers`` (see :mod:`affectstream.cli`)."""
    parser = subparsers.add_parser(
        "models", help="LightGBM and SVM: training time, single-row latency, batch throughput"
    )
    parser.add_argument("--rows", type=int, default=20000, help="training windows (synthetic)")
    parser.add_argument("--features", type=int, default=60, help="feature columns")
    parser.add_argument("--svm-rows", type=int, default=3000, help="SVM training windows")
    parser.add_argument("--repeats", type=int, default=2000, help="single-row predictions timed")
    add_json_argument(parser)
    parser.set_defaults(func=run)


def _single_row_us(predict: Any, rows: Any, repeats: int) -> dict[str, float]:
    import numpy as np

    for i in range(min(50, repeats)):  # warm caches
        predict(rows[i % len(rows)][None, :])
    times = np.empty(repeats)
    for i in range(repeats):
        row = rows[i % len(rows)][None, :]
        start = time.perf_counter()
        predict(row)
        times[i] = time.perf_counter() - start
    return {
        "median_us": float(np.median(times) * 1e6),
        "p95_us": float(np.percentile(times, 95) * 1e6),
    }


def run(args: argparse.Namespace) -> int:
    """Benchmark both models on synthetic normalised features; print JSON last."""
    import numpy as np

    from affectstream.models.estimators import KINDS, make_pipeline, min_child_samples

    rng = np.random.default_rng(0)
    n, k = args.rows, args.features
    matrix = rng.normal(size=(n, k))
    matrix[rng.random((n, k)) < 0.05] = np.nan  # missing modalities happen
    logits = np.nansum(matrix[:, :5], axis=1) + rng.normal(scale=2.0, size=n)
    y = (logits > 0).astype(int)
    names = [f"bench_f{j:02d}" for j in range(k)]
    results: dict[str, Any] = {"rows": n, "features": k}
    for kind in KINDS:
        rows = n if kind == "lightgbm" else min(n, args.svm_rows)
        params = {"min_child_samples": min_child_samples(rows)} if kind == "lightgbm" else None
        pipeline = make_pipeline(kind, names, params=params)
        model = type(pipeline)(pipeline.steps[1:])  # features arrive already normalised
        say(f"training {kind} on {rows} rows x {k} features")
        start = time.perf_counter()
        if kind == "lightgbm":
            model.fit(matrix[:rows], y[:rows], model__feature_name=names)
            booster = model.named_steps["model"].booster_
            predict = booster.predict
        else:
            model.fit(matrix[:rows], y[:rows])
            predict = model.predict_proba
        train_s = time.perf_counter() - start
        test = matrix[-2000:]
        single = _single_row_us(predict, test, args.repeats)
        start = time.perf_counter()
        predict(test)
        batch_s = time.perf_counter() - start
        results[kind] = {
            "train_rows": rows,
            "train_seconds": train_s,
            "single_row_latency_us": single["median_us"],
            "single_row_latency_p95_us": single["p95_us"],
            "batch_rows": len(test),
            "batch_rows_per_second": len(test) / batch_s,
            "predict_path": "lightgbm.Booster.predict"
            if kind == "lightgbm"
            else "Pipeline(SimpleImputer, CalibratedClassifierCV(SVC)).predict_proba",
        }
        if kind == "svm":
            calibrated = model.named_steps["model"].calibrated_classifiers_[0].estimator
            results[kind]["support_vectors"] = int(calibrated.support_vectors_.shape[0])
    results["bundle_estimate"] = _bundle_estimate_us(min(args.repeats, 500))
    for kind in ("lightgbm", "svm"):
        entry = results[kind]
        say(
            f"{kind}: trained in {entry['train_seconds']:.2f} s, one row "
            f"{entry['single_row_latency_us']:.0f} us (p95 {entry['single_row_latency_p95_us']:.0f}"
            f" us), {entry['batch_rows_per_second']:,.0f} rows/s in a batch"
        )
    emit_result(args, results)
    return 0


def _bundle_estimate_us(repeats: int) -> dict[str, Any] | None:
    """Latency of one live estimate through a shipped bundle: normalise, both models, top-5."""
    import numpy as np

    from affectstream.models.bundle import load_bundle, shipped_bundles

    if "stress-wrist" not in shipped_bundles():
        return None
    bundle = load_bundle("stress-wrist", allow_version_mismatch=True)
    rng = np.random.default_rng(1)
    n = len(bundle.features)
    rows = [dict(zip(bundle.features, rng.normal(size=n), strict=True)) for _ in range(50)]
    center, scale = np.zeros(n), np.ones(n)
    out: dict[str, Any] = {"bundle": bundle.model_id, "features": n}
    for label, with_svm in (("with_svm", True), ("lightgbm_only", False)):
        for row in rows[:10]:
            bundle.estimate(row, center, scale, with_svm=with_svm)
        times = np.empty(repeats)
        for i in range(repeats):
            start = time.perf_counter()
            bundle.estimate(rows[i % len(rows)], center, scale, with_svm=with_svm)
            times[i] = time.perf_counter() - start
        out[label] = {
            "median_us": float(np.median(times) * 1e6),
            "p95_us": float(np.percentile(times, 95) * 1e6),
        }
    out["path"] = "ModelBundle.estimate: normalise + Booster (+ SVM) + pred_contrib top 5"
    return out
