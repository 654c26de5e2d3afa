"""The one place nbdiag touches nilearn's private or moving APIs.

Supported nilearn: ``>=0.12.1,<0.15`` (``pyproject.toml``; CI runs the parity and
record tests on 0.12.1 and on the newest release). Everything here either calls
a private nilearn helper, so that nbdiag makes exactly the choice nilearn makes,
or hides a function that moved between releases. Each wrapper has a fallback
that reproduces the documented public behaviour when the private helper is
gone, and a test in ``tests/test_compat.py`` that compares it with nilearn.

=====================================  ==========================================================
wrapper                                nilearn source
=====================================  ==========================================================
:func:`load_confounds_defaults`        ``glm.first_level.first_level._check_kwargs_load_confounds``
:func:`confounds_file_for`             ``interfaces.fmriprep.load_confounds_utils._get_file_name``
:func:`create_cosine_drift`            ``signal`` (>= 0.13) or ``glm.first_level.design_matrix``
:func:`hrf_internals`                  ``glm.first_level.hemodynamic_models._hrf_kernel``,
                                       ``_compute_n_frames_high_res``, ``_regressor_names``
:func:`nilearn_version`                ``nilearn.__version__``
=====================================  ==========================================================

nilearn's submodules are imported inside the wrappers, not here: an ``ImportError`` there is how a
wrapper learns that a helper moved, and ``nilearn.glm`` takes about a second to import, which
``nbdiag.config`` (imported at the command line's start) must not pay.
"""

from __future__ import annotations

import importlib
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import nilearn

#: The range of nilearn releases nbdiag is tested with (also in pyproject.toml).
SUPPORTED_NILEARN = ">=0.12.1,<0.15"


def nilearn_version() -> tuple[int, int]:
    """``(major, minor)`` of the installed nilearn."""
    major, minor = (int(x) for x in re.findall(r"\d+", nilearn.__version__)[:2])
    return major, minor


def load_confounds_defaults(fallback: dict[str, Any]) -> dict[str, Any]:
    """``load_confounds`` keyword defaults the installed ``first_level_from_bids`` passes.

    They change between releases (0.12: ``fd_threshold=0.2``, ``std_dvars_threshold=3``;
    0.13+: 0.5 and 1.5); nilearn computes them in the private
    ``_check_kwargs_load_confounds``. ``fallback`` is returned (copied) when that
    helper is missing or its signature changed.
    """
    try:
        from nilearn.glm.first_level.first_level import _check_kwargs_load_confounds  # lazy: probed per release; slow import

        kwargs, _ = _check_kwargs_load_confounds(confounds_strategy=("motion",))
    except (ImportError, TypeError, ValueError):
        return dict(fallback)
    return dict(kwargs) if kwargs else dict(fallback)


def confounds_file_for(bold: Path, fallback_stem: str) -> Path | None:
    """The fMRIPrep confounds TSV ``load_confounds`` would read for image ``bold``.

    Parameters
    ----------
    bold : Path
        Preprocessed BOLD image.
    fallback_stem : str
        ``sub-..._ses-..._task-..._run-...`` part of the confounds file name, used
        (with ``_desc-confounds_timeseries.tsv`` then ``_regressors.tsv``) only
        when nilearn's private helper is missing.

    Returns
    -------
    Path or None
        None when no confounds file matches.

    Raises
    ------
    ValueError
        From nilearn, when more than one confounds file matches (message says so).
    """
    try:
        from nilearn.interfaces.fmriprep.load_confounds_utils import _get_file_name  # lazy: probed per release; slow import
    except ImportError:
        for suffix in ("_desc-confounds_timeseries.tsv", "_desc-confounds_regressors.tsv"):
            candidate = Path(bold).parent / f"{fallback_stem}{suffix}"
            if candidate.exists():
                return candidate
        return None
    helpers = private("nilearn.interfaces.fmriprep.load_confounds_utils", "_generate_confounds_file_candidates")
    if helpers is None:
        try:
            return Path(_get_file_name(str(bold)))
        except ValueError as exc:
            if "more than one" in str(exc).lower():
                raise
            return None
    return _confounds_file_listed(Path(bold), helpers[0])


