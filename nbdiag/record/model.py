"""The typed run record (``*_nbdiag.json``): frozen dataclasses, one ``to_json`` / ``from_json``.

:class:`RunRecord` is one run × variant (docs/record.md); :class:`SavedDesignRecord` is the
record of a saved design matrix (``nbdiag design``). Every part the record has is a frozen
dataclass (keyword-only) whose fields are the record's keys, **in the order they are written**; numbers
carry their unit in the field name (``_s`` seconds, ``_hz`` hertz, ``_percent`` percent
signal change, ``_sd`` units of the contrast estimate's standard error). A field typed
``X | Absent`` may be missing from a record (:data:`ABSENT`); ``None`` is written ``null``.
Free-form leaves (a finding's ``evidence``, per-code detail, spectra, settings owned by
``nbdiag.config``) are ``Mapping[str, Any]`` holding JSON values.

The conversion is generic (:mod:`nbdiag.record.codec`, driven by the type hints)::

    record = RunRecord.from_json(json.loads(path.read_text()))
    record.contrasts["two_back"].sensitivity[0].bias_percent
    record.to_json()   # the dict written (dumps_record gives the same bytes)

``tests/test_record_model.py`` checks every field against ``docs/record.schema.json``
(name, JSON type, required-ness, and every schema property has a field), and every
record the tests write survives ``from_json``/``to_json`` byte for byte.

No numpy or pandas: ``nbdiag.group`` and ``nbdiag.report`` import this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, TypeVar

from nbdiag.record import codec
from nbdiag.record.codec import ABSENT, Absent, RecordFormatError

__all__ = ["ABSENT", "Absent", "RecordFormatError", "RunRecord", "SavedDesignRecord", "JsonRecord",
           "RunInfo", "Resolved", "RunSettings", "SavedDesignSettings", "Provenance", "InputFingerprint",
           "DesignColumn", "SampleMask", "Design", "SavedDesign", "ConfoundsInfo", "EventsInfo", "Diagnostics",
           "Collinearity", "Correlation", "CorrelationPair", "ConditionBlocks", "ConditionBlock", "Drift",
           "ConfoundsDiagnostics", "NonsteadyHandling", "ScrubHandling", "Baseline", "BaselineEpoch", "RtDiagnostics",
           "Censoring", "CensorMasks", "CensorMask", "CensorCounts", "Motion", "ContrastEntry",
           "BaselineComposition", "SensitivityEntry", "ContrastMeasuredSignal", "WhatIf", "WhatIfContrast",
           "Measured", "MeasuredSignal", "MeasuredNoise", "BoldMeasurement", "FindingRecord", "RunError",
           "SkippedCheck", "SavedDesignRun", "read_record", "as_run_record"]

R = TypeVar("R", bound="JsonRecord")

Number = float | None  # a JSON number, null when not finite / not defined


class JsonRecord:
    """Mixin: the generic JSON pair of every record dataclass (:mod:`nbdiag.record.codec`)."""

    def to_json(self) -> dict[str, Any]:
        """The JSON form (dict in field order; ABSENT fields left out; NaN -> null).

        A record made by the builder returns the JSON it was built from (equal to the encoded
        form: every record the tests write is checked byte for byte); treat it as read-only.
        """
        built = self.__dict__.get("_built_from")
        return built if built is not None else codec.to_json(self)

    def _keep_json(self, data: dict[str, Any]) -> None:
        """Keep ``data`` (what this value was decoded from, unchanged since) as its JSON form."""
        object.__setattr__(self, "_built_from", data)

    @classmethod
    def from_json(cls: type[R], data: Mapping[str, Any], path: str = "record") -> R:
        """The typed value of JSON ``data``; raises :class:`RecordFormatError` naming the path."""
        return codec.from_json(cls, data, path)


# --------------------------------------------------------------------------- run, settings, provenance
@dataclass(frozen=True, kw_only=True)
class RunInfo(JsonRecord):
    """``run``: the run's BIDS identity and input files (BIDS URIs ``bids::...``)."""

    subject: str
    session: str | None
    task: str | None
    run: str | None
    entities: Mapping[str, str]
    prefix: str
    files: Mapping[str, str | None]


@dataclass(frozen=True, kw_only=True)
class Resolved(JsonRecord):
    """A resolved acquisition setting and where its value came from."""

    value: float | None
    source: str
    sources: tuple[Mapping[str, Any], ...] | Absent = ABSENT  # t_r only: every TR stated (tr_mismatch)


