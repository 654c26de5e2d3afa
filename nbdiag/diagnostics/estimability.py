"""Contrast estimability, variance, efficiency and contrast VIF.

Definitions
-----------
Estimability (SPM's rule)
    ``c`` is estimable when it lies in the row space of ``X``. SPM12 checks it
    with ``spm_SpUtil('isCon', X, c)`` -> ``spm_sp('eachinspp', sX, c)``:
    with ``[u, s, v] = svd(X, 0)``, ``tol = max(size(X)) * max(abs(s)) * eps``
    (``spm_sp('Set')``), ``rk = sum(s > tol)`` and the row-space projector
    ``oPp = v(:, 1:rk) * v(:, 1:rk)'`` (``spm_sp('oPp')``), the contrast is
    estimable iff ``all(abs(oPp * c - c) <= tol)``. :func:`is_estimable`
    implements exactly this (``eps`` = float64 machine epsilon).
Variance and efficiency
    ``variance = c (XᵀX)⁺ cᵀ`` computed as nilearn's ``OLSModel`` does:
    ``normalized_cov_beta = pinv(X) @ pinv(X).T`` with ``scipy.linalg.pinv``
    (nilearn/glm/regression.py), i.e. the variance of ``cβ̂`` per unit noise
    variance under white noise. ``efficiency = 1 / variance``.
Contrast VIF (cVIF)
    Mumford et al. (2025, Imaging Neuroscience, Appendix C; code
    github.com/jmumford/vif_contrasts ``est_contrast_vifs``), building on
    Smith et al. (2007, NeuroImage 34:127-136)::

        cVIF = c (ZᵀZ)⁻¹ cᵀ / c (ZᵀZ ∘ I)⁻¹ cᵀ

    where ``Z`` holds every non-constant design column (task, confounds,
    spikes, drifts), each **centred** and scaled to unit norm, and ``c`` is
    restricted to those columns (weight on the constant is dropped). Since
    ``ZᵀZ ∘ I = I`` the denominator is ``c cᵀ``: the variance the contrast
    would have if its regressors were orthogonal to each other *and to the
    constant* (centring is what makes the constant count among "everything
    else", by Frisch-Waugh). When conditions tile the run, each column is
    nearly the constant minus the others, so a single-condition contrast
    (``c`` not orthogonal to the near-null direction ``(1, 1, ..., 1)``) gets a
    very large cVIF while a difference ``a - b`` (orthogonal to it) does not.
    ``(ZᵀZ)⁻¹`` is taken as a pseudo-inverse; a non-estimable contrast gets
    ``inf``.
Computation
    Every quantity above comes from one SVD per matrix (``X`` and the centred,
    scaled ``Z``), shared by all contrasts of a design: ``scipy.linalg.svd``, the
    factorisation ``scipy.linalg.pinv`` itself uses, with pinv's cut-off
    (``s > max(M, N) * eps * s_max``) for the pseudo-inverse and SPM's for the
    estimability rule. A small cache keyed on the matrix contents holds the
    last few factorisations.
FSL "effect required"
    Not computed (``None``): FEAT's value (feat_model) scales the contrast's
    efficiency by a noise level and AR(1) smoothness that FEAT *assumes or
    estimates from the data* and by the regressor height in % of the mean
    signal; a design-only audit has neither, and inventing them would give a
    number that looks like FSL's but is not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import pandas as pd
import scipy.linalg as spl

from nbdiag.diagnostics.collinearity import _is_constant_column, _json_float, _source
from nbdiag.findings import Finding
from nbdiag.thresholds import Thresholds
from nbdiag import codes


def _as_design(X: Any, name: str = "X") -> np.ndarray:
    arr = np.asarray(X.to_numpy(dtype=float) if isinstance(X, pd.DataFrame) else X, dtype=float)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D design matrix (scans x columns); got shape {arr.shape}")
    return arr


def _as_contrast(c: Any, n_columns: int) -> np.ndarray:
    vec = np.asarray(c, dtype=float).ravel()
    if vec.size != n_columns:
        raise ValueError(
            f"c must have one weight per design column ({n_columns}); got {vec.size}"
        )
    return vec


_SVD_CACHE: dict[tuple, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
_SVD_CACHE_SIZE = 8


_PINV_CACHE: dict[tuple, list] = {}


def clear_svd_cache() -> None:
    """Forget cached factorisations and pseudo-inverses (benchmarks use it)."""
    _SVD_CACHE.clear()
    _PINV_CACHE.clear()


def _svd(X: np.ndarray, key: tuple | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thin ``scipy.linalg.svd(X)`` (as in ``scipy.linalg.pinv``), cached on X's contents."""
    X = np.ascontiguousarray(X, dtype=float)
    if key is None:
        key = (X.shape, X.tobytes())
    hit = _SVD_CACHE.get(key)
    if hit is not None:
        return hit[1], hit[2], hit[3]
    if X.size == 0:
        u, s, vt = np.zeros((X.shape[0], 0)), np.zeros(0), np.zeros((0, X.shape[1]))
    else:
        u, s, vt = spl.svd(X, full_matrices=False)
    for a in (u, s, vt):
        a.setflags(write=False)
    if len(_SVD_CACHE) >= _SVD_CACHE_SIZE:
        _SVD_CACHE.pop(next(iter(_SVD_CACHE)))
    _SVD_CACHE[key] = (X, u, s, vt)
    return u, s, vt


