"""Validation of LightGBM's text model format before LightGBM parses it.

LightGBM parses a model's trees in parallel (OpenMP) and locates them by the byte sizes in
its ``tree_sizes`` header. A malformed file can therefore abort the whole process (an
exception thrown in a parallel region ends in ``std::terminate``, exit code 134) instead
of raising. A bundle's checksum proves the file is the one its ``bundle.json`` names, not
that it is well formed, so :func:`check_model_text` checks the structure first: the
header, every tree's arrays (lengths, indices in range, finite numbers) and the tree
sizes. Anything else is reported as one :class:`~affectstream.errors.ModelError` line.
"""

from __future__ import annotations

import math

from affectstream.errors import ModelError

__all__ = ["check_model_text"]

# Arrays of a tree with n leaves: n - 1 internal nodes, n leaves.
_INTERNAL = ("split_feature", "split_gain", "threshold", "decision_type", "left_child",
             "right_child", "internal_value", "internal_weight", "internal_count")  # fmt: skip
_LEAVES = ("leaf_value", "leaf_weight", "leaf_count")
_INTS = {"split_feature", "decision_type", "left_child", "right_child", "leaf_count",
         "internal_count"}  # fmt: skip


class _BadModelError(Exception):
    """Internal: what is wrong, turned into a ModelError naming the file."""


def _int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise _BadModelError(f"{what} is {text[:30]!r}, not an integer") from None


def _numbers(text: str, what: str, integer: bool, allow_inf: bool = False) -> list[float]:
    out: list[float] = []
    for token in text.split():
        try:
            value = float(int(token)) if integer else float(token)
        except ValueError:
            raise _BadModelError(f"{what} holds {token[:30]!r}, not a number") from None
        if math.isnan(value) or (math.isinf(value) and not allow_inf):
            raise _BadModelError(f"{what} holds {token[:30]!r}, not a finite number")
        out.append(value)
    return out


def _fields(block: str) -> dict[str, str]:
    out = {}
    for line in block.splitlines():
        if line:
            key, sep, value = line.partition("=")
            if not sep:
                raise _BadModelError(f"line {line[:40]!r} is not key=value")
            out[key] = value
    return out


def _check_tree(index: int, block: str, n_features: int) -> None:
    fields = _fields(block)
    what = f"Tree={index}"
    n_leaves = _int(fields.get("num_leaves", ""), f"{what} num_leaves")
    if n_leaves < 1:
        raise _BadModelError(f"{what} has {n_leaves} leaves")
    if _int(fields.get("num_cat", "0"), f"{what} num_cat") != 0:
        raise _BadModelError(f"{what} has categorical splits, which affectstream bundles never use")
    if _int(fields.get("is_linear", "0"), f"{what} is_linear") != 0:
        raise _BadModelError(f"{what} is a linear tree, which affectstream bundles never use")
    if n_leaves == 1:
        if len(_numbers(fields.get("leaf_value", ""), f"{what} leaf_value", False)) != 1:
            raise _BadModelError(f"{what} has one leaf but not one leaf_value")
        return
    arrays = {}
    for key, size in [(k, n_leaves - 1) for k in _INTERNAL] + [(k, n_leaves) for k in _LEAVES]:
        if key not in fields:
            raise _BadModelError(f"{what} has no {key}")
        # LightGBM itself writes an infinite threshold for a split that only separates
        # missing values from every present one (seen with monotone constraints).
        values = _numbers(fields[key], f"{what} {key}", key in _INTS, key == "threshold")
        if len(values) != size:
            raise _BadModelError(f"{what} {key} has {len(values)} values, expected {size}")
        arrays[key] = values
    if any(not 0 <= f < n_features for f in arrays["split_feature"]):
        raise _BadModelError(f"{what} splits on a feature outside 0..{n_features - 1}")
    for side in ("left_child", "right_child"):
        if any(not -n_leaves <= c <= n_leaves - 2 for c in arrays[side]):
            raise _BadModelError(f"{what} {side} points outside the tree")
    if any(not 0 <= d < 64 for d in arrays["decision_type"]):
        raise _BadModelError(f"{what} has an unknown decision_type")


def check_model_text(text: bytes, name: str = "lightgbm.txt") -> None:
    """Raise :class:`ModelError` unless ``text`` is a well-formed LightGBM text model.

    Parameters
    ----------
    text : bytes
        The file's content.
    name : str
        How to name the file in the message.
    """
    try:
        _check(text)
    except _BadModelError as exc:
        raise ModelError(
            f"{name} is not a valid LightGBM model ({exc}); it was not loaded. Re-copy or "
            "retrain the bundle."
        ) from None


def _check(data: bytes) -> None:
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise _BadModelError("it is not ASCII text") from None
    first_tree = text.find("\nTree=0\n")
    end = text.find("\nend of trees\n")
    if not text.startswith("tree\n") or first_tree < 0 or end < first_tree:
        raise _BadModelError("the header, 'Tree=0' or 'end of trees' is missing")
    header = _fields(text[len("tree\n") : first_tree + 1])
    for key in ("version", "num_class", "num_tree_per_iteration", "max_feature_idx"):
        if key not in header:
            raise _BadModelError(f"the header has no {key}")
    n_class = _int(header["num_class"], "num_class")
    per_iteration = _int(header["num_tree_per_iteration"], "num_tree_per_iteration")
    n_features = _int(header["max_feature_idx"], "max_feature_idx") + 1
    if n_class < 1 or per_iteration < 1 or n_features < 1:
        raise _BadModelError("num_class, num_tree_per_iteration and the feature count must be >= 1")
    if len(header.get("feature_names", "").split()) != n_features:
        raise _BadModelError(f"feature_names does not list {n_features} names")
    if len(header.get("feature_infos", "").split()) != n_features:
        raise _BadModelError(f"feature_infos does not hold {n_features} entries")
    trees = text[first_tree + 1 : end + 1]
    blocks = trees.split("\n\n\n")
    if blocks and blocks[-1].strip() == "":
        blocks = blocks[:-1]
    if not blocks or len(blocks) % per_iteration:
        raise _BadModelError(
            f"{len(blocks)} trees is not a multiple of {per_iteration} per iteration"
        )
    sizes = header.get("tree_sizes")
    if sizes is not None:
        expected = [len(block.encode()) + 3 for block in blocks]
        if _numbers(sizes, "tree_sizes", True) != [float(s) for s in expected]:
            raise _BadModelError("tree_sizes does not match the trees")
    for index, block in enumerate(blocks):
        head, _, body = block.partition("\n")
        if head != f"Tree={index}":
            raise _BadModelError(f"tree {index} starts with {head[:30]!r}")
        _check_tree(index, body, n_features)