@dataclass(frozen=True, kw_only=True)
class RunSettings(JsonRecord):
    """``settings``: the resolved acquisition values plus ``Settings.to_dict()`` (nbdiag.config)."""

    t_r: Resolved | None
    slice_time_ref: Resolved | None
    n_scans: Resolved | None
    variant: str
    measure: str
    model: Mapping[str, Any]  # first_level_from_bids-named settings (nbdiag.config.ModelSettings)
    events: Mapping[str, Any]
    contrasts: Mapping[str, Any] | None  # expression, or {column: weight} (BIDS Stats Model)
    thresholds: Mapping[str, float]
    limits: Mapping[str, int]
    stats_model: Mapping[str, Any] | Absent = ABSENT
    model_object: Mapping[str, Any] | Absent = ABSENT  # runs given as nilearn objects


@dataclass(frozen=True, kw_only=True)
class SavedDesignSettings(JsonRecord):
    """``settings`` of a saved-design record: only the repetition time is known."""

    t_r: Resolved


@dataclass(frozen=True, kw_only=True)
class InputFingerprint(JsonRecord):
    """One input file by content (never by modification time)."""

    path: str
    exists: bool
    size: int | Absent = ABSENT
    sha256: str | Absent = ABSENT
    header_sha256: str | Absent = ABSENT
    unreadable: str | Absent = ABSENT
    link: str | Absent = ABSENT
    fetched: bool | Absent = ABSENT


@dataclass(frozen=True, kw_only=True)
class Provenance(JsonRecord):
    """``provenance``: settings hash + input fingerprints (checked by ``group``)."""

    settings_hash: str
    inputs: Mapping[str, InputFingerprint]


# --------------------------------------------------------------------------- design, confounds, events
@dataclass(frozen=True, kw_only=True)
class DesignColumn(JsonRecord):
    name: str
    role: str  # task | confound | spike | drift | constant
    source: str


@dataclass(frozen=True, kw_only=True)
class SampleMask(JsonRecord):
    returned_by_load_confounds: tuple[int, ...] | None
    applied: bool
    n_removed: int
    removed_volumes: tuple[int, ...]


@dataclass(frozen=True, kw_only=True)
class Design(JsonRecord):
    """``design``: the design matrix's columns, roles and frame times."""

    n_scans: int
    n_columns: int
    rank: int
    columns: tuple[DesignColumn, ...]
    frame_times: tuple[float, ...] | Absent = ABSENT  # seconds
    nilearn_warnings: tuple[str, ...] | Absent = ABSENT
    regularized: bool | Absent = ABSENT
    sample_mask: SampleMask | Absent = ABSENT
    tsv: str | Absent = ABSENT  # set by the writer (outputs.files) on the copy it writes


@dataclass(frozen=True, kw_only=True)
class SavedDesign(JsonRecord):
    """``design`` of a saved-design record (``nbdiag design``)."""

    columns: tuple[DesignColumn, ...]
    n_scans: int
    n_columns: int
    rank: int
    frame_times: tuple[float, ...]  # seconds


@dataclass(frozen=True, kw_only=True)
class ConfoundsInfo(JsonRecord):
    """``confounds``: what load_confounds returned for the run."""

    columns: tuple[str, ...]
    raw_columns: tuple[str, ...]
    nonsteady_volumes: tuple[int, ...]
    scrub_volumes: tuple[int, ...]
    sample_mask_kept: int | None
    nilearn_warnings: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class EventsInfo(JsonRecord):
    """``events``: the modelled and unmodelled event rows (onset/duration in seconds)."""

    modeled: tuple[Mapping[str, Any], ...] | None
    unmodeled: tuple[Mapping[str, Any], ...] | None


# --------------------------------------------------------------------------- diagnostics
@dataclass(frozen=True, kw_only=True)
class Correlation(JsonRecord):
    columns: tuple[str, ...]
    matrix: tuple[tuple[Number, ...], ...]


@dataclass(frozen=True, kw_only=True)
class CorrelationPair(JsonRecord):
    columns: tuple[str, ...]
    pair: str
    r: Number
    cosine: Number
    tier: str


@dataclass(frozen=True, kw_only=True)
class ConditionBlock(JsonRecord):
    columns: tuple[str, ...]
    n_columns: int
    condition_number: Number
    afni_condition: Number
    afni_rating: str | None
    n_near_zero: int
    fsl_sv_ratio: Number
    fsl_rank_deficient: bool | None
    condition_number_unscaled: Number


@dataclass(frozen=True, kw_only=True)
class ConditionBlocks(JsonRecord):
    whole: ConditionBlock | Absent = ABSENT
    task: ConditionBlock | Absent = ABSENT
    baseline: ConditionBlock | Absent = ABSENT
    drift: ConditionBlock | Absent = ABSENT


