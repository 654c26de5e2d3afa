"""Settings: ``first_level_from_bids`` arguments, event transforms, contrasts,
thresholds and named model variants.

Settings come from a TOML file (``--config``) and/or command-line flags. Every
model key has the name nilearn's ``first_level_from_bids`` uses, so a call like
``first_level_from_bids(..., high_pass=0.005, confounds_strategy=("motion",
"non_steady_state"), confounds_motion="basic")`` becomes::

    [model]
    task_label = "nback"
    high_pass = 0.005
    confounds_strategy = ["motion", "non_steady_state"]
    confounds_motion = "basic"

Invalid values raise :class:`SettingsError`, whose message names the key, the
allowed values and what was given.
"""

from __future__ import annotations

import math
import re
import sys
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

from nbdiag.core.errors import SettingsError
from nbdiag.core.limits import Limits
from nbdiag.core.thresholds import Thresholds

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

#: Sentinel: ``confounds_strategy`` not given. nilearn then loads the *whole*
#: confounds file (every column, first row NaNs set to 0).
UNSET = "unset"

HRF_MODELS = (
    "glover",
    "spm",
    "spm + derivative",
    "spm + derivative + dispersion",
    "glover + derivative",
    "glover + derivative + dispersion",
    "fir",
    None,
)
DRIFT_MODELS = ("cosine", "polynomial", None)
#: ``--measure``: what nbdiag measures from the run's own files
#: (``confounds``: the confounds file's global_signal/csf/white_matter; ``bold``: also
#: the preprocessed BOLD, voxel by voxel; ``none``: nothing, assumed sizes only).
MEASURE_CHOICES = ("confounds", "bold", "none")
CONFOUND_STRATEGIES = (
    "motion", "high_pass", "wm_csf", "global_signal", "compcor",
    "ica_aroma", "scrub", "non_steady_state", "tedana",
)
LEVELS = ("basic", "power2", "derivatives", "full")
COMPCOR = (
    "anat_combined", "anat_separated", "temporal",
    "temporal_anat_combined", "temporal_anat_separated",
)
#: defaults ``first_level_from_bids`` uses for ``confounds_*`` keys that are
#: not given while ``confounds_strategy`` is (nilearn's
#: ``_check_kwargs_load_confounds``).
CONFOUNDS_DEFAULTS: dict[str, Any] = {
    "strategy": ("motion", "high_pass", "wm_csf"),
    "motion": "full",
    "scrub": 5,
    "fd_threshold": 0.5,
    "std_dvars_threshold": 1.5,
    "wm_csf": "basic",
    "global_signal": "basic",
    "compcor": "anat_combined",
    "n_compcor": "all",
    "ica_aroma": "full",
    "demean": True,
}



def nilearn_confounds_defaults() -> dict[str, Any]:
    """Defaults the *installed* nilearn's ``first_level_from_bids`` uses for ``confounds_*``.

    They change between releases (nilearn 0.12: ``fd_threshold=0.2``,
    ``std_dvars_threshold=3``; 0.13+: 0.5 and 1.5), so they are read from nilearn's
    own ``_check_kwargs_load_confounds`` (:func:`nbdiag.core.compat.load_confounds_defaults`);
    ``CONFOUNDS_DEFAULTS`` (0.14) is the fallback.
    """
    from nbdiag.core.compat import load_confounds_defaults  # lazy: numpy, nilearn (the CLI imports config at start-up)

    return load_confounds_defaults(CONFOUNDS_DEFAULTS)


def nilearn_fills_first_row() -> bool:
    """Whether ``first_level_from_bids`` without ``confounds_strategy`` fills the first
    row's NaNs with 0 (nilearn >= 0.13) or passes the raw file (0.12)."""
    from nbdiag.core.compat import nilearn_version  # lazy: numpy (the CLI imports config at start-up)

    return nilearn_version() >= (0, 13)


_LABEL = re.compile(r"^[A-Za-z0-9]+$")
_PLUGIN = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def _bad(key: str, allowed: str, given: Any, where: str = "") -> SettingsError:
    loc = f"{where}: " if where else ""
    return SettingsError(f"{loc}invalid value for '{key}': expected {allowed}; got {given!r}")


