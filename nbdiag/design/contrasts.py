"""Contrast parsing: expressions -> vectors, exactly as nilearn reads them.

Expressions are turned into vectors with
:func:`nilearn.glm.contrasts.expression_to_contrast_vector`, the function
``FirstLevelModel.compute_contrast`` uses, so a vector here is the vector
nilearn would test. An expression nilearn cannot read does not stop the
others: it becomes a ``contrast_invalid`` finding (severity ``error``).

Default contrasts (``contrasts=None``)
--------------------------------------
Built over the *condition* task columns only:

* a column with role ``task`` is grouped into a condition by stripping the
  nilearn suffixes ``_derivative``, ``_dispersion`` (when the stripped name is
  itself a task column) and ``_delay_<k>`` (FIR models);
* HRF derivative / dispersion columns never get a contrast of their own
  (they belong to their condition and get zero weight in the defaults);
* the delay columns of an FIR condition are summed: the default contrast for
  condition ``a`` with FIR delays 0..2 is ``a_delay_0 + a_delay_1 + a_delay_2``
  (the area under the estimated response), named ``a``;
* the RT-duration regressor (a task column named ``RTDur``, case-insensitive,
  see ``RT_REGRESSOR_NAMES``) is a task column but not a default condition:
  it models RT-proportional activity, not a condition of the experiment;
* defaults are every condition alone (named after the condition) and every
  pairwise difference ``a - b`` for ``a`` before ``b`` in design order (named
  by the expression itself).

Contrast kinds
--------------
Computed from the task-column weights, with a condition and its derivative,
dispersion and FIR delay columns counted as one condition:

* ``"single"``: exactly one condition has nonzero weight and no non-task column
  has weight (a condition against the implicit baseline);
* ``"differential"``: two or more conditions have nonzero weight, the task
  weights sum to ~0 (``abs(sum) <= 1e-8 * sum(abs)``) and no non-task column has
  weight;
* ``"other"``: anything else (e.g. ``a + b``, or weights on confounds).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from nilearn.glm.contrasts import expression_to_contrast_vector

from nbdiag.core.findings import Finding
from nbdiag.core import codes

#: Task columns with these names (case-insensitive) are RT-duration regressors,
#: never default conditions.
RT_REGRESSOR_NAMES = ("rtdur",)

_DELAY = re.compile(r"^(?P<base>.+)_delay_\d+$")
_HRF_SUFFIX = re.compile(r"^(?P<base>.+)_(?:derivative|dispersion)$")

KINDS = ("single", "differential", "other")


@dataclass(frozen=True)
class ContrastSet:
    """Parsed contrasts.

    Parameters
    ----------
    vectors : dict of str to ndarray
        One weight per design column, in design order (valid contrasts only).
    expressions : dict of str to str
        The expression of every contrast, invalid ones included (those have no
        vector and no kind).
    kinds : dict of str to {"single", "differential", "other"}
    findings : tuple of Finding
        ``contrast_invalid`` findings for contrasts that could not be parsed.
    columns : tuple of str
        Design column names, the order of every vector.
    """

    vectors: dict[str, np.ndarray]
    expressions: dict[str, str]
    kinds: dict[str, str]
    findings: tuple[Finding, ...] = ()
    columns: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready per-contrast entries (``expression``, ``vector``, ``kind``)."""
        out: dict[str, Any] = {}
        for name, vec in self.vectors.items():
            out[name] = {
                "expression": self.expressions[name],
                "vector": {col: float(w) for col, w in zip(self.columns, vec)},
                "kind": self.kinds[name],
            }
        return out


def condition_of(column: str, task_columns: Sequence[str]) -> str:
    """Condition a task column belongs to.

    ``a_derivative`` / ``a_dispersion`` belong to ``a`` when ``a`` is a task
    column; ``a_delay_3`` (FIR) belongs to ``a``; anything else is its own
    condition.
    """
    match = _HRF_SUFFIX.match(column)
    if match and match.group("base") in task_columns:
        return match.group("base")
    match = _DELAY.match(column)
    if match:
        return match.group("base")
    return column