@dataclass(frozen=True, kw_only=True)
class Collinearity(JsonRecord):
    vif: Mapping[str, Number]
    correlation: Correlation
    condition_number: Number
    rank: int
    n_columns: int
    regularized: bool
    correlation_pairs: tuple[CorrelationPair, ...]
    correlation_tiers: Mapping[str, Number]
    condition_blocks: ConditionBlocks


@dataclass(frozen=True, kw_only=True)
class Drift(JsonRecord):
    drift_columns: tuple[str, ...]
    cosine_confounds: tuple[str, ...]
    periods_s: Mapping[str, Number]
    r2_task: Mapping[str, Number]
    r2_contrast: Mapping[str, Number]
    recommended_cutoff_s: Number
    recommended_high_pass_hz: Number
    fsl_cutoffcalc_s: Number
    current_cutoff_s: Number
    variance_kept: Mapping[str, Number]
    spectra: Mapping[str, Any] | Absent = ABSENT  # freqs_hz, power per column


@dataclass(frozen=True, kw_only=True)
class NonsteadyHandling(JsonRecord):
    columns_in_file: tuple[str, ...]
    volumes: tuple[int, ...]
    modeled_as_regressors: bool
    masked: bool
    handled: bool


@dataclass(frozen=True, kw_only=True)
class ScrubHandling(JsonRecord):
    requested: bool
    volumes: tuple[int, ...]
    applied: bool


@dataclass(frozen=True, kw_only=True)
class ConfoundsDiagnostics(JsonRecord):
    r2_task: Mapping[str, Number]
    nonsteady: NonsteadyHandling | Absent = ABSENT
    scrub: ScrubHandling | Absent = ABSENT
    dof: int | Absent = ABSENT


@dataclass(frozen=True, kw_only=True)
class BaselineEpoch(JsonRecord):
    start: float  # seconds
    duration: float  # seconds
    n_scans: int
    kind: str
    contains: tuple[str, ...]
    position: str | None


@dataclass(frozen=True, kw_only=True)
class Baseline(JsonRecord):
    fraction: float
    n_scans: int
    epochs: tuple[BaselineEpoch, ...]
    scan_classes: tuple[str, ...]
    modeled_rest: tuple[str, ...]
    n_long_epochs: int


@dataclass(frozen=True, kw_only=True)
class RtDiagnostics(JsonRecord):
    regressor: str | None
    correlation: Mapping[str, Number]


@dataclass(frozen=True, kw_only=True)
class CensorCounts(JsonRecord):
    n_scans: int
    n_censored: int
    fraction: Number


@dataclass(frozen=True, kw_only=True)
class CensorMask(JsonRecord):
    removed_volumes: tuple[int, ...]
    applied: bool
    run: CensorCounts
    conditions: Mapping[str, CensorCounts]
    baseline: CensorCounts
    conditions_by_events: Mapping[str, CensorCounts] | None
    baseline_by_events: CensorCounts | None
    n_kept: int
    rank_kept: int
    dof_left: int
    n_regressors: int


@dataclass(frozen=True, kw_only=True)
class CensorMasks(JsonRecord):
    applied: CensorMask | None
    load_confounds: CensorMask | None


@dataclass(frozen=True, kw_only=True)
class Censoring(JsonRecord):
    in_fraction: float
    conditions: Mapping[str, tuple[str, ...]]
    n_scans_total: int
    masks: CensorMasks


@dataclass(frozen=True, kw_only=True)
class Motion(JsonRecord):
    source: str | None
    columns: tuple[str, ...]
    missing: tuple[str, ...]
    note: str | Absent = ABSENT
    in_fraction_rule: str | Absent = ABSENT
    kept_scans: int | Absent = ABSENT
    series: Mapping[str, Mapping[str, Any]] | Absent = ABSENT  # per motion column: mean, mean_kept, r, ...


@dataclass(frozen=True, kw_only=True)
class Diagnostics(JsonRecord):
    """``diagnostics``: one section per diagnostic (docs/record.md)."""

    collinearity: Collinearity | Absent = ABSENT
    drift: Drift | Absent = ABSENT
    confounds: ConfoundsDiagnostics | Absent = ABSENT
    baseline: Baseline | Absent = ABSENT
    rt: RtDiagnostics | Absent = ABSENT
    censoring: Censoring | Absent = ABSENT
    motion: Motion | Absent = ABSENT


# --------------------------------------------------------------------------- contrasts
@dataclass(frozen=True, kw_only=True)
class BaselineComposition(JsonRecord):
    negative: Mapping[str, Number]
    positive: Mapping[str, Number]
    edge_share: Number
    negative_total: Number | Absent = ABSENT
    positive_total: Number | Absent = ABSENT
    n_edge: int | Absent = ABSENT


