"""Python API: audit the objects nilearn gives you, from inside your own script.

One line added after ``first_level_from_bids`` (and after your own event edits)::

    models, models_run_imgs, models_events, models_confounds = first_level_from_bids(...)
    # ... rename trial types, add RTDur rows ...
    audit = nbdiag.audit_models(models, models_run_imgs, models_events, models_confounds,
                                contrasts=["two_back - zero_back", "two_back", "zero_back"])
    audit.findings          # one row per finding
    audit.save("nbdiag")    # the same files as the command line

or, for one ``FirstLevelModel`` built any way::

    audit = nbdiag.audit_model(model, run_imgs, events=events, confounds=confounds)

The designs are the ones ``model.fit(run_imgs, events, confounds, sample_masks)`` builds
(settings read from the model object, ``n_scans`` from the image headers); no voxel data
is read.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from nbdiag.config import Settings, SettingsError, resolve_settings
from nbdiag.core.errors import InputError
from nbdiag.core.thresholds import Thresholds
from nbdiag.group.pipeline import run_group, runs_table
from nbdiag.inputs.nilearn_objects import as_list, event_settings, given_runs, model_settings
from nbdiag.outputs.files import check_output_dir, write_dataset_description, write_run_outputs
from nbdiag.outputs.manifest import provenance
from nbdiag.participant.pipeline import write_subject_reports
from nbdiag.participant.preflight import check_contrasts
from nbdiag.participant.workdir import run_input_files
from nbdiag.record.build import RunAudit, audit_given_run, prepare_given_run
from nbdiag.record.model import Provenance, RunRecord

__all__ = ["Audit", "audit_model", "audit_models"]

FINDING_COLUMNS = ["run", "variant", "contrast", "code", "severity", "title", "message"]


@dataclass
class Audit:
    """The audit of one or more runs, as returned by :func:`audit_model` / :func:`audit_models`.

    Attributes
    ----------
    audits : list of RunAudit
        One per run (record + design).
    notes : list of str
        Notes about how the inputs were read.
    """

    audits: list[RunAudit]
    notes: list[str] = field(default_factory=list)

    @property
    def records(self) -> list[dict[str, Any]]:
        """The ``_nbdiag.json`` records (docs/record.md) as JSON dicts, one per run."""
        return [a.record.to_json() for a in self.audits]

    @property
    def typed_records(self) -> list[RunRecord]:
        """The typed records (:class:`nbdiag.record.model.RunRecord`), one per run."""
        return [a.record for a in self.audits if isinstance(a.record, RunRecord)]

    @property
    def designs(self) -> list[pd.DataFrame | None]:
        """The design of each run (``None`` for a run that could not be audited)."""
        return [a.design for a in self.audits]

    @property
    def findings(self) -> pd.DataFrame:
        """Every finding: columns ``run, variant, contrast, code, severity, title, message``."""
        rows = [{"run": r.run.prefix, "variant": r.variant, "contrast": f.contrast, "code": f.code,
                 "severity": f.severity, "title": f.title, "message": f.message}
                for r in self.typed_records for f in r.findings]
        return pd.DataFrame(rows, columns=FINDING_COLUMNS)

    def to_frame(self) -> pd.DataFrame:
        """One row per run x variant with key metrics and status (``group/nbdiag_runs.tsv``'s columns)."""
        return runs_table(self.records)

    def save(self, output_dir: str | Path, reports: bool = True, group: bool = False) -> Path:
        """Write the same files as ``nbdiag ... participant`` (and ``group`` with ``group=True``).

        The records are written as built, with their ``provenance`` (settings hash and the
        fingerprints of the run's input files; events and confounds given as tables are not
        files and have none). Not written: the participant level's manifests
        (``.nbdiag/manifests``; ``group`` then trusts every record in the folder) and BOLD
        mode's effect maps (the Python API does not read voxels: a record whose settings ask
        for ``measure = "bold"`` raises ``ValueError`` here, use the command line).

        Parameters
        ----------
        output_dir : path
            Created if needed; files are written atomically.
        reports : bool
            Write one HTML report per subject.
        group : bool
            Also write the group tables and report (``nbdiag OUTPUT_DIR group``).

        Returns
        -------
        Path
            ``output_dir``.
        """
        bold = [a.run.prefix for a in self.audits if isinstance(a.record, RunRecord)
                and a.record.settings.measure == "bold"]
        if bold:
            raise ValueError(f"Audit.save cannot write BOLD mode's effect maps ({', '.join(bold)}: measure "
                             "'bold'); run `nbdiag BIDS_DIR OUTPUT_DIR participant --measure bold`")
        output_dir = check_output_dir(Path(output_dir))
        write_dataset_description(output_dir)
        for audit in self.audits:
            write_run_outputs(output_dir, audit)
        if reports:
            write_subject_reports(output_dir, self.audits, log=lambda text: None)
        if group:
            run_group(output_dir)
        return output_dir

    def _repr_html_(self) -> str:
        """A compact verdict table (run, variant, status, top finding per contrast); all text escaped."""
        esc = html.escape
        rows = []
        for r in self.typed_records:
            contrasts = r.contrasts or {}
            parts = []
            for name, stats in contrasts.items():
                codes = stats.findings or ()
                top = next((f for f in r.findings if f.contrast == name and codes and f.code == codes[0]), None)
                parts.append(f"<b>{esc(name)}</b>: " + (esc(f"[{top.severity}] {top.code}") if top else "ok"))
            run_level = next((f for f in r.findings if f.contrast is None
                              and f.severity in ("warn", "fail", "error")), None)
            rows.append(
                f"<tr><td>{esc(r.run.prefix)}</td><td>{esc(str(r.variant))}</td>"
                f"<td class='nbdiag-{esc(str(r.status))}'>{esc(str(r.status))}</td>"
                f"<td>{esc(run_level.code + ': ' + run_level.title) if run_level else ''}</td>"
                f"<td>{'<br>'.join(parts)}</td></tr>")
        head = "<tr><th>run</th><th>variant</th><th>status</th><th>run-level</th><th>top finding per contrast</th></tr>"
        return (f"<table class='nbdiag-verdict'><caption>nbdiag: {len(self.records)} run(s)</caption>"
                f"{head}{''.join(rows)}</table>")

    def __repr__(self) -> str:
        statuses = [a.status for a in self.audits]
        counts = ", ".join(f"{s}: {statuses.count(s)}" for s in ("pass", "warn", "fail", "error") if s in statuses)
        return f"<nbdiag.Audit of {len(self.records)} run(s): {counts}>"


def _settings(contrasts: Any, thresholds: Thresholds | Mapping[str, Any] | None, variant: str) -> Settings:
    """The API's settings, through the one resolver (the model settings come from each model object)."""
    return resolve_settings(contrasts=contrasts, thresholds=thresholds, variant=variant, where="audit_model",
                            require_task=False).base


def _audit_one(model: Any, run_imgs: Any, events: Any, confounds: Any, sample_masks: Any, base: Settings,
               model_index: int | None, rt_column: str, check: bool = True) -> list[RunAudit]:
    model_cfg = model_settings(model)
    runs = given_runs(model, run_imgs, events, confounds, sample_masks, model_index, rt_column)
    if check and base.contrasts:
        _check_contrasts(runs, base, model_cfg, rt_column)
    out = []
    for given in runs:
        settings = replace(base, model=model_cfg, events=event_settings(given, rt_column))
        out.append(audit_given_run(given, settings, provenance=_provenance(given.run, settings)))
    return out


def _provenance(run: Any, settings: Settings) -> Provenance:
    """Settings hash + fingerprints of the run's input files, as the participant level records them
    (an image given as an object, and events/confounds given as tables, are not files: left out)."""
    files = {role: path for role, path in run_input_files(run).items() if isinstance(path, (str, Path))}
    return Provenance.from_json(provenance(settings.to_dict(), files, getattr(run, "root", None)))


def _check_contrasts(runs: list, base: Settings, model_cfg: Any, rt_column: str) -> None:
    """Refuse contrast typos before any run is audited (against the first run that can be built)."""
    for given in runs:
        if given.run.error is not None:
            continue
        settings = replace(base, model=model_cfg, events=event_settings(given, rt_column))
        try:
            prepared = prepare_given_run(given, settings)
        except (InputError, ValueError):
            continue
        problems = check_contrasts(base.contrasts, prepared.built.design, prepared.built.roles,
                                   f" in the design of {given.run.prefix}")
        if problems:
            raise SettingsError("contrasts refused before any run was audited:\n  " + "\n  ".join(problems))
        return


def audit_model(model: Any, run_imgs: Any, events: Any = None, confounds: Any = None, sample_masks: Any = None,
                contrasts: Mapping[str, str] | Sequence[str] | None = None,
                thresholds: Thresholds | Mapping[str, Any] | None = None, variant: str = "default",
                rt_column: str = "response_time") -> Audit:
    """Audit the designs ``model.fit(run_imgs, events, confounds, sample_masks)`` would build.

    Parameters
    ----------
    model : nilearn.glm.first_level.FirstLevelModel
        Built any way, fitted or not; ``t_r``, ``slice_time_ref``, ``hrf_model``,
        ``drift_model``, ``high_pass``, ``drift_order``, ``fir_delays``, ``min_onset`` are read
        from it.
    run_imgs : path, image or list of them
        As given to ``fit``. Only the header is read (``n_scans``); when an image cannot be
        read, ``n_scans`` is the confounds' row count and the record says so.
    events : DataFrame, TSV path, or list of them (one per run)
    confounds : DataFrame, array, TSV path, list of them, or None
    sample_masks : array of kept scan indices per run, or None
    contrasts : mapping name -> expression, list of expressions, or None
        ``None``: every condition and every pairwise difference.
    thresholds : Thresholds or mapping, optional
        Overrides of the default thresholds (``[thresholds]`` keys).
    variant : str
        Name of this model variant in the records (``desc-<variant>`` in saved files).
    rt_column : str
        Response-time column of the events (default ``response_time``).

    Returns
    -------
    Audit

    Raises
    ------
    nbdiag.SettingsError
        When the model, contrasts, thresholds or list lengths are unusable (nothing audited).
        A run with bad inputs does not raise: its record has ``status: error``.
    """
    base = _settings(contrasts, thresholds, variant)
    return Audit(_audit_one(model, run_imgs, events, confounds, sample_masks, base, None, rt_column))


def audit_models(models: Sequence[Any], models_run_imgs: Sequence[Any], models_events: Sequence[Any],
                 models_confounds: Sequence[Any] | None = None,
                 contrasts: Mapping[str, str] | Sequence[str] | None = None,
                 sample_masks: Sequence[Any] | None = None,
                 thresholds: Thresholds | Mapping[str, Any] | None = None, variant: str = "default",
                 rt_column: str = "response_time") -> Audit:
    """Audit what ``first_level_from_bids`` returned, with the events and confounds as you modified them.

    Parameters
    ----------
    models, models_run_imgs, models_events, models_confounds : lists
        The four lists ``first_level_from_bids`` returns (one entry per subject; the inner
        entries one per run). ``models_events`` may hold your modified tables (renamed
        trial types, added RTDur rows...).
    contrasts : mapping name -> expression, list of expressions, or None
    sample_masks : list (per model) of lists (per run) of kept scan indices, or None
        What you pass to ``fit(sample_masks=...)``; ``None`` is what ``first_level_from_bids``
        + ``fit`` do (the sample mask of ``load_confounds`` is dropped).
    thresholds, variant, rt_column
        As in :func:`audit_model`.

    Returns
    -------
    Audit
        Runs in the order of the models, then of their images.

    Raises
    ------
    nbdiag.SettingsError
        When the lists do not have one entry per model, or a model/contrast is unusable.
    """
    models = list(models)
    n = len(models)
    imgs = as_list(models_run_imgs, n, "models_run_imgs")
    events = as_list(models_events, n, "models_events")
    confounds = as_list(models_confounds, n, "models_confounds")
    masks = as_list(sample_masks, n, "sample_masks")
    base = _settings(contrasts, thresholds, variant)
    audits: list[RunAudit] = []
    for i, model in enumerate(models):
        audits.extend(_audit_one(model, imgs[i], events[i], confounds[i], masks[i], base, i, rt_column,
                                 check=(i == 0)))
    return Audit(audits)