def default_conditions(roles: Mapping[str, str]) -> dict[str, list[str]]:
    """Condition name -> its main columns (FIR delays, or the column itself).

    Derivative/dispersion columns and RT-duration regressors are left out
    (module docstring).
    """
    task = [c for c, r in roles.items() if r == "task"]
    groups: dict[str, list[str]] = {}
    for col in task:
        if col.lower() in RT_REGRESSOR_NAMES:
            continue
        if _HRF_SUFFIX.match(col) and condition_of(col, task) != col:
            continue
        groups.setdefault(condition_of(col, task), []).append(col)
    return groups


def default_contrasts(roles: Mapping[str, str]) -> dict[str, str]:
    """Default contrast expressions: each condition alone, each pairwise ``a - b``."""
    groups = default_conditions(roles)

    def term(cols: list[str]) -> str:
        return cols[0] if len(cols) == 1 else "(" + " + ".join(cols) + ")"

    out: dict[str, str] = {}
    names = list(groups)
    for name in names:
        cols = groups[name]
        out[name] = cols[0] if len(cols) == 1 else " + ".join(cols)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            expr = f"{term(groups[a])} - {term(groups[b])}"
            out[f"{a} - {b}"] = expr
    return out


def contrast_kind(vector: np.ndarray, columns: Sequence[str], roles: Mapping[str, str]) -> str:
    """Classify a contrast vector as ``single``, ``differential`` or ``other``.

    See the module docstring for the rule.
    """
    vector = np.asarray(vector, dtype=float)
    task = [c for c in columns if roles.get(c) == "task"]
    scale = float(np.abs(vector).sum())
    if scale == 0:
        return "other"
    tol = 1e-8 * scale
    by_condition: dict[str, float] = {}
    task_sum = 0.0
    for col, w in zip(columns, vector):
        if abs(w) <= tol:
            continue
        if roles.get(col) != "task":
            return "other"
        cond = condition_of(col, task)
        by_condition[cond] = by_condition.get(cond, 0.0) + abs(w)
        task_sum += w
    if len(by_condition) == 1:
        return "single"
    if len(by_condition) >= 2 and abs(task_sum) <= tol:
        return "differential"
    return "other"


def _invalid(name: str, expression: str, reason: str, columns: Sequence[str]) -> Finding:
    return codes.CONTRAST_INVALID.finding(
        severity="error",
        contrast=name,
        title=f"Contrast {name!r} cannot be computed",
        message=(
            f"Contrast {name!r} = {expression!r} cannot be turned into a vector: {reason} "
            f"Available design columns: {', '.join(columns)}."
        ),
        evidence={"expression": expression, "reason": reason, "available_columns": list(columns)},
        score=1.0,
        fix="Write the contrast with design column names (nilearn reads it with "
        "expression_to_contrast_vector); column names must be valid Python identifiers.",
    )


@lru_cache(maxsize=1024)
def _expression_vector(expression: str, columns: tuple[str, ...]) -> np.ndarray:
    """nilearn's ``expression_to_contrast_vector(expression, columns)`` as floats (read-only).

    Memoised: a pure function of the expression and the column names (nilearn evaluates
    the expression on an identity matrix with ``DataFrame.eval``, ~1 ms), and the runs of
    a study share both. Errors are not cached.
    """
    vec = np.asarray(expression_to_contrast_vector(expression, list(columns)), dtype=float)
    vec.setflags(write=False)
    return vec


def parse_contrasts(
    contrasts: Mapping[str, Any] | Sequence[str] | None,
    design: pd.DataFrame,
    roles: Mapping[str, str],
) -> ContrastSet:
    """Turn contrast expressions into vectors over the design's columns.

    Parameters
    ----------
    contrasts : mapping, sequence of str, or None
        ``{name: expression}``; or a sequence of expressions (each named by
        itself); or ``None`` for the defaults (module docstring). A mapping
        value may also be an array-like with one weight per design column.
    design : DataFrame
        Design matrix, one column per regressor (nilearn names).
    roles : mapping of str to str
        Column -> role (``task``, ``confound``, ``spike``, ``drift``, ``constant``).

    Returns
    -------
    ContrastSet

    Raises
    ------
    TypeError
        If ``contrasts`` is not a mapping, a sequence of strings or None.
    """
    if not isinstance(design, pd.DataFrame):
        raise TypeError(f"design must be a pandas DataFrame; got {type(design).__name__}")
    columns = [str(c) for c in design.columns]
    items, default_text = _contrast_items(contrasts, columns, roles)
    vectors: dict[str, np.ndarray] = {}
    expressions: dict[str, str] = {}
    kinds: dict[str, str] = {}
    findings: list[Finding] = []
    for name, expr in items:
        name = str(name)
        vec, text, expressions[name], problem = _contrast_vector(name, expr, columns)
        if problem is None:
            problem = _unusable(name, vec, text, columns)
        if problem is not None:
            findings.append(problem)
            continue
        vectors[name] = vec
        expressions[name] = default_text.get(name, text)
        kinds[name] = contrast_kind(vec, columns, roles)
    return ContrastSet(
        vectors=vectors, expressions=expressions, kinds=kinds,
        findings=tuple(findings), columns=tuple(columns),
    )


