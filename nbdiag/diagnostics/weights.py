"""Contrast weight time courses and where their negative weight falls.

For the OLS fit nilearn runs (``nilearn.glm.regression.OLSModel``:
``beta = scipy.linalg.pinv(X) @ y``), a contrast estimate is

    c_hat = c @ pinv(X) @ y = w @ y,   w = pinv(X).T @ c

so any unmodelled signal ``m`` in the data moves the estimate by exactly
``w @ m``. The scans with negative weight are the contrast's *baseline*: what
they contain is what the condition is compared with.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from nbdiag.diagnostics._linalg import DesignAlgebra
from nbdiag.core.findings import Finding
from nbdiag.core.thresholds import Thresholds
from nbdiag.core import codes

#: Baseline classes that always appear in a composition (even at 0).
BASE_CLASSES = ("nonsteady", "unmodeled_event", "short_gap", "run_edge", "fixation")


def _matrix(design: pd.DataFrame | np.ndarray) -> np.ndarray:
    X = design.to_numpy(dtype=float) if isinstance(design, pd.DataFrame) else np.asarray(design, dtype=float)
    if X.ndim != 2:
        raise ValueError(f"design must be 2-D (scans x columns); got shape {X.shape}")
    return X


def _vector(design: pd.DataFrame | np.ndarray, c: Any, X: np.ndarray | None = None) -> np.ndarray:
    X = _matrix(design) if X is None else X
    if isinstance(c, dict):
        if not isinstance(design, pd.DataFrame):
            raise TypeError("c given as a dict needs design as a DataFrame (column names)")
        unknown = [k for k in c if k not in design.columns]
        if unknown:
            raise ValueError(f"c names columns not in the design: {unknown}; columns: {list(design.columns)}")
        c = [float(c.get(col, 0.0)) for col in design.columns]
    vec = np.asarray(c, dtype=float).ravel()
    if vec.size != X.shape[1]:
        raise ValueError(
            f"c must have one weight per design column ({X.shape[1]}); got {vec.size}"
        )
    return vec


def pinv_design(design: pd.DataFrame | np.ndarray, algebra: DesignAlgebra | None = None) -> np.ndarray:
    """``scipy.linalg.pinv(X)``, the pseudo-inverse nilearn's OLSModel uses (bit for bit)."""
    X = _matrix(design)
    return np.array(DesignAlgebra.for_design(X, algebra).pinv)


def contrast_weights(design: pd.DataFrame | np.ndarray, c: Any,
                     algebra: DesignAlgebra | None = None) -> np.ndarray:
    """Weight of every scan in the contrast estimate, ``w = pinv(X).T @ c``.

    Parameters
    ----------
    design : DataFrame or ndarray, shape (n_scans, n_columns)
    c : array-like of length n_columns, or dict column -> weight
    algebra : DesignAlgebra, optional
        The design's factorisation when the caller already has it (one SVD
        per design instead of one per call).

    Returns
    -------
    ndarray, shape (n_scans,)
        ``w`` such that nilearn's OLS contrast estimate equals ``w @ y``.
    """
    X = _matrix(design)
    return DesignAlgebra.for_design(X, algebra).weights(_vector(design, c, X))


def contrast_variance(design: pd.DataFrame | np.ndarray, c: Any,
                      algebra: DesignAlgebra | None = None) -> float:
    """``c (X'X)^+ c'`` per unit noise variance, as ``w @ w`` with ``w = pinv(X).T @ c``.

    Equals nilearn's ``c @ normalized_cov_beta @ c`` (``pinv(X) pinv(X)'``) to
    rounding, and stays non-negative for nearly singular designs.
    """
    X = _matrix(design)
    return DesignAlgebra.for_design(X, algebra).variance(_vector(design, c, X))


def baseline_composition(weights: np.ndarray, scan_classes: Sequence[str],
                         n_edge: int | None = None, edge_fraction: float = 0.10) -> dict[str, Any]:
    """Shares of a contrast's negative and positive weight per scan class.

    Parameters
    ----------
    weights : ndarray, shape (n_scans,)
        From ``contrast_weights``.
    scan_classes : sequence of str
        From ``classify_scans`` (one per row).
    n_edge : int, optional
        Rows counted as run edge at each end; default ``ceil(edge_fraction * n)``.
    edge_fraction : float
        Used when ``n_edge`` is not given.

    Returns
    -------
    dict
        ``negative`` / ``positive``: class -> share of the total negative
        (positive) weight (sums to 1 when there is any), ``edge_share``: share of
        the negative weight in the first/last ``n_edge`` rows, ``negative_total``,
        ``positive_total``, ``n_edge``.
    """
    w = np.asarray(weights, dtype=float).ravel()
    if len(scan_classes) != w.size:
        raise ValueError(
            f"scan_classes must have one entry per weight ({w.size}); got {len(scan_classes)}"
        )
    n = w.size
    if n_edge is None:
        n_edge = int(np.ceil(edge_fraction * n))
    classes = np.asarray(scan_classes, dtype=object)
    names = list(BASE_CLASSES) + sorted({c for c in scan_classes if c not in BASE_CLASSES})
    neg = np.where(w < 0, -w, 0.0)
    pos = np.where(w > 0, w, 0.0)
    neg_tot, pos_tot = float(neg.sum()), float(pos.sum())
    out_neg = {k: (float(neg[classes == k].sum() / neg_tot) if neg_tot > 0 else 0.0) for k in names}
    out_pos = {k: (float(pos[classes == k].sum() / pos_tot) if pos_tot > 0 else 0.0) for k in names}
    edge = np.zeros(n, dtype=bool)
    if n_edge > 0:
        edge[:n_edge] = True
        edge[-n_edge:] = True
    edge_share = float(neg[edge].sum() / neg_tot) if neg_tot > 0 else 0.0
    return {"negative": out_neg, "positive": out_pos, "edge_share": edge_share,
            "negative_total": neg_tot, "positive_total": pos_tot, "n_edge": int(n_edge)}


