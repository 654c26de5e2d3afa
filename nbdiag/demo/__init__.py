"""Bundled n-back demo: a synthetic BIDS/fMRIPrep dataset and its generator.

The generator lives in :mod:`nbdiag.demo.synth`; the committed demo dataset is produced by
:mod:`nbdiag.demo.make_demo`; :func:`run_demo` audits it (``nbdiag demo``). After
``pip install .`` the data live inside the installed package: :func:`data_path` and
:func:`config_path` return where, from any folder::

    import nbdiag.demo
    print(nbdiag.demo.data_path())   # .../site-packages/nbdiag/demo/data
"""

from __future__ import annotations

from pathlib import Path

from nbdiag.demo.run import CONFIG, DATA_DIR
from nbdiag.demo.run import run_demo as _run

__all__ = ["config_path", "data_path", "run_demo"]


def data_path() -> Path:
    """Absolute path of the bundled demo dataset (BIDS root) that ``nbdiag demo`` audits."""
    return DATA_DIR.resolve()


def config_path() -> Path:
    """Absolute path of the demo's settings file (``nbdiag.toml``: the forum post's model, 3 variants)."""
    return CONFIG.resolve()


def run_demo(*args, **kwargs) -> int:
    """See :func:`nbdiag.demo.run.run_demo`."""
    return _run(*args, **kwargs)