def _confounds_file_listed(bold: Path, generate_candidates) -> Path | None:
    """nilearn's ``_get_file_name(bold)`` with one folder listing instead of a ``stat`` per candidate.

    nilearn tries every subset of the image's entities (with ``desc-confounds``) and both
    suffixes, longest name first, and keeps the candidates that are files: 2^k ``stat`` calls
    for k entities. A candidate can only be a file if the folder lists its name, so only
    listed candidates are checked with ``is_file``; the order, the choice and the "more than
    one" error are nilearn's.
    """
    base_dir = bold.parent
    filenames = generate_candidates(str(bold))  # flag_tedana (nilearn >= 0.13) defaults to False
    candidates = []
    for suffix in ("_timeseries.tsv", "_regressors.tsv"):
        candidates += [f + suffix for f in filenames]
    candidates = sorted(candidates, key=len)[::-1]
    try:
        listed = set(os.listdir(base_dir))
    except OSError:
        return None
    found = [str(base_dir / c) for c in candidates if c in listed and (base_dir / c).is_file()]
    if not found:
        return None
    if len(found) != 1:
        found_str = "\n\t".join(found)
        raise ValueError(f"Found more than one confound file:\n\t{found_str}")
    return Path(found[0])


def create_cosine_drift(high_pass: float, frame_times: np.ndarray) -> np.ndarray:
    """nilearn's cosine drift basis (last column the constant), wherever the release keeps it."""
    try:
        from nilearn.signal import create_cosine_drift as impl  # lazy: moved in 0.13; slow import
    except ImportError:  # nilearn < 0.13
        from nilearn.glm.first_level.design_matrix import create_cosine_drift as impl  # lazy: moved in 0.13; slow import
    return impl(high_pass, frame_times)


@dataclass(frozen=True)
class HrfInternals:
    """The pieces nilearn's ``compute_regressor`` is made of (see ``hrf.py``)."""

    hrf_kernel: Callable[..., list]
    n_frames_high_res: Callable[..., int]
    regressor_names: Callable[..., list]
    orthogonalize: Callable[..., Any]


def hrf_internals() -> HrfInternals | None:
    """nilearn's private HRF helpers, or None when this release lays them out differently.

    With None, :func:`nbdiag.design.hrf.compute_regressor_fast` always calls
    nilearn's public ``compute_regressor`` (same numbers, slower).
    """
    try:
        from nilearn.glm.first_level.hemodynamic_models import (  # lazy: probed per release; slow import
            _compute_n_frames_high_res,
            _hrf_kernel,
            _regressor_names,
            orthogonalize,
        )
    except ImportError:
        return None
    return HrfInternals(_hrf_kernel, _compute_n_frames_high_res, _regressor_names, orthogonalize)


def private(module: str, *names: str) -> tuple | None:
    """nilearn's private helpers ``names`` from ``module``, or None when this release lacks them.

    Used by nbdiag's fast paths (:mod:`nbdiag.design.taskpart`, the column-subset confounds reader in
    :mod:`nbdiag.inputs.fmriprep`), which then fall back to nilearn's public functions.
    """
    try:
        mod = importlib.import_module(module)
        return tuple(getattr(mod, name) for name in names)
    except (ImportError, AttributeError):
        return None


def yule_walker(x: np.ndarray, order: int) -> np.ndarray:
    """nilearn's ``run_glm`` AR-coefficient estimator (private ``_yule_walker``), along the last axis."""
    from nilearn.glm.first_level.first_level import _yule_walker  # lazy: nilearn.glm is slow to import

    return _yule_walker(x, order)


def clean_contrast_name(contrast: str) -> str:
    """The contrast name as nilearn's ``save_glm_to_bids`` writes it (private
    ``_clean_contrast_name``; the same rules when it moves): ``two_back - zero_back`` ->
    ``twoBackMinusZeroBack``."""
    try:
        from nilearn.glm._base import _clean_contrast_name  # lazy: probed per release; slow import
    except ImportError:  # pragma: no cover - private helper moved: same rules
        name = contrast.replace("-", " Minus ").replace("+", " Plus ").replace(">", " Gt ").replace("<", " Lt ")
        words = name.replace("_", " ").split(" ")
        words = [words[0].lower()] + [w.title() for w in words[1:]]
        return "".join(ch for ch in " ".join(words) if ch.isalnum())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _clean_contrast_name(contrast)
