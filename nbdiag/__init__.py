"""nbdiag: audit nilearn first-level GLM designs before fitting them.

Python API, from inside your own nilearn script::

    import nbdiag
    audit = nbdiag.audit_models(models, models_run_imgs, models_events, models_confounds,
                                contrasts=["two_back - zero_back", "zero_back"])
    audit.findings; audit.to_frame(); audit.save("nbdiag_out")

or for a BIDS dataset, as the command line does::

    from nbdiag import load_config, run_participant
    result = run_participant("bids", "out", load_config("nbdiag.toml"), participant_labels=["01"])

Lower level: :func:`nbdiag.inputs.bids.discover_runs`, :func:`nbdiag.record.build.prepare_run`
(the design nilearn would fit), :func:`nbdiag.record.build.audit_run` (the full record),
:func:`nbdiag.explain.audit.audit_design` (diagnostics of any design DataFrame).

The functions below import their module when called (and ``Audit`` on first access): ``import
nbdiag`` and the command line's start stay free of numpy, pandas and nilearn.
"""

from nbdiag._version import __version__
from nbdiag.config import Config, EventSettings, ModelSettings, Settings, SettingsError, load_config


def run_participant(*args, **kwargs):
    """See :func:`nbdiag.participant.pipeline.run_participant`."""
    from nbdiag.participant.pipeline import run_participant as _run

    return _run(*args, **kwargs)


def audit_models(*args, **kwargs):
    """See :func:`nbdiag.api.audit_models`."""
    from nbdiag.api import audit_models as _audit

    return _audit(*args, **kwargs)


def audit_model(*args, **kwargs):
    """See :func:`nbdiag.api.audit_model`."""
    from nbdiag.api import audit_model as _audit

    return _audit(*args, **kwargs)


__all__ = ["__version__", "Audit", "audit_model", "audit_models", "Config", "EventSettings", "ModelSettings", "Settings", "SettingsError",
           "load_config", "run_participant"]


def __getattr__(name: str):
    if name == "Audit":
        from nbdiag.api import Audit

        return Audit
    raise AttributeError(f"module 'nbdiag' has no attribute {name!r}")
