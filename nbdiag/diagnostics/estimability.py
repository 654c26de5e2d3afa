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
    ``variance = c (XᵀX)⁺ cᵀ`` from nilearn's pseudo-inverse: nilearn's
    ``OLSModel`` takes ``normalized_cov_beta = pinv(X) @ pinv(X).T`` with
    ``scipy.linalg.pinv`` (nilearn/glm/regression.py); nbdiag computes the same
    number as ``w @ w`` with ``w = pinv(X).T @ c`` (never negative for nearly
    singular designs), i.e. the variance of ``cβ̂`` per unit noise variance
    under white noise. ``efficiency = 1 / variance``.
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
    estimability rule. The factorisation is an explicit
    :class:`~nbdiag.diagnostics._linalg.DesignAlgebra` passed in by the caller
    (``algebra=``), or built per call when none is given.
FSL "effect required"
    Not computed (``None``): FEAT's value (feat_model) scales the contrast's
    efficiency by a noise level and AR(1) smoothness that FEAT *assumes or
    estimates from the data* and by the regressor height in % of the mean
    signal; a design-only audit has neither, and inventing them would give a
    number that looks like FSL's but is not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from nbdiag.diagnostics._linalg import DesignAlgebra, as_contrast, as_design, json_float, threshold_source
from nbdiag.diagnostics.weights import contrast_variance, contrast_weights  # noqa: F401 (public here too)
from nbdiag.core.findings import Finding
from nbdiag.core.thresholds import Thresholds
from nbdiag.core import codes


def spm_tolerance(X: Any, algebra: DesignAlgebra | None = None) -> float:
    """SPM's ``spm_sp('Set')`` tolerance: ``max(size(X)) * max(svd(X)) * eps``."""
    return DesignAlgebra.for_design(X, algebra).spm_tolerance


def is_estimable(X: Any, c: Any, algebra: DesignAlgebra | None = None) -> bool:
    """Whether contrast ``c`` is estimable in design ``X`` (SPM12 ``isCon``).

    Parameters
    ----------
    X : array or DataFrame, shape (n_scans, n_columns)
    c : array-like, shape (n_columns,)
    algebra : DesignAlgebra, optional
        ``X``'s factorisation when the caller already has it.

    Returns
    -------
    bool
        ``all(abs(oPp @ c - c) <= tol)`` with SPM's ``tol`` and row-space
        projector (module docstring).
    """
    return DesignAlgebra.for_design(X, algebra).is_estimable(c)


def contrast_vif(X: Any, c: Any, algebra: DesignAlgebra | None = None) -> float:
    """Contrast VIF (Mumford et al. 2025; module docstring).

    Parameters
    ----------
    X : array or DataFrame, shape (n_scans, n_columns)
    c : array-like, shape (n_columns,)
    algebra : DesignAlgebra, optional
        ``X``'s factorisation when the caller already has it.

    Returns
    -------
    float
        1 for orthogonal columns; above 1 when collinearity inflates the
        contrast's variance, below 1 when it helps (e.g. ``a - b`` with
        negatively correlated ``a`` and ``b``); ``inf`` if not estimable among
        the centred columns; ``nan`` if ``c`` has no weight on non-constant columns.
    """
    alg = DesignAlgebra.for_design(X, algebra)
    c = as_contrast(c, alg.shape[1])
    keep, za = alg.centred
    ck = c[keep]
    best = float(ck @ ck)
    if best == 0 or za is None:
        return float("nan")
    if not za.is_estimable(ck):
        return float("inf")
    w = za.weights(ck)
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
            "variance": json_float(self.variance),
            "efficiency": json_float(self.efficiency),
            "cvif": json_float(self.cvif),
            "effect_required_pct": json_float(self.effect_required_pct),
        }