@dataclass(frozen=True)
class ModelSettings:
    """``first_level_from_bids`` arguments that shape the design.

    Names and defaults are nilearn's. ``confounds`` holds the ``confounds_*``
    keyword arguments without their prefix (``{"strategy": ("motion",), ...}``);
    it is ``None`` for ``confounds_strategy=None`` (no confounds) and absent
    keys take nilearn's defaults. ``apply_sample_masks`` is nbdiag's own:
    ``False`` reproduces ``first_level_from_bids`` + ``fit`` (the sample mask
    from ``load_confounds`` is dropped), ``True`` audits the design you get
    when you pass ``sample_masks`` to ``FirstLevelModel.fit``.
    """

    task_label: str = ""
    space_label: str | None = None
    derivatives_folder: str = "derivatives"
    img_filters: tuple[tuple[str, str], ...] = ()
    sub_labels: tuple[str, ...] = ()
    exclude_subjects: tuple[str, ...] = ()
    t_r: float | None = None
    slice_time_ref: float | None = None
    hrf_model: str | None = "glover"
    drift_model: str | None = "cosine"
    high_pass: float = 0.01
    drift_order: int = 1
    fir_delays: tuple[int, ...] | None = None
    min_onset: float = -24.0
    confounds_strategy: Any = UNSET
    confounds: Mapping[str, Any] = field(default_factory=dict)
    apply_sample_masks: bool = False
    noise_model: str = "ar1"

    def load_confounds_kwargs(self) -> dict[str, Any] | None:
        """The kwargs ``first_level_from_bids`` passes to ``load_confounds``.

        Returns ``None`` for no confounds and ``{}`` when the whole confounds
        file is used (``confounds_strategy`` not given), like nilearn.
        """
        if self.confounds_strategy is None:
            return None
        if self.confounds_strategy == UNSET:
            return {}
        kwargs = nilearn_confounds_defaults()
        kwargs.update(self.confounds)
        kwargs["strategy"] = tuple(self.confounds_strategy)
        return kwargs

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("confounds")
        out["confounds_strategy"] = (
            None if self.confounds_strategy is None
            else "not given (whole confounds file)" if self.confounds_strategy == UNSET
            else list(self.confounds_strategy)
        )
        for key, value in self.confounds.items():
            out[f"confounds_{key}"] = value
        out["img_filters"] = [list(f) for f in self.img_filters]
        return out


@dataclass(frozen=True)
class EventSettings:
    """Event transforms applied, in this order: drop, rename, transforms.

    ``transforms`` holds ``"rtdur"`` (ConsDurRTDur) and/or plugins
    ``"package.module:function"`` (DataFrame -> DataFrame).
    """

    rename: Mapping[str, str] = field(default_factory=dict)
    drop: tuple[str, ...] = ()
    transforms: tuple[str, ...] = ()
    rt_column: str = "response_time"
    rtdur_name: str = "RTDur"
    #: conditions the user declares rest-like (fixation/control modelled under any name)
    rest_conditions: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "rename": dict(self.rename), "drop": list(self.drop),
            "transforms": list(self.transforms), "rt_column": self.rt_column,
            "rtdur_name": self.rtdur_name, "rest_conditions": list(self.rest_conditions),
        }


