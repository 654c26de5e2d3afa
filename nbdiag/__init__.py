"""nbdiag: audit nilearn first-level GLM designs before fitting them.

Python API::

    from nbdiag import load_config, run_participant
    result = run_participant("bids", "out", load_config("nbdiag.toml"), participant_labels=["01"])

Lower level: :func:`nbdiag.inputs.bids.discover_runs`, :func:`nbdiag.record.prepare_run`
(the design nilearn would fit), :func:`nbdiag.record.audit_run` (the full record),
:func:`nbdiag.explain.audit.audit_design` (diagnostics of any design DataFrame).
"""

from nbdiag._version import __version__
from nbdiag.config import Config, EventSettings, ModelSettings, Settings, SettingsError, load_config


def run_participant(*args, **kwargs):
    """See :func:`nbdiag.pipeline.run_participant`."""
    from nbdiag.pipeline import run_participant as _run

    return _run(*args, **kwargs)


__all__ = ["__version__", "Config", "EventSettings", "ModelSettings", "Settings", "SettingsError",
           "load_config", "run_participant"]
