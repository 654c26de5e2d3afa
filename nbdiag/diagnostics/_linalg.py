"""Shared linear algebra of the diagnostics: one factorisation per design.

Every diagnostic family that needs the design's pseudo-inverse, SVD, contrast
weights or contrast variance takes them from a :class:`DesignAlgebra`: an
explicit, immutable object holding ``X`` and its thin SVD, built once per design
(:func:`nbdiag.explain.audit.audit_design` builds it and passes it down). The
diagnostics also accept a plain design when called alone; they then build
their own :class:`DesignAlgebra` (one SVD per call). There is no module-level
cache here.

Numbers are nilearn's own, bit for bit:

* ``pinv`` follows ``scipy.linalg.pinv`` step by step (``scipy.linalg.svd``,
  ``rank = sum(s > 0 + max(s) * (max(M, N) * eps))``, ``(u[:, :rank] / s[:rank])
  @ vh[:rank]``, conjugate transpose); ``tests/test_weights.py`` checks
  equality with scipy.
* the contrast variance ``c (XᵀX)⁺ cᵀ`` is ``w @ w`` with ``w = pinv.T @ c``:
  the same number as nilearn ``OLSModel``'s ``c @ normalized_cov_beta @ c``
  (``normalized_cov_beta = pinv @ pinv.T``) for well-conditioned designs, and
  never negative for nearly singular ones (where the Gram product loses every
  digit to cancellation).
* :attr:`DesignAlgebra.spm_tolerance` is SPM's ``spm_sp('Set')`` tolerance
  ``max(size(X)) * max(svd(X)) * eps``.

The small helpers at the end (R² of a least-squares fit, JSON-safe floats,
threshold sources, argument checks) are shared by the collinearity,
estimability, drift and confounds families.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Mapping

import numpy as np
import pandas as pd
import scipy.linalg as spl

from nbdiag.core.thresholds import THRESHOLD_TABLE

_EPS = np.finfo(float).eps


def as_design(X: Any, name: str = "X") -> np.ndarray:
    """``X`` as a 2-D float array (a DataFrame's values, in column order)."""
    arr = np.asarray(X.to_numpy(dtype=float) if isinstance(X, pd.DataFrame) else X, dtype=float)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D design matrix (scans x columns); got shape {arr.shape}")
    return arr


def column_values(design: pd.DataFrame, names: Any) -> np.ndarray:
    """``design[names].to_numpy(dtype=float)`` taken by position (no pandas label selection).

    Same values and column order; a design with repeated column names goes through pandas.
    """
    names = list(names)
    if not design.columns.is_unique:
        return design[names].to_numpy(dtype=float)
    at = design.columns.get_indexer(names)
    if (at < 0).any():
        return design[names].to_numpy(dtype=float)  # pandas names the missing column
    return design.to_numpy(dtype=float)[:, at]


def as_contrast(c: Any, n_columns: int) -> np.ndarray:
    """``c`` as a float vector with one weight per design column."""
    vec = np.asarray(c, dtype=float).ravel()
    if vec.size != n_columns:
        raise ValueError(f"c must have one weight per design column ({n_columns}); got {vec.size}")
    return vec


@dataclass(frozen=True, eq=False)
class DesignAlgebra:
    """Thin SVD of one design matrix and what follows from it.

    Build with :meth:`of`. The factors are read-only arrays; derived matrices
    (``pinv``, the centred design of the VIFs) are computed on
    first use and kept on the object, so one object serves every contrast of a
    design.

    Parameters
    ----------
    X : ndarray, shape (n_scans, n_columns)
        The design (read-only copy).
    u, s, vt : ndarray
        ``scipy.linalg.svd(X, full_matrices=False)``.
    """

    X: np.ndarray
    u: np.ndarray
    s: np.ndarray
    vt: np.ndarray
    #: weak reference to the object it was built from (DataFrame or array): passing that same
    #: object to :meth:`for_design` skips the value comparison
    source: Any = field(default=None, repr=False)

    @classmethod
    def of(cls, X: Any) -> "DesignAlgebra":
        """Factorise ``X`` (array or DataFrame, shape (n_scans, n_columns))."""
        X_in = X
        X = np.array(as_design(X), dtype=float, order="C")
        if X.size == 0:
            u, s, vt = np.zeros((X.shape[0], 0)), np.zeros(0), np.zeros((0, X.shape[1]))
        else:
            u, s, vt = spl.svd(X, full_matrices=False)
        for a in (X, u, s, vt):
            a.setflags(write=False)
        try:
            source = weakref.ref(X_in)
        except TypeError:  # lists and other inputs that take no weak reference
            source = None
        return cls(X, u, s, vt, source)

    @classmethod
    def for_design(cls, X: Any, algebra: "DesignAlgebra | None" = None) -> "DesignAlgebra":
        """``algebra`` if it was built for ``X`` (same values), else a new factorisation.

        Raises
        ------
        ValueError
            If ``algebra`` is given but was built for a different matrix.
        """
        if algebra is None:
            return cls.of(X)
        if algebra.source is not None and algebra.source() is X:
            return algebra  # the object it was built from (diagnostics never modify a design)
        arr = as_design(X)
        if arr.shape != algebra.X.shape or not np.array_equal(arr, algebra.X, equal_nan=True):
            raise ValueError(f"algebra was built for another design (shape {algebra.X.shape}); "
                             f"got a design of shape {arr.shape} or different values")
        return algebra

    @property
    def shape(self) -> tuple[int, int]:
        return self.X.shape

    @cached_property
    def pinv(self) -> np.ndarray:
        """``scipy.linalg.pinv(X)`` (default tolerances), bit for bit; read-only."""
        max_s = np.max(self.s, initial=0.0)
        rank = np.sum(self.s > 0.0 + max_s * (max(self.X.shape) * _EPS))
        p = ((self.u[:, :rank] / self.s[:rank]) @ self.vt[:rank]).conj().T
        p.setflags(write=False)
        return p

    @cached_property
    def spm_tolerance(self) -> float:
        """SPM's ``spm_sp('Set')`` tolerance: ``max(size(X)) * max(svd(X)) * eps``."""
        return float(max(self.X.shape) * (self.s.max() if self.s.size else 0.0) * _EPS)

    def weights(self, c: Any) -> np.ndarray:
        """Weight time course ``w = pinv(X).T @ c`` (nilearn's ``cβ̂ = w @ y``)."""
        return self.pinv.T @ as_contrast(c, self.X.shape[1])

    def variance(self, c: Any) -> float:
        """``c (XᵀX)⁺ cᵀ`` per unit noise variance, as ``w @ w`` (module docstring)."""
        w = self.weights(c)
        return float(w @ w)

    def is_estimable(self, c: Any) -> bool:
        """SPM12 ``isCon``: ``all(abs(oPp @ c - c) <= tol)`` (see ``estimability``)."""
        c = as_contrast(c, self.X.shape[1])
        tol = self.spm_tolerance
        v = self.vt[: int(np.sum(self.s > tol))].T
        return bool(np.all(np.abs(v @ (v.T @ c) - c) <= tol))

    @cached_property
    def centred(self) -> tuple[np.ndarray, "DesignAlgebra | None"]:
        """``(keep, algebra of Z)``: the non-constant columns, centred and scaled to unit norm.

        ``Z`` is the matrix of Mumford's contrast VIF and of the VIF of every
        column (``diag((ZᵀZ)⁻¹)``); both read it from here so they agree to the
        last bit. The second item is None when no column varies.
        """
        X = self.X
        if X.shape[0]:
            keep = ~constant_columns(X) & (np.ptp(X, axis=0) > 0)
        else:  # no rows: the per-column rule raises as it always did
            keep = np.array([not is_constant_column(X[:, j]) and np.ptp(X[:, j]) > 0
                             for j in range(X.shape[1])], dtype=bool)
        keep.setflags(write=False)
        if not keep.any():
            return keep, None
        Z = X[:, keep] - X[:, keep].mean(axis=0)
        Z = Z / np.linalg.norm(Z, axis=0)
        return keep, DesignAlgebra.of(Z)


# --------------------------------------------------------------------------
# helpers shared by the diagnostic families
# --------------------------------------------------------------------------
def json_float(value: Any) -> float | None:
    """Plain float, or None for NaN/inf/None."""
    if value is None:
        return None
    value = float(value)
    return value if np.isfinite(value) else None


def json_map(values: Mapping[str, Any]) -> dict[str, float | None]:
    """``{str(key): json_float(value)}``."""
    return {str(k): json_float(v) for k, v in values.items()}


def threshold_source(name: str) -> str:
    """Where the default of threshold ``name`` comes from (``THRESHOLD_TABLE``)."""
    return THRESHOLD_TABLE[name][2]


def check_design(design: Any, roles: Any) -> None:
    """Raise TypeError/ValueError unless ``design`` is a DataFrame and ``roles`` names every column."""
    if not isinstance(design, pd.DataFrame):
        raise TypeError(f"design must be a pandas DataFrame; got {type(design).__name__}")
    if not isinstance(roles, Mapping):
        raise TypeError(f"roles must be a mapping column -> role; got {type(roles).__name__}")
    missing = [c for c in design.columns if c not in roles]
    if missing:
        raise ValueError(f"roles must give a role for every design column; missing: {missing}")


def is_constant_column(x: np.ndarray) -> bool:
    """Non-zero column whose range is within 1e-12 of its magnitude."""
    return bool(np.ptp(x) <= 1e-12 * max(1.0, float(np.abs(x).max())) and np.abs(x).max() > 0)


def constant_columns(X: np.ndarray) -> np.ndarray:
    """:func:`is_constant_column` of every column of a 2-D ``X`` with at least one row, in one pass
    (the same comparisons on the same column maxima and minima)."""
    amax = np.abs(X).max(axis=0)
    return (np.ptp(X, axis=0) <= 1e-12 * np.maximum(1.0, amax)) & (amax > 0)


def with_intercept(Z: np.ndarray) -> np.ndarray:
    """``Z`` with a column of ones appended unless it already has a constant column."""
    if Z.size and constant_columns(Z).any():
        return Z
    return np.column_stack([Z, np.ones(Z.shape[0])]) if Z.size else np.ones((Z.shape[0], 1))


def r2_on(y: np.ndarray, Z: np.ndarray) -> float:
    """Centred R² of the least-squares fit of ``y`` on ``Z`` plus an intercept.

    Returns NaN when ``y`` has no variance.
    """
    y = np.asarray(y, dtype=float)
    yc = y - y.mean()
    sst = float(yc @ yc)
    if sst <= 1e-24 * max(1.0, float(y @ y)):
        return float("nan")
    Z1 = with_intercept(np.asarray(Z, dtype=float).reshape(len(y), -1))
    beta, *_ = np.linalg.lstsq(Z1, y, rcond=None)
    resid = y - Z1 @ beta
    return float(min(1.0, max(0.0, 1.0 - float(resid @ resid) / sst)))