def assess_contrast(
    design: pd.DataFrame,
    name: str,
    vector: Any,
    kind: str,
    thresholds: Thresholds | None = None,
    algebra: DesignAlgebra | None = None,
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
        From :func:`nbdiag.design.contrasts.contrast_kind`; used in messages.
    thresholds : Thresholds, optional
    algebra : DesignAlgebra, optional
        The design's factorisation (built here when not given).

    Returns
    -------
    ContrastStats
        Findings ``contrast_not_estimable`` (fail) and
        ``contrast_variance_inflated`` (warn ≥ cvif_warn, fail ≥ cvif_fail).
    """
    if kind not in ("single", "differential", "other"):
        raise ValueError(f"kind must be one of 'single', 'differential', 'other'; got {kind!r}")
    th = thresholds or Thresholds()
    X = as_design(design, "design")
    alg = DesignAlgebra.for_design(X, algebra)
    c = as_contrast(vector, X.shape[1])
    columns = [str(col) for col in design.columns] if isinstance(design, pd.DataFrame) else [str(i) for i in range(X.shape[1])]
    est = alg.is_estimable(c)
    var = alg.variance(c)
    eff = 1.0 / var if var > 0 else float("inf")
    cvif = contrast_vif(X, c, alg)
    weighted = [col for col, w in zip(columns, c) if w != 0]
    findings: list[Finding] = []
    if not est:
        findings.append(_not_estimable_finding(name, weighted, X, alg))
    inflated = _variance_inflated_finding(name, kind, cvif, var, eff, th)
    if inflated is not None:
        findings.append(inflated)
    return ContrastStats(
        estimable=est, variance=var, efficiency=eff, cvif=cvif,
        effect_required_pct=None, findings=tuple(findings),
    )


def _not_estimable_finding(name: str, weighted: list[str], X: np.ndarray, alg: DesignAlgebra) -> Finding:
    """``contrast_not_estimable`` (fail): the contrast is outside the design's row space (SPM isCon)."""
    return codes.CONTRAST_NOT_ESTIMABLE.finding(
        severity="fail", contrast=name,
        title=f"Contrast {name} is not estimable",
        message=(
            f"Contrast {name} (weights on {', '.join(weighted)}) does not lie in the row "
            f"space of the design (SPM isCon rule, tolerance {alg.spm_tolerance:.3g}): the "
            f"data cannot tell its value apart from other combinations of regressors. "
            f"nilearn still returns a number (from the pseudo-inverse), but it is arbitrary."
        ),
        evidence={"columns": weighted, "tolerance": alg.spm_tolerance,
                  "rank": int(np.linalg.matrix_rank(X)), "n_columns": X.shape[1],
                  "threshold": "c in row space of X", "threshold_source": "SPM12 spm_SpUtil('isCon')"},
        score=100.0,
        fix=(
            "Leave part of the run unmodelled (implicit baseline) or test differences between "
            "conditions; remove columns that are sums of others (e.g. a rest condition "
            "tiling the run with the others)."
        ),
    )


def _variance_inflated_finding(name: str, kind: str, cvif: float, var: float, eff: float,
                               th: Thresholds) -> Finding | None:
    """``contrast_variance_inflated`` (warn at ``cvif_warn``, fail at ``cvif_fail``), or ``None`` below
    the warn size or for a NaN cVIF."""
    if not (np.isfinite(cvif) or np.isinf(cvif)):
        return None
    sev = None if np.isnan(cvif) else ("fail" if cvif >= th.cvif_fail else "warn" if cvif >= th.cvif_warn else None)
    if sev is None:
        return None
    limit = th.cvif_fail if sev == "fail" else th.cvif_warn
    ctext = "infinite" if np.isinf(cvif) else f"{cvif:.1f}"
    extra = (
        " For a single-condition contrast this usually means the implicit baseline is "
        "scarce: the condition regressors nearly add up to the constant, so the "
        "condition-vs-baseline difference rests on few scans."
        if kind == "single" else ""
    )
    return codes.CONTRAST_VARIANCE_INFLATED.finding(
        severity=sev, contrast=name,
        title=f"The variance of contrast {name} is inflated {ctext}-fold",
        message=(
            f"The contrast VIF of {name} is {ctext}: its variance is {ctext} times what it "
            f"would be if its regressors were orthogonal to each other and to the "
            f"constant (≥ {limit:g} gives {sev}).{extra}"
        ),
        evidence={"cvif": json_float(cvif), "variance": json_float(var),
                  "efficiency": json_float(eff), "kind": kind, "threshold": limit,
                  "cvif_warn": th.cvif_warn, "cvif_fail": th.cvif_fail,
                  "threshold_source": threshold_source("cvif_warn")},
        score=float(cvif / th.cvif_warn) if np.isfinite(cvif) else 1e6,
        fix=(
            "Keep a real implicit baseline (do not model fixation/rest as a condition; "
            "do not let conditions tile the run), or report differential contrasts such "
            "as two_back - zero_back; reduce task-locked confounds and drift overlap."
        ),
    )