@dataclass(frozen=True)
class RunNode:
    """The run-level node of a BIDS Stats Model (``--model``), checked.

    :func:`nbdiag.inputs.bids_stats_model.parse_stats_model` builds it from the file;
    :func:`resolve_settings` (``stats_model=``) applies what it says about the settings
    (:meth:`config_values`) to every variant; the design builder reads the rest
    (transformations, ``Model.X``, convolved variables).

    Attributes
    ----------
    name : str
        ``Name`` of the node.
    x : tuple
        ``Model.X`` (``1`` for the intercept).
    instructions : tuple of dict
        Transformations, keys lower-cased.
    hrf_model, fir_delays
        nilearn ``hrf_model`` / ``fir_delays`` of the convolved variables.
    convolved : tuple of str
        Variable names or patterns convolved (from ``Convolve`` / ``Model.HRF``).
    contrasts : dict
        Name -> {column: weight} (``1`` written as ``constant``).
    path : str
        The model file.
    notes : tuple of str
        What reading the file noted.
    model_values : dict
        The nilearn-named model settings the node states (HRF, drift, high-pass, ``Input``
        task/space/subjects; ``confounds_strategy`` None: a stats model names its confounds in X).
    """

    name: str
    x: tuple
    instructions: tuple
    hrf_model: str | None
    fir_delays: tuple[int, ...] | None
    convolved: tuple[str, ...]
    contrasts: Mapping[str, Mapping[str, float]]
    path: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)
    model_values: Mapping[str, Any] = field(default_factory=dict)

    @property
    def where(self) -> str:
        """How messages name the node: ``file.json (run node NAME)``."""
        return f"{Path(self.path).name} (run node {self.name})"

    def config_values(self) -> dict[str, Any]:
        """The ``[model]`` values the node states (nilearn names; no confounds), not yet validated."""
        model = {k: v for k, v in self.model_values.items()
                 if k != "confounds_strategy" and (v is not None or k in ("hrf_model", "drift_model", "fir_delays"))}
        model["confounds_strategy"] = None
        return model

    def to_dict(self) -> dict[str, Any]:
        return {"file": Path(self.path).name, "node": self.name, "x": [str(v) for v in self.x],
                "transformations": [i["name"] for i in self.instructions], "hrf_model": self.hrf_model}


@dataclass(frozen=True)
class Settings:
    """Complete settings for one model variant."""

    model: ModelSettings = field(default_factory=ModelSettings)
    events: EventSettings = field(default_factory=EventSettings)
    #: name -> nilearn expression (a BIDS Stats Model's: name -> {column: weight})
    contrasts: Mapping[str, str | Mapping[str, float]] | None = None
    thresholds: Thresholds = field(default_factory=Thresholds)
    variant: str = "default"
    measure: str = "confounds"
    limits: Limits = field(default_factory=Limits)
    #: run node of a BIDS Stats Model (``--model``, parsed by nbdiag.inputs.bids_stats_model), or None
    stats_model: RunNode | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {
            "variant": self.variant,
            "measure": self.measure,
            "model": self.model.to_dict(),
            "events": self.events.to_dict(),
            "contrasts": dict(self.contrasts) if self.contrasts else None,
            "thresholds": self.thresholds.to_dict(),
            "limits": self.limits.to_dict(),
        }
        if self.stats_model is not None:
            out["stats_model"] = self.stats_model.to_dict()
        return out


@dataclass(frozen=True)
class Config:
    """Base settings plus named variants (``variants`` empty → one ``default``)."""

    base: Settings = field(default_factory=Settings)
    variants: Mapping[str, Settings] = field(default_factory=dict)

    def all_variants(self) -> list[Settings]:
        """Every variant to audit (``[base named "default"]`` if none)."""
        if not self.variants:
            return [self.base]
        return list(self.variants.values())


# --------------------------------------------------------------------------- #
# validation
# --------------------------------------------------------------------------- #
_MODEL_KEYS = {f.name for f in fields(ModelSettings)} - {"confounds"}
_CONFOUND_KEYS = {f"confounds_{k}" for k in CONFOUNDS_DEFAULTS if k != "strategy"}
_EVENT_KEYS = {f.name for f in fields(EventSettings)} | {"transform"}


def _as_tuple(value: Any) -> tuple:
    if value is None:
        return ()
    if isinstance(value, (str, bytes)):
        return (value,)
    if isinstance(value, (list, tuple)):
        return tuple(value)
    return (value,)