def _pinv_t_dot(X: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``scipy.linalg.pinv(X).T @ c`` from the cached SVD (pinv's cut-off)."""
    u, s, vt = _svd(X)
    if s.size == 0:
        return np.zeros(X.shape[0])
    rank = int(np.sum(s > s.max() * max(X.shape) * np.finfo(float).eps))
    ur = u[:, :rank] / s[:rank]
    pinv = (ur @ vt[:rank]).conj().T  # scipy.linalg.pinv's own steps, so ill-conditioned designs agree too
    return pinv.T @ c


def pinv_cached(X: np.ndarray) -> np.ndarray:
    """``scipy.linalg.pinv(X)`` (default tolerances), bit for bit, from the cached SVD.

    The same steps as scipy's ``pinv`` (``rank = sum(s > max(s) * max(M, N) * eps)``,
    ``(u[:, :rank] / s[:rank]) @ vh[:rank]``, conjugate transpose) on the same
    ``scipy.linalg.svd``; cached on X's contents (read-only result), cleared by
    :func:`clear_svd_cache`. ``tests/test_weights.py`` checks equality with scipy.
    """
    return _pinv_entry(X)[1]


def pinv_gram_cached(X: np.ndarray) -> np.ndarray:
    """``P @ P.T`` with ``P = pinv_cached(X)`` (nilearn's ``normalized_cov_beta``), cached."""
    entry = _pinv_entry(X)
    if entry[2] is None:
        gram = entry[1] @ entry[1].T
        gram.setflags(write=False)
        entry[2] = gram
    return entry[2]


def _pinv_entry(X: np.ndarray) -> list:
    X = np.ascontiguousarray(X, dtype=float)
    key = (X.shape, X.tobytes())
    hit = _PINV_CACHE.get(key)
    if hit is not None:
        return hit
    u, s, vt = _svd(X, key)
    max_s = np.max(s, initial=0.0)
    rank = np.sum(s > 0.0 + max_s * (max(X.shape) * np.finfo(float).eps))
    pinv = ((u[:, :rank] / s[:rank]) @ vt[:rank]).conj().T
    pinv.setflags(write=False)
    if len(_PINV_CACHE) >= _SVD_CACHE_SIZE:
        _PINV_CACHE.pop(next(iter(_PINV_CACHE)))
    entry = [X, pinv, None]
    _PINV_CACHE[key] = entry
    return entry


def spm_tolerance(X: np.ndarray) -> float:
    """SPM's ``spm_sp('Set')`` tolerance: ``max(size(X)) * max(svd(X)) * eps``."""
    X = _as_design(X)
    s = _svd(X)[1]
    return float(max(X.shape) * (s.max() if s.size else 0.0) * np.finfo(float).eps)


def is_estimable(X: Any, c: Any) -> bool:
    """Whether contrast ``c`` is estimable in design ``X`` (SPM12 ``isCon``).

    Parameters
    ----------
    X : array or DataFrame, shape (n_scans, n_columns)
    c : array-like, shape (n_columns,)

    Returns
    -------
    bool
        ``all(abs(oPp @ c - c) <= tol)`` with SPM's ``tol`` and row-space
        projector (module docstring).
    """
    X = _as_design(X)
    c = _as_contrast(c, X.shape[1])
    _, s, vt = _svd(X)
    tol = spm_tolerance(X)
    rk = int(np.sum(s > tol))
    v = vt[:rk].T
    proj = v @ (v.T @ c)
    return bool(np.all(np.abs(proj - c) <= tol))


def contrast_variance(X: Any, c: Any) -> float:
    """``c (XᵀX)⁺ cᵀ`` exactly as nilearn's ``OLSModel`` computes it.

    nilearn uses ``scipy.linalg.pinv(X)`` then ``pinv @ pinv.T`` (its
    ``normalized_cov_beta``); this is ``w @ w`` with ``w = pinv(X).T @ c`` taken
    from the same SVD and cut-off pinv uses (module docstring).
    """
    X = _as_design(X)
    c = _as_contrast(c, X.shape[1])
    w = _pinv_t_dot(X, c)  # weight time course: c beta_hat = w . y
    return float(w @ w)


def contrast_weights(X: Any, c: Any) -> np.ndarray:
    """Weight time course ``w = pinv(X)ᵀ c`` (so that ``cβ̂ = wᵀy``)."""
    X = _as_design(X)
    return _pinv_t_dot(X, _as_contrast(c, X.shape[1]))


def contrast_vif(X: Any, c: Any) -> float:
    """Contrast VIF (Mumford et al. 2025; module docstring).

    Parameters
    ----------
    X : array or DataFrame, shape (n_scans, n_columns)
    c : array-like, shape (n_columns,)

    Returns
    -------
    float
        1 for orthogonal columns; above 1 when collinearity inflates the
        contrast's variance, below 1 when it helps (e.g. ``a - b`` with
        negatively correlated ``a`` and ``b``); ``inf`` if not estimable among
        the centred columns; ``nan`` if ``c`` has no weight on non-constant columns.
    """
    X = _as_design(X)
    c = _as_contrast(c, X.shape[1])
    keep = np.array([not _is_constant_column(X[:, j]) and np.ptp(X[:, j]) > 0 for j in range(X.shape[1])])
    Z = X[:, keep] - X[:, keep].mean(axis=0)
    Z = Z / np.linalg.norm(Z, axis=0)
    ck = c[keep]
    best = float(ck @ ck)
    if best == 0:
        return float("nan")
    if not is_estimable(Z, ck):
        return float("inf")
    w = _pinv_t_dot(Z, ck)
    return float(w @ w) / best


@dataclass(frozen=True)
class ContrastStats:
    """Estimability measures of one contrast.

    Parameters
    ----------
    estimable : bool
        SPM ``isCon`` rule.
    variance : float
        ``c (XᵀX)⁺ cᵀ`` (per unit noise variance).
    efficiency : float
        ``1 / variance``.
    cvif : float
        Contrast VIF (Mumford et al. 2025).
    effect_required_pct : None
        FSL's "effect required"; not reproduced (module docstring).
    findings : tuple of Finding
    """

    estimable: bool
    variance: float
    efficiency: float
    cvif: float
    effect_required_pct: float | None = None
    findings: tuple[Finding, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """The estimability keys of the record's per-contrast entry."""
        return {
            "estimable": bool(self.estimable),
            "variance": _json_float(self.variance),
            "efficiency": _json_float(self.efficiency),
            "cvif": _json_float(self.cvif),
            "effect_required_pct": _json_float(self.effect_required_pct),
        }


def assess_contrast(
    design: pd.DataFrame,
    name: str,
    vector: Any,
    kind: str,
    thresholds: Thresholds | None = None,
) -> ContrastStats:
    """Estimability, variance, efficiency and cVIF of one contrast, with findings.

    Parameters
    ----------
    design : DataFrame
        Design matrix (nilearn column names).
    name : str
        Contrast name (used in findings).
    vector : array-like
        One weight per design column.
    kind : {"single", "differential", "other"}
        From :func:`nbdiag.contrasts.contrast_kind`; used in messages.
    thresholds : Thresholds, optional

    Returns
    -------
    ContrastStats
        Findings ``contrast_not_estimable`` (fail) and
        ``contrast_variance_inflated`` (warn ≥ cvif_warn, fail ≥ cvif_fail).
    """
    if kind not in ("single", "differential", "other"):
        raise ValueError(f"kind must be one of 'single', 'differential', 'other'; got {kind!r}")
    th = thresholds or Thresholds()
    X = _as_design(design, "design")
    c = _as_contrast(vector, X.shape[1])
    columns = [str(col) for col in design.columns] if isinstance(design, pd.DataFrame) else [str(i) for i in range(X.shape[1])]
    est = is_estimable(X, c)
    var = contrast_variance(X, c)
    eff = 1.0 / var if var > 0 else float("inf")
    cvif = contrast_vif(X, c)
    weighted = [col for col, w in zip(columns, c) if w != 0]
    findings: list[Finding] = []
    if not est:
        findings.append(codes.CONTRAST_NOT_ESTIMABLE.finding(
            severity="fail", contrast=name,
            title=f"Contrast {name} is not estimable",
            message=(
                f"Contrast {name} (weights on {', '.join(weighted)}) does not lie in the row "
                f"space of the design (SPM isCon rule, tolerance {spm_tolerance(X):.3g}): the "
                f"data cannot tell its value apart from other combinations of regressors. "
                f"nilearn still returns a number (from the pseudo-inverse), but it is arbitrary."
            ),
            evidence={"columns": weighted, "tolerance": spm_tolerance(X),
                      "rank": int(np.linalg.matrix_rank(X)), "n_columns": X.shape[1],
                      "threshold": "c in row space of X", "threshold_source": "SPM12 spm_SpUtil('isCon')"},
            score=100.0,
            fix=(
                "Leave part of the run unmodelled (implicit baseline) or test differences between "
                "conditions; remove columns that are sums of others (e.g. a rest condition "
                "tiling the run with the others)."
            ),
        ))
    if np.isfinite(cvif) or np.isinf(cvif):
        sev = None if np.isnan(cvif) else ("fail" if cvif >= th.cvif_fail else "warn" if cvif >= th.cvif_warn else None)
        if sev is not None:
            limit = th.cvif_fail if sev == "fail" else th.cvif_warn
            ctext = "infinite" if np.isinf(cvif) else f"{cvif:.1f}"
            extra = (
                " For a single-condition contrast this usually means the implicit baseline is "
                "scarce: the condition regressors nearly add up to the constant, so the "
                "condition-vs-baseline difference rests on few scans."
                if kind == "single" else ""
            )
            findings.append(codes.CONTRAST_VARIANCE_INFLATED.finding(
                severity=sev, contrast=name,
                title=f"The variance of contrast {name} is inflated {ctext}-fold",
                message=(
                    f"The contrast VIF of {name} is {ctext}: its variance is {ctext} times what it "
                    f"would be if its regressors were orthogonal to each other and to the "
                    f"constant (≥ {limit:g} gives {sev}).{extra}"
                ),
                evidence={"cvif": _json_float(cvif), "variance": _json_float(var),
                          "efficiency": _json_float(eff), "kind": kind, "threshold": limit,
                          "cvif_warn": th.cvif_warn, "cvif_fail": th.cvif_fail,
                          "threshold_source": _source("cvif_warn")},
                score=float(cvif / th.cvif_warn) if np.isfinite(cvif) else 1e6,
                fix=(
                    "Keep a real implicit baseline (do not model fixation/rest as a condition; "
                    "do not let conditions tile the run), or report differential contrasts such "
                    "as two_back - zero_back; reduce task-locked confounds and drift overlap."
                ),
            ))
    return ContrastStats(
        estimable=est, variance=var, efficiency=eff, cvif=cvif,
        effect_required_pct=None, findings=tuple(findings),
    )