@dataclass(frozen=True, kw_only=True)
class SensitivityEntry(JsonRecord):
    """One unmodelled signal's bias on a contrast (``bias_percent``: % signal change; ``bias_sd``: SE units)."""

    source: str
    label: str
    bias: Number
    bias_percent: Number
    bias_sd: Number
    sd_percent: Number
    sd_source: str | None
    noise_sd_percent: Number
    magnitude_source: str | None
    direction: str | None
    unit: str | None
    typical: Number
    cause: str | None
    structural: bool | None
    severity: str | None
    severity_basis: str | None
    hypothesis: bool | None
    rank_sd: Number
    measured_bias_percent: Number | Absent = ABSENT
    measured_t: Number | Absent = ABSENT
    measured_bias_sd: Number | Absent = ABSENT
    measured_what: str | None | Absent = ABSENT


@dataclass(frozen=True, kw_only=True)
class ContrastMeasuredSignal(JsonRecord):
    """A measured signal's part in a contrast estimate (``estimate``: % signal change)."""

    estimate_ols: Number | Absent = ABSENT
    estimate: Number | Absent = ABSENT
    se: Number | Absent = ABSENT
    t: Number | Absent = ABSENT
    noise_model: str | None | Absent = ABSENT
    in_model: bool | None | Absent = ABSENT
    by_class: Mapping[str, Number] | None | Absent = ABSENT
    by_class_estimate: Mapping[str, Number] | None | Absent = ABSENT
    by_class_se: Mapping[str, Number] | None | Absent = ABSENT
    by_class_t: Mapping[str, Number] | None | Absent = ABSENT
    by_class_kind: Mapping[str, str] | None | Absent = ABSENT
    note: str | None | Absent = ABSENT


@dataclass(frozen=True, kw_only=True)
class ContrastEntry(JsonRecord):
    """``contrasts.<name>``: one contrast (an invalid one has only expression, estimable, findings)."""

    expression: str
    vector: Mapping[str, float] | Absent = ABSENT
    kind: str | Absent = ABSENT
    estimable: bool
    variance: Number | Absent = ABSENT
    efficiency: Number | Absent = ABSENT
    cvif: Number | Absent = ABSENT
    effect_required_pct: Number | Absent = ABSENT
    drift_r2: Number | Absent = ABSENT
    weights: tuple[Number, ...] | None | Absent = ABSENT
    baseline_composition: BaselineComposition | None | Absent = ABSENT
    sensitivity: tuple[SensitivityEntry, ...] | Absent = ABSENT
    measured: Mapping[str, ContrastMeasuredSignal] | Absent = ABSENT
    explanation: str | None | Absent = ABSENT
    findings: tuple[str, ...]  # finding codes, ranked


@dataclass(frozen=True, kw_only=True)
class WhatIfContrast(JsonRecord):
    max_abs_bias_sd_before: Number | Absent = ABSENT
    max_abs_bias_sd_after: Number | Absent = ABSENT
    max_structural_bias_sd_before: Number | Absent = ABSENT
    max_structural_bias_sd_after: Number | Absent = ABSENT
    by_source: Mapping[str, Any] | Absent = ABSENT
    variance_before: Number | Absent = ABSENT
    variance_after: Number | Absent = ABSENT


@dataclass(frozen=True, kw_only=True)
class WhatIf(JsonRecord):
    """``whatif[]``: one fix and its effect on every contrast."""

    fix: str
    code: str
    contrasts: Mapping[str, WhatIfContrast]
    worse: tuple[str, ...] | Absent = ABSENT
    note: str | Absent = ABSENT


# --------------------------------------------------------------------------- measured
@dataclass(frozen=True, kw_only=True)
class MeasuredSignal(JsonRecord):
    """``measured.signals.<name>``: a mean signal measured from the confounds file (percent units)."""

    steady_median: Number | Absent = ABSENT
    nonsteady_volumes: tuple[int, ...] | Absent = ABSENT
    percent_excess_nonsteady: tuple[Number, ...] | Absent = ABSENT
    residual_sd_percent: Number | Absent = ABSENT
    in_model: bool | Absent = ABSENT
    reference: Mapping[str, Any] | None | Absent = ABSENT  # value (percent), definition
    transients: Mapping[str, Any] | None | Absent = ABSENT  # signal, noise_percent, threshold_percent, volumes


@dataclass(frozen=True, kw_only=True)
class MeasuredNoise(JsonRecord):
    sd_percent: Number
    source: str | None
    reason: str | None