def _number(key: str, value: Any, where: str, *, positive: bool = False,
            low: float | None = None, high: float | None = None,
            integer: bool = False) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _bad(key, "an integer" if integer else "a number", value, where)
    if not math.isfinite(value):
        raise _bad(key, "a finite number", value, where)
    if integer and not float(value).is_integer():
        raise _bad(key, "an integer", value, where)
    if positive and value <= 0:
        raise _bad(key, "a number > 0", value, where)
    if low is not None and high is not None and not (low <= value <= high):
        raise _bad(key, f"a number between {low} and {high}", value, where)
    return int(value) if integer else float(value)


def _choice(key: str, value: Any, allowed: tuple, where: str) -> Any:
    if isinstance(value, str) and value.lower() in ("none", "null") and None in allowed:
        return None
    if value not in allowed:
        shown = ", ".join("None" if a is None else repr(a) for a in allowed)
        raise _bad(key, f"one of {shown}", value, where)
    return value


def _label(key: str, value: Any, where: str) -> str:
    value = str(value)
    if not _LABEL.match(value):
        raise _bad(key, "a BIDS label (letters and digits only)", value, where)
    return value


def _model_value(key: str, value: Any, where: str) -> Any:  # noqa: C901 - one branch per key, each a line or two
    """Validate one ``[model]`` key (nilearn name) and return its clean value."""
    if key == "task_label":
        return _label(key, value, where)
    if key == "space_label":
        return None if value in (None, "") else _label(key, value, where)
    if key == "derivatives_folder":
        if not isinstance(value, str) or not value:
            raise _bad(key, "a folder path relative to BIDS_DIR", value, where)
        return value
    if key == "img_filters":
        return _img_filters(value, where)
    if key in ("sub_labels", "exclude_subjects"):
        return tuple(_label(key, str(v).removeprefix("sub-"), where) for v in _as_tuple(value))
    if key == "t_r":
        return None if value is None else _number(key, value, where, positive=True)
    if key == "slice_time_ref":
        return None if value is None else _number(key, value, where, low=0.0, high=1.0)
    if key == "hrf_model":
        return _choice(key, value, HRF_MODELS, where)
    if key == "drift_model":
        return _choice(key, value, DRIFT_MODELS, where)
    if key == "high_pass":
        return _number(key, value, where, positive=True)
    if key == "drift_order":
        return _number(key, value, where, integer=True, low=0, high=100)
    if key == "fir_delays":
        if value is None:
            return None
        return tuple(_number(key, v, where, integer=True, low=0, high=1000) for v in _as_tuple(value))
    if key == "min_onset":
        return _number(key, value, where)
    if key == "confounds_strategy":
        return _confounds_strategy(value, where)
    if key == "noise_model":
        if not isinstance(value, str) or not re.match(r"^(ols|ar[1-9]\d*)$", value):
            raise _bad(key, "'ols' or 'arN' (nilearn's noise_model, e.g. 'ar1')", value, where)
        return value
    if key == "apply_sample_masks":
        if not isinstance(value, bool):
            raise _bad(key, "true or false", value, where)
        return value
    raise SettingsError(f"{where + ': ' if where else ''}unknown key {key!r}")


def _img_filters(value: Any, where: str) -> tuple[tuple[str, str], ...]:
    """``img_filters``: (entity, label) pairs, from a table, ``ENTITY=LABEL`` strings or pairs;
    entities are the BIDS entities nilearn knows."""
    key = "img_filters"
    pairs: list[tuple[str, str]] = []
    items = value.items() if isinstance(value, Mapping) else value
    for item in items:
        if isinstance(item, str) and "=" in item:
            item = item.split("=", 1)
        if len(item) != 2:
            raise _bad(key, "pairs of (entity, label), e.g. [['desc', 'preproc']]", value, where)
        from nilearn.interfaces.bids.utils import bids_entities  # lazy: nilearn (CLI start-up)

        allowed = bids_entities()["raw"] + bids_entities()["derivatives"]
        entity = str(item[0])
        if entity not in allowed:
            raise _bad(f"{key} entity", f"one of {', '.join(allowed)}", entity, where)
        pairs.append((entity, _label(f"{key} label for {entity}", item[1], where)))
    return tuple(pairs)