def composition_findings(contrast: str, composition: dict[str, Any], thresholds: Thresholds,
                         unmodeled_types: Sequence[str] = ()) -> list[Finding]:
    """Baseline findings for one contrast from its weight composition.

    ``baseline_unmodeled_events``: warn when listed-but-unmodelled events carry
    at least ``unmodeled_weight_warn`` of the negative weight, fail at
    ``unmodeled_weight_fail``. ``baseline_short_gaps``: warn at
    ``short_gaps_weight_warn`` (short gaps: pre-block cue time and transition
gaps, see ``nbdiag.diagnostics.baseline``). ``baseline_edge_concentrated``: warn when
    ``edge_share >= edge_weight_warn``. Scores are the shares (the explanation
    engine rescales them with the sensitivity numbers).
    """
    neg = composition["negative"]
    out: list[Finding] = []
    share_u = float(neg.get("unmodeled_event", 0.0))
    if share_u >= thresholds.unmodeled_weight_warn and share_u > 0:
        sev = "fail" if share_u >= thresholds.unmodeled_weight_fail else "warn"
        types = ", ".join(unmodeled_types) or "unmodelled events"
        out.append(codes.BASELINE_UNMODELED_EVENTS.finding(
            severity=sev, contrast=contrast,
            title="Unmodelled events sit in the baseline",
            message=f"{share_u:.0%} of {contrast}'s baseline (negative) weight falls on scans during "
                    f"{types}, which are listed in events.tsv but not modelled; any response to them "
                    f"lowers {contrast}.",
            evidence={"negative_weight_share": share_u, "event_types": list(unmodeled_types),
                      "fail_at": thresholds.unmodeled_weight_fail},
            score=share_u,
            fix=f"Model {types} as its own condition (keep its rows in the events passed to "
                f"FirstLevelModel.fit) so it leaves the implicit baseline.",
        ))
    share_g = float(neg.get("short_gap", 0.0))
    if share_g >= thresholds.short_gaps_weight_warn and share_g > 0:
        out.append(codes.BASELINE_SHORT_GAPS.finding(
            severity="warn", contrast=contrast,
            title="Short gaps next to blocks act as baseline",
            message=f"{share_g:.0%} of {contrast}'s negative weight falls in short unmodelled gaps next to "
                    f"blocks: the last {thresholds.pre_block_seconds:g} s before a block onset with no "
                    f"modelled event (where a cue/instruction screen would be) or gaps shorter than "
                    f"{thresholds.short_gap_seconds:g} s between events. A response there (cue, transition) "
                    f"is read as baseline and lowers {contrast}.",
            evidence={"negative_weight_share": share_g, "short_gap_seconds": thresholds.short_gap_seconds,
                      "pre_block_seconds": thresholds.pre_block_seconds,
                      "warn_at": thresholds.short_gaps_weight_warn},
            score=share_g,
            fix="Model the cue/transition periods as a condition, or lengthen fixation between blocks.",
        ))
    edge = float(composition.get("edge_share", 0.0))
    if edge >= thresholds.edge_weight_warn:
        out.append(codes.BASELINE_EDGE_CONCENTRATED.finding(
            severity="warn", contrast=contrast,
            title="Baseline weight concentrated at the run edges",
            message=f"{edge:.0%} of {contrast}'s negative weight falls in the first/last "
                    f"{thresholds.edge_fraction:.0%} of the run, where signal settling and drift are "
                    f"read as baseline.",
            evidence={"edge_share": edge, "edge_fraction": thresholds.edge_fraction,
                      "warn_at": thresholds.edge_weight_warn},
            score=edge,
            fix="Add fixation epochs inside the run (not only at its start/end), discard the first "
                "volumes with a sample mask, or interpret differential contrasts.",
        ))
    return out