@dataclass(frozen=True, kw_only=True)
class BoldMeasurement(JsonRecord):
    """``measured.bold`` (``--measure bold``): the effect maps and each scan class's share."""

    status: str  # measured | not measured
    note: str | Absent = ABSENT
    bold: str | Absent = ABSENT
    mask: str | Absent = ABSENT
    n_voxels: int | Absent = ABSENT
    units: str | Absent = ABSENT
    contrasts: Mapping[str, Mapping[str, Any]] | Absent = ABSENT


@dataclass(frozen=True, kw_only=True)
class Measured(JsonRecord):
    """``measured``: what was measured for the run, and from what."""

    mode: str | Absent = ABSENT
    source: str | None | Absent = ABSENT
    signals: Mapping[str, MeasuredSignal] | Absent = ABSENT
    missing: tuple[str, ...] | Absent = ABSENT
    noise_model: str | None | Absent = ABSENT
    noise: MeasuredNoise | Absent = ABSENT
    note: str | Absent = ABSENT
    bold: BoldMeasurement | Absent = ABSENT


# --------------------------------------------------------------------------- findings, error, record
@dataclass(frozen=True, kw_only=True)
class FindingRecord(JsonRecord):
    """One finding as written (``evidence`` is per-code detail, free-form JSON)."""

    code: str
    severity: str
    title: str
    message: str
    evidence: Mapping[str, Any]
    contrast: str | None
    score: Number
    fix: str | None


@dataclass(frozen=True, kw_only=True)
class RunError(JsonRecord):
    """``error``: why a run could not be audited (file, column, row, expected, found)."""

    code: str | None
    message: str
    file: str | None | Absent = ABSENT
    column: str | None | Absent = ABSENT
    row: int | None | Absent = ABSENT
    expected: str | None | Absent = ABSENT
    found: str | None | Absent = ABSENT
    traceback: str | Absent = ABSENT


@dataclass(frozen=True, kw_only=True)
class RunRecord(JsonRecord):
    """One run × variant (``*_desc-<variant>_nbdiag.json``); an error record has no design."""

    nbdiag_version: str
    nilearn_version: str
    run: RunInfo
    variant: str
    settings: RunSettings
    notes: tuple[str, ...]
    design: Design | Absent = ABSENT
    confounds: ConfoundsInfo | Absent = ABSENT
    events: EventsInfo | Absent = ABSENT
    diagnostics: Diagnostics | Absent = ABSENT
    contrasts: Mapping[str, ContrastEntry] | Absent = ABSENT
    whatif: tuple[WhatIf, ...] | Absent = ABSENT
    measured: Measured | Absent = ABSENT
    findings: tuple[FindingRecord, ...]
    status: str  # pass | warn | fail | error
    error: RunError | None | Absent = ABSENT
    provenance: Provenance | Absent = ABSENT


@dataclass(frozen=True, kw_only=True)
class SkippedCheck(JsonRecord):
    checks: tuple[str, ...]
    effect: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class SavedDesignRun(JsonRecord):
    """``run`` of a saved-design record: the design file stands for the run."""

    subject: str
    session: str | None
    run: str | None
    prefix: str
    entities: Mapping[str, str]
    files: Mapping[str, str | None]


@dataclass(frozen=True, kw_only=True)
class SavedDesignRecord(JsonRecord):
    """The record of a saved design matrix (``nbdiag design DESIGN_TSV``)."""

    nbdiag_version: str
    nilearn_version: str
    source: str
    settings: SavedDesignSettings
    design: SavedDesign
    diagnostics: Diagnostics
    contrasts: Mapping[str, ContrastEntry]
    whatif: tuple[WhatIf, ...]
    skipped_checks: tuple[SkippedCheck, ...]
    findings: tuple[FindingRecord, ...]
    status: str
    run: SavedDesignRun
    variant: str


def read_record(data: Mapping[str, Any]) -> RunRecord | SavedDesignRecord:
    """The typed record of a ``*_nbdiag.json``'s content (a saved-design record has ``source``)."""
    if "source" in data and "skipped_checks" in data:
        return SavedDesignRecord.from_json(data)
    return RunRecord.from_json(data)


def as_run_record(record: RunRecord | Mapping[str, Any]) -> RunRecord:
    """``record`` itself when it is typed, else :meth:`RunRecord.from_json` of it (a record's JSON,
    read once): the boundary of the readers (group tables, reports) that also take JSON.

    Raises
    ------
    RecordFormatError
        JSON that does not fit the record's type (the message names the field).
    """
    return record if isinstance(record, RunRecord) else RunRecord.from_json(record)