def _confounds_strategy(value: Any, where: str) -> Any:
    """``confounds_strategy``: None (no confounds), ``UNSET`` (the whole file) or a tuple of
    nilearn strategies (``compcor`` only with ``high_pass``, as ``load_confounds`` requires)."""
    key = "confounds_strategy"
    if value is None or (isinstance(value, str) and value.lower() == "none"):
        return None
    if value == UNSET:
        return UNSET
    if not isinstance(value, (str, list, tuple)):
        raise _bad(key, f"a list of items from {', '.join(CONFOUND_STRATEGIES)}, or 'none'", value, where)
    strategy = _as_tuple(value)
    for item in strategy:
        if not isinstance(item, str) or item not in CONFOUND_STRATEGIES:
            raise _bad(key, f"items from {', '.join(CONFOUND_STRATEGIES)}", item, where)
    if "compcor" in strategy and "high_pass" not in strategy:
        raise SettingsError(
            f"{where + ': ' if where else ''}invalid value for 'confounds_strategy': "
            f"nilearn's load_confounds requires 'high_pass' with 'compcor'; got {list(strategy)!r}"
        )
    return strategy


def _confound_value(key: str, value: Any, where: str) -> tuple[str, Any]:
    name = key.removeprefix("confounds_")
    if name in ("motion", "wm_csf", "global_signal"):
        return name, _choice(key, value, LEVELS, where)
    if name == "compcor":
        return name, _choice(key, value, COMPCOR, where)
    if name == "ica_aroma":
        return name, _choice(key, value, ("full", "basic"), where)
    if name == "n_compcor":
        if value == "all":
            return name, value
        return name, _number(key, value, where, integer=True, low=1, high=10_000)
    if name == "scrub":
        return name, _number(key, value, where, integer=True, low=0, high=10_000)
    if name in ("fd_threshold", "std_dvars_threshold"):
        return name, _number(key, value, where, positive=True)
    if name == "demean":
        if not isinstance(value, bool):
            raise _bad(key, "true or false", value, where)
        return name, value
    raise SettingsError(f"{where + ': ' if where else ''}unknown key {key!r}")


def update_model(model: ModelSettings, values: Mapping[str, Any], where: str = "[model]") -> ModelSettings:
    """Return ``model`` with ``values`` (nilearn-named keys) validated and applied."""
    clean: dict[str, Any] = {}
    confounds = dict(model.confounds)
    for key, value in values.items():
        if key in _CONFOUND_KEYS:
            name, val = _confound_value(key, value, where)
            confounds[name] = val
        elif key in _MODEL_KEYS:
            clean[key] = _model_value(key, value, where)
        else:
            allowed = sorted(_MODEL_KEYS | _CONFOUND_KEYS)
            raise SettingsError(f"{where}: unknown key {key!r}; allowed keys: {', '.join(allowed)}")
    return replace(model, confounds=confounds, **clean)


def _validate_transform(value: str, where: str) -> str:
    if value == "rtdur" or _PLUGIN.match(value):
        return value
    raise _bad("transform", "'rtdur' or a plugin 'package.module:function'", value, where)


def _rename(value: Any, where: str) -> dict[str, str]:
    """``rename``: a table ``{OLD = NEW}`` or ``OLD=NEW`` strings, both names non-empty."""
    key = "rename"
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(v, str) or not v.strip():
                raise _bad(f"{key} {k!r}", "a new trial_type name (a non-empty string, e.g. 'zero_back')",
                           v, where)
        return {str(k): v for k, v in value.items()}
    mapping = {}
    for item in _as_tuple(value):
        if "=" not in str(item):
            raise _bad(key, "OLD=NEW pairs or a table {OLD = NEW}", item, where)
        if not isinstance(item, str):
            raise _bad(key, "OLD=NEW strings", item, where)
        old, new = str(item).split("=", 1)
        if not old or not new.strip():
            raise _bad(key, "OLD=NEW with both names non-empty", item, where)
        mapping[old] = new
    return mapping


