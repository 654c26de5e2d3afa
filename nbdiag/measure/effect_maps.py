"""Voxel-wise OLS effect maps by scan class, computed in one pass over time (no I/O).

For a voxel with time course ``Y`` (design rows only), nilearn's
``FirstLevelModel`` with ``signal_scaling=0`` fits ``y = 100 (Y / m - 1)`` with
``m = max(mean(Y), 1)`` (``mean_scaling``), and its OLS ``effect_size`` for a
contrast ``c`` is ``wᵀy`` with ``w = pinv(X)ᵀc``. Splitting the sum by scan
class ``k`` gives parts that add up to it::

    part_k = 100 / m * Σ_{t in k} w_t Y_t  -  100 * Σ_{t in k} w_t

Both sums are linear in ``Y``, so a whole run is reduced in one pass over its
volumes: ``A += Y_chunkᵀ V_chunk`` where the columns of ``V`` are the class-masked
weights of every (variant, contrast, class) plus each variant's row indicator
(for ``m``). ``EffectPlan`` holds ``V``; :func:`accumulate` and
:func:`finish` do the arithmetic; :func:`effect_maps` does both on an array in
memory (tests, small runs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from nbdiag.diagnostics.measured import class_order


@dataclass(frozen=True)
class EffectPlan:
    """The weight matrix ``V`` (volumes × columns) and what each column means.

    Attributes
    ----------
    weights : ndarray, shape (n_volumes, n_columns)
        Columns: for each key ``(variant, contrast)``, one per class (in
        ``classes[key]`` order); then one row-indicator column per variant.
    columns : dict
        ``(variant, contrast) -> list of column indices`` (one per class).
    classes : dict
        ``(variant, contrast) -> list of class names``.
    offsets : dict
        ``(variant, contrast) -> array of 100 Σ_{t in k} w_t`` per class.
    mean_column : dict
        ``variant -> column index`` of its row indicator; ``n_rows[variant]`` its count.
    """

    weights: np.ndarray
    columns: Mapping[tuple[str, str], list[int]]
    classes: Mapping[tuple[str, str], list[str]]
    offsets: Mapping[tuple[str, str], np.ndarray]
    mean_column: Mapping[str, int]
    n_rows: Mapping[str, int] = field(default_factory=dict)


def make_plan(n_volumes: int, variants: Mapping[str, dict]) -> EffectPlan:
    """Build the weight matrix for every variant and contrast.

    Parameters
    ----------
    n_volumes : int
        Volumes in the image.
    variants : mapping variant -> dict
        Each with ``weights`` (mapping contrast -> weight per design row),
        ``scan_classes`` (one class per design row) and ``rows`` (original
        volume index of each design row).

    Raises
    ------
    ValueError
        When lengths disagree or a row is outside the image.
    """
    cols: list[np.ndarray] = []
    columns, classes, offsets, mean_col, n_rows = {}, {}, {}, {}, {}
    for variant, spec in variants.items():
        rows = np.asarray(spec["rows"], dtype=int)
        sc = list(spec["scan_classes"])
        if len(sc) != rows.size:
            raise ValueError(f"variant {variant!r}: scan_classes has {len(sc)} entries, rows {rows.size}")
        if rows.size and (rows.min() < 0 or rows.max() >= n_volumes):
            raise ValueError(f"variant {variant!r}: design rows reach volume {int(rows.max())}; "
                             f"the image has {n_volumes}")
        order = class_order(sc)
        arr = np.asarray(sc, dtype=object)
        for contrast, w in spec["weights"].items():
            w = np.asarray(w, dtype=float)
            if w.size != rows.size:
                raise ValueError(f"variant {variant!r}, contrast {contrast!r}: {w.size} weights for {rows.size} rows")
            idx, offs = [], []
            for k in order:
                v = np.zeros(n_volumes)
                sel = arr == k
                v[rows[sel]] = w[sel]
                idx.append(len(cols))
                cols.append(v)
                offs.append(100.0 * float(w[sel].sum()))
            columns[(variant, contrast)] = idx
            classes[(variant, contrast)] = order
            offsets[(variant, contrast)] = np.asarray(offs)
        ind = np.zeros(n_volumes)
        ind[rows] = 1.0
        mean_col[variant] = len(cols)
        n_rows[variant] = int(rows.size)
        cols.append(ind)
    weights = np.column_stack(cols) if cols else np.zeros((n_volumes, 0))
    return EffectPlan(weights, columns, classes, offsets, mean_col, n_rows)


def accumulate(acc: np.ndarray | None, chunk: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``acc + chunkᵀ weights`` for a chunk of volumes (``chunk``: volumes × voxels, ``weights``: volumes × K)."""
    part = np.asarray(chunk, dtype=np.float64).T @ weights
    return part if acc is None else acc + part


def finish(acc: np.ndarray, plan: EffectPlan) -> dict[tuple[str, str], np.ndarray]:
    """Class parts (voxels × classes, percent) per (variant, contrast); their row sums are the effects."""
    out = {}
    for key, idx in plan.columns.items():
        variant = key[0]
        mean = acc[:, plan.mean_column[variant]] / max(plan.n_rows[variant], 1)
        m = np.maximum(mean, 1.0)
        out[key] = 100.0 * acc[:, idx] / m[:, None] - plan.offsets[key][None, :]
    return out


def effect_maps(Y: np.ndarray, variants: Mapping[str, dict],
                chunk: int = 64) -> tuple[EffectPlan, dict[tuple[str, str], np.ndarray]]:
    """Class parts for data in memory (``Y``: volumes × voxels), in time chunks of ``chunk`` volumes."""
    Y = np.asarray(Y)
    plan = make_plan(Y.shape[0], variants)
    acc = None
    for t0 in range(0, Y.shape[0], chunk):
        acc = accumulate(acc, Y[t0:t0 + chunk], plan.weights[t0:t0 + chunk])
    if acc is None:
        acc = np.zeros((Y.shape[1] if Y.ndim == 2 else 0, plan.weights.shape[1]))
    return plan, finish(acc, plan)


def summarize_parts(parts: np.ndarray, classes: Sequence[str], quantile: float = 0.05) -> dict:
    """Share of each class in the brain-mask mean and in the most negative ``quantile`` of voxels.

    Returns
    -------
    dict
        ``{"n_voxels", "mask_mean", "negative_tail": {"quantile", "threshold", "n_voxels", "mean"},
        "by_class": {class: {"mask_mean", "mask_share", "tail_mean", "tail_share"}}}`` (percent;
        shares are class mean / total mean, ``None`` when the total is 0).
    """
    parts = np.asarray(parts, dtype=float)
    effect = parts.sum(axis=1)
    n = effect.size
    if n == 0:
        return {"n_voxels": 0, "mask_mean": None, "negative_tail": None, "by_class": {}}
    thr = float(np.quantile(effect, quantile))
    tail = effect <= thr
    total, tail_total = float(effect.mean()), float(effect[tail].mean())
    by = {}
    for i, k in enumerate(classes):
        mm, tm = float(parts[:, i].mean()), float(parts[tail, i].mean())
        by[k] = {"mask_mean": mm, "mask_share": mm / total if total else None,
                 "tail_mean": tm, "tail_share": tm / tail_total if tail_total else None}
    return {"n_voxels": int(n), "mask_mean": total,
            "negative_tail": {"quantile": quantile, "threshold": thr, "n_voxels": int(tail.sum()),
                              "mean": tail_total},
            "by_class": by}
