"""Bundled n-back demo: a synthetic BIDS/fMRIPrep dataset and its generator.

The generator lives in :mod:`nbdiag.demo.synth`; the committed demo dataset
(``nbdiag/demo/data/``) is produced by :mod:`nbdiag.demo.make_demo`;
:func:`run_demo` audits it (``nbdiag demo``).
"""

from nbdiag.demo.run import run_demo

__all__ = ["run_demo"]