def update_events(events: EventSettings, values: Mapping[str, Any], where: str = "[events]") -> EventSettings:
    """Return ``events`` with ``values`` validated and applied."""
    clean: dict[str, Any] = {}
    for key, value in values.items():
        if key == "rename":
            clean["rename"] = {**events.rename, **_rename(value, where)}
        elif key == "drop":
            for v in _as_tuple(value):
                if not isinstance(v, (str, int)) or isinstance(v, bool):
                    raise _bad(key, "trial_type names (strings)", v, where)
            clean["drop"] = tuple(str(v) for v in _as_tuple(value))
        elif key in ("transform", "transforms"):
            clean["transforms"] = tuple(_validate_transform(str(v), where) for v in _as_tuple(value))
        elif key in ("rt_column", "rtdur_name"):
            if not isinstance(value, str) or not value:
                raise _bad(key, "a non-empty string", value, where)
            clean[key] = value
        elif key == "rest_conditions":
            items = _as_tuple(value)
            if not all(isinstance(v, str) and v for v in items):
                raise _bad(key, "a list of condition names (non-empty strings)", value, where)
            clean["rest_conditions"] = tuple(items)
        else:
            raise SettingsError(
                f"{where}: unknown key {key!r}; allowed keys: rename, drop, transform, rt_column, rtdur_name, "
                "rest_conditions"
            )
    return replace(events, **clean)


def _contrasts(value: Any, where: str) -> dict[str, str]:
    if isinstance(value, Mapping):
        out = {}
        for name, expr in value.items():
            if not isinstance(expr, str) or not expr.strip():
                raise _bad(f"contrast {name!r}", "a nilearn contrast expression string", expr, where)
            out[str(name)] = expr
        return out
    out = {}
    for expr in _as_tuple(value):
        if not isinstance(expr, str) or not expr.strip():
            raise _bad("contrast", "a nilearn contrast expression string", expr, where)
        out[expr] = expr
    return out


def apply_overrides(settings: Settings, table: Mapping[str, Any], where: str) -> Settings:
    """Apply a config table (``[model]``/``[events]``/``[contrasts]``/``[thresholds]``
    sub-tables, or flat model/event keys) to ``settings``."""
    model, events = settings.model, settings.events
    contrasts, thresholds = settings.contrasts, settings.thresholds
    flat_model: dict[str, Any] = {}
    flat_events: dict[str, Any] = {}
    for key, value in table.items():
        if key in ("model", "events") and not isinstance(value, Mapping):
            raise _bad(key, "a table", value, where)
        if key == "model":
            model = update_model(model, value, f"{where}.model")
        elif key == "events":
            events = update_events(events, value, f"{where}.events")
        elif key == "contrasts":
            contrasts = _contrasts(value, f"{where}.contrasts")
        elif key == "thresholds":
            if not isinstance(value, Mapping):
                raise _bad("thresholds", "a table", value, where)
            thresholds = thresholds.updated(value, f"{where}.thresholds")
        elif key == "measure":
            settings = replace(settings, measure=_choice(key, value, MEASURE_CHOICES, where))
        elif key == "limits":
            settings = replace(settings, limits=settings.limits.updated(value, f"{where}.limits"))
        elif key in _MODEL_KEYS or key in _CONFOUND_KEYS:
            flat_model[key] = value
        elif key in _EVENT_KEYS:
            flat_events[key] = value
        else:
            raise SettingsError(
                f"{where}: unknown key {key!r}; expected the tables model, events, contrasts, "
                "thresholds or a first_level_from_bids argument name"
            )
    if flat_model:
        model = update_model(model, flat_model, where)
    if flat_events:
        events = update_events(events, flat_events, where)
    return replace(settings, model=model, events=events, contrasts=contrasts, thresholds=thresholds)


def config_from_mapping(data: Mapping[str, Any], source: str = "config") -> Config:
    """Build a :class:`Config` from a parsed TOML mapping."""
    allowed = {"model", "events", "contrasts", "thresholds", "variants", "limits", "measure"}
    for key in data:
        if key not in allowed:
            raise SettingsError(f"{source}: unknown table [{key}]; allowed: {', '.join(sorted(allowed))}")
    base = apply_overrides(Settings(), {k: v for k, v in data.items() if k != "variants"}, source)
    variants: dict[str, Settings] = {}
    for name, table in (data.get("variants") or {}).items():
        _label("variant name", name, f"{source} [variants]")
        if not isinstance(table, Mapping):
            raise _bad(f"variants.{name}", "a table", table, source)
        variants[name] = replace(apply_overrides(base, table, f"{source} [variants.{name}]"), variant=name)
    return Config(base=base, variants=variants)