def _contrast_items(contrasts: Mapping[str, Any] | Sequence[str] | None, columns: list[str],
                    roles: Mapping[str, str]) -> tuple[list[tuple[Any, Any]], dict[str, str]]:
    """``(name, expression or vector)`` pairs, and the default contrasts' texts (``contrasts`` None).

    The defaults are built as vectors, so trial types that are not Python identifiers
    (``0BACK``) still work: every condition, then every pairwise difference.
    """
    if isinstance(contrasts, Mapping):
        return list(contrasts.items()), {}
    if isinstance(contrasts, (list, tuple)) and all(isinstance(e, str) for e in contrasts):
        return [(e, e) for e in contrasts], {}
    if contrasts is not None:
        raise TypeError(
            "contrasts must be a mapping name -> expression, a list/tuple of expression "
            f"strings, or None; got {type(contrasts).__name__}: {contrasts!r}"
        )
    groups = default_conditions(roles)
    names = list(groups)
    pairs = [(a, None) for a in names] + [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    items: list[tuple[Any, Any]] = []
    for a, b in pairs:
        vec = np.zeros(len(columns))
        for col in groups[a]:
            vec[columns.index(col)] = 1.0
        for col in groups[b] if b is not None else ():
            vec[columns.index(col)] = -1.0
        items.append((a if b is None else f"{a} - {b}", vec))
    return items, default_contrasts(roles)


def _contrast_vector(name: str, expr: Any, columns: list[str]
                     ) -> tuple[np.ndarray | None, str, str, Finding | None]:
    """One contrast: ``(vector, its text, the expression as recorded, the finding refusing it)``.

    ``expr`` is a nilearn expression, a ``{column: weight}`` mapping (a BIDS Stats Model's
    ConditionList + Weights) or one weight per column; the vector is None when refused.
    """
    if isinstance(expr, str):
        try:
            vec = _expression_vector(expr, tuple(columns)).copy()
        except ValueError as exc:
            lines = [ln.strip() for ln in str(exc).splitlines()
                     if ln.strip() and not ln.startswith("Available matrix columns")]
            reason = " ".join(lines) if lines else type(exc).__name__
            return None, expr, expr, _invalid(name, expr, reason, columns)
        return vec, expr, expr, None
    if isinstance(expr, Mapping):
        text = " + ".join(f"{float(w):g}*{c}" for c, w in expr.items()).replace("+ -", "- ")
        unknown = [str(c) for c in expr if str(c) not in columns]
        if unknown:
            return None, text, text, _invalid(name, text, f"{', '.join(map(repr, unknown))} not in the design.",
                                              columns)
        vec = np.zeros(len(columns))
        for col, weight in expr.items():
            vec[columns.index(str(col))] = float(weight)
        return vec, text, text, None
    vec = np.asarray(expr, dtype=float).ravel()
    if vec.size != len(columns):
        return None, str(expr), str(expr), _invalid(
            name, str(expr), f"the vector has {vec.size} weights, the design has {len(columns)} columns.", columns)
    text = " + ".join(f"{w:g}*{c}" for c, w in zip(columns, vec) if w != 0)
    return vec, text, str(expr), None


def _unusable(name: str, vec: np.ndarray, text: str, columns: list[str]) -> Finding | None:
    """The finding refusing a vector that is not one finite weight per column, or all zero."""
    if vec.shape != (len(columns),) or not np.all(np.isfinite(vec)):
        return _invalid(name, text, "the expression does not give one finite weight per column.", columns)
    if not np.any(vec):
        return _invalid(name, text, "all weights are zero.", columns)
    return None