def load_config(path: str | Path) -> Config:
    """Read a TOML config file.

    Raises
    ------
    SettingsError
        If the file is missing, is not valid TOML, or holds an invalid value.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SettingsError(f"config file not found: {path}") from None
    except IsADirectoryError:
        raise SettingsError(f"--config {path}: expected a TOML file, found a folder") from None
    except OSError as exc:
        raise SettingsError(f"--config {path}: cannot read the file ({type(exc).__name__})") from None
    if raw.startswith(b"\xef\xbb\xbf"):
        raise SettingsError(f"{path}: starts with a UTF-8 byte-order mark (BOM); TOML files must be UTF-8 "
                            "without BOM (save it again without the BOM)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SettingsError(f"{path}: not UTF-8 text (byte {exc.start}); TOML files must be UTF-8 "
                            "(latin-1? convert it with iconv -f latin1 -t utf-8)") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: not valid TOML: {exc}") from None
    return config_from_mapping(data, str(path))


def override_config(config: Config, model: Mapping[str, Any] | None = None,
                    events: Mapping[str, Any] | None = None,
                    contrasts: Any = None, where: str = "command line",
                    measure: str | None = None) -> Config:
    """Apply command-line values to the base settings and every variant."""
    def apply(settings: Settings) -> Settings:
        table: dict[str, Any] = {}
        if measure is not None:
            table["measure"] = measure
        if model:
            table["model"] = model
        if events:
            table["events"] = events
        if contrasts:
            table["contrasts"] = contrasts
        return apply_overrides(settings, table, where) if table else settings

    return Config(
        base=apply(config.base),
        variants={name: apply(s) for name, s in config.variants.items()},
    )


def check_complete(config: Config) -> None:
    """Raise when a required setting (``task_label``) is missing."""
    for settings in config.all_variants():
        if not settings.model.task_label:
            raise SettingsError(
                "missing setting 'task_label': give --task LABEL or task_label in [model] of the config"
            )


def replace_model(config: Config, **values: Any) -> Config:
    """Set already-validated model values on the base settings and every variant."""
    return Config(
        base=replace(config.base, model=replace(config.base.model, **values)),
        variants={name: replace(s, model=replace(s.model, **values)) for name, s in config.variants.items()},
    )


# --------------------------------------------------------------------------- #
# the one way in
# --------------------------------------------------------------------------- #
def _labels_from_filter(config: Config, bids_filter: Any) -> Config:
    """``task_label`` / ``space_label`` from a filter file's ``bold`` entry, when it names exactly one."""
    for key, setting in (("task", "task_label"), ("space", "space_label")):
        value = bids_filter.single(key)
        wanted = bids_filter.bold.get(key)
        if value is None:
            if isinstance(wanted, tuple) and not any(getattr(s.model, setting) for s in config.all_variants()):
                raise SettingsError(f"{bids_filter.path}: bold.{key} lists {list(wanted)}; nbdiag audits one "
                                    f"{setting} at a time: give --{key} LABEL")
            continue
        current = {getattr(s.model, setting) for s in config.all_variants()} - {None, ""}
        if current and current != {value}:
            raise SettingsError(f"{bids_filter.path}: bold.{key} is {value!r} but {setting} is "
                                f"{', '.join(map(repr, sorted(current)))} (--{key} / config); make them agree")
        config = replace_model(config, **{setting: value})
    return config


def _with_stats_model(config: Config, node: RunNode) -> Config:
    """Every variant with a BIDS Stats Model's run node (its contrasts replace any others)."""
    if not isinstance(node, RunNode):
        raise SettingsError(f"stats_model: expected a parsed run node (nbdiag.inputs.bids_stats_model."
                            f"load_stats_model); got {type(node).__name__}")
    values = node.config_values()

    def one(settings: Settings) -> Settings:
        model = update_model(settings.model, values, where=node.where)
        return replace(settings, model=model, contrasts=dict(node.contrasts), stats_model=node)

    return Config(base=one(config.base), variants={k: one(v) for k, v in config.variants.items()})


def _participant_labels(config: Config, labels: Any) -> Config:
    clean = []
    for label in labels:
        text = str(label).removeprefix("sub-")
        if not _LABEL.match(text):
            raise SettingsError(f"invalid value for 'participant_label': expected BIDS labels (letters and "
                                f"digits, with or without 'sub-'); got {str(label)!r}")
        clean.append(text)
    return replace_model(config, sub_labels=tuple(clean))


def resolve_settings(config: Config | str | Path | Mapping[str, Any] | None = None, *,
                     model: Mapping[str, Any] | None = None, events: Mapping[str, Any] | None = None,
                     contrasts: Any = None, thresholds: Thresholds | Mapping[str, Any] | None = None,
                     measure: str | None = None, bids_filter: Any = None,
                     stats_model: RunNode | None = None, participant_labels: Any = None,
                     variant: str | None = None, where: str = "command line",
                     require_task: bool = True) -> Config:
    """The resolved settings of every variant, from every way in, validated once.

    The command line, a TOML config file, a BIDS Stats Model, a ``--bids-filter-file`` and
    the Python API all end here, applied in this order (a later source overrides an
    earlier one); :func:`nbdiag.participant.pipeline.run_participant` and :mod:`nbdiag.api` consume
    the result and never patch it.

    Parameters
    ----------
    config : Config, path, mapping or None
        A :class:`Config`, a TOML file (:func:`load_config`), a parsed TOML mapping
        (:func:`config_from_mapping`) or nothing (nilearn's defaults).
    model, events, contrasts, measure
        Command-line values (nilearn names), applied to the base settings and every variant.
    thresholds : Thresholds or mapping, optional
        A complete :class:`Thresholds` or ``[thresholds]`` keys to override.
    bids_filter : nbdiag.inputs.bids_filter.BidsFilter, optional
        Sets ``task_label`` / ``space_label`` when its ``bold`` entry names exactly one.
    stats_model : RunNode, optional
        The run node of a ``--model`` file (:func:`nbdiag.inputs.bids_stats_model.load_stats_model`):
        its model values, its contrasts (they replace any others) and the node itself.
    participant_labels : iterable of str, optional
        ``--participant-label``, with or without ``sub-``; replaces ``sub_labels``.
    variant : str, optional
        Name of the (single) variant when the config defines none (the Python API).
    where : str
        How messages name the command-line values.
    require_task : bool
        Refuse settings without ``task_label`` (BIDS discovery needs it; the Python API does not).

    Raises
    ------
    SettingsError
        For an invalid or incomplete setting, naming the key, the allowed values and the value.
    """
    if config is None:
        config = Config()
    elif isinstance(config, (str, Path)):
        config = load_config(config)
    elif isinstance(config, Mapping):
        config = config_from_mapping(config)
    config = override_config(config, model=model, events=events, contrasts=contrasts, where=where, measure=measure)
    if thresholds is not None:
        def with_thresholds(s: Settings) -> Settings:
            if isinstance(thresholds, Thresholds):
                return replace(s, thresholds=thresholds)
            return replace(s, thresholds=s.thresholds.updated(thresholds, "thresholds"))

        config = Config(base=with_thresholds(config.base),
                        variants={k: with_thresholds(v) for k, v in config.variants.items()})
    if bids_filter is not None:
        config = _labels_from_filter(config, bids_filter)
    if stats_model is not None:
        config = _with_stats_model(config, stats_model)
    if participant_labels:
        config = _participant_labels(config, participant_labels)
    if variant is not None and not config.variants:
        config = Config(base=replace(config.base, variant=_label("variant", variant, where)))
    if require_task:
        check_complete(config)
    return config
