"""BIDS Stats Models (``--model model.json``): the run-level node as nbdiag settings.

The file is validated with ``bsmschema`` (the pydantic models of the BIDS Stats Models
specification). The run-level node is read as FitLins reads it (pybids
``BIDSStatsModelsGraph`` + FitLins' nilearn ``DesignMatrix``):

* ``Transformations`` (``pybids-transforms-v1``): ``Factor``, ``Convolve``, ``Select``,
  ``Rename``, ``Replace``, ``Scale``, ``Threshold`` are applied, in order, to the run's
  variables: every events.tsv column (sparse: onset, duration, amplitude) and every
  column of the fMRIPrep confounds file (dense, one value per volume). Any other
  transformation is refused by name.
* ``Model.X`` lists the design's columns (``1`` = the intercept, nilearn's ``constant``;
  ``*`` / ``?`` wildcards as pybids expands them). Convolved sparse variables become
  events (``trial_type`` = the variable's name, ``modulation`` = its amplitude), dense
  variables become confounds, exactly the columns named, NaNs of the first row imputed
  as FitLins does (``framewise_displacement``, ``std_dvars``, ``dvars``: mean of the
  non-zero values; ``*derivative1*``: 0; any other NaN: 0, as pybids fills them).
* ``Model.HRF`` (``Variables``, ``Model``) convolves when no ``Convolve`` does:
  ``spm``/``DoubleGamma`` -> nilearn ``spm``, ``glover`` -> ``glover``, ``fir`` ->
  ``fir`` (``Parameters.fir_delays``); ``+ derivative`` / ``+ dispersion`` suffixes kept.
* ``Model.Options.HighPassFilterCutoffHz`` -> ``drift_model="cosine"``,
  ``high_pass``; without it no drift model (FitLins' default ``--drift-model None``).
* ``Contrasts`` (``ConditionList`` + ``Weights``) and ``DummyContrasts`` (one contrast
  per ``Model.X`` column, or per ``DummyContrasts.Contrasts``) become contrast vectors.
* frame times start at 0 (``slice_time_ref = 0``), as FitLins builds them
  (``np.arange(n_vols) * RepetitionTime``).

Differences from FitLins are listed in the README ("BIDS Stats Models").
"""

from __future__ import annotations

import copy
import fnmatch
import json
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
from bsmschema.models import BIDSStatsModel
from pydantic import ValidationError

from nbdiag.config import RunNode
from nbdiag.core.errors import InputError, SettingsError

#: Transformations nbdiag applies at run level (pybids-transforms-v1 names).
SUPPORTED = ("Factor", "Convolve", "Select", "Rename", "Replace", "Scale", "Threshold")
#: HRF model names -> nilearn ``hrf_model`` base.
HRF_NAMES = {"spm": "spm", "doublegamma": "spm", "glover": "glover", "fir": "fir"}
#: fMRIPrep columns whose first value is undefined, imputed by FitLins with the mean non-zero value.
MEAN_IMPUTED = ("framewise_displacement", "std_dvars", "dvars")


def _bad(path: str, where: str, message: str) -> SettingsError:
    return SettingsError(f"{path}: {where}: {message}")


def _lower_keys(item: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k)[0].lower() + str(k)[1:] if k else k: v for k, v in item.items()}


def _weight(value: Any, path: str, where: str) -> float:
    try:
        return float(Fraction(value)) if isinstance(value, str) else float(value)
    except (ValueError, ZeroDivisionError):
        raise _bad(path, where, f"invalid weight: expected a number or a fraction such as '1/3'; got {value!r}") \
            from None


def _hrf_name(model: str, derivative: bool, dispersion: bool, path: str, where: str) -> str:
    text = str(model).strip()
    base, *suffix = [p.strip() for p in text.split("+")]
    name = HRF_NAMES.get(base.lower())
    if name is None:
        raise _bad(path, where, f"unknown HRF model {model!r}: nbdiag (nilearn) knows spm, DoubleGamma (= spm), "
                                "glover and fir, with optional '+ derivative' / '+ dispersion'")
    parts = [name] + [s.lower() for s in suffix]
    if derivative and "derivative" not in parts:
        parts.append("derivative")
    if dispersion and "dispersion" not in parts:
        parts.append("dispersion")
    if name == "fir" and len(parts) > 1:
        raise _bad(path, where, f"the fir model takes no derivative or dispersion; got {model!r}")
    return " + ".join(parts)


def _validate(data: Any, path: str) -> Any:
    try:
        return BIDSStatsModel.model_validate(data)
    except ValidationError as exc:
        lines = [f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()[:8]]
        raise SettingsError(f"{path}: not a valid BIDS Stats Model (bsmschema):\n  " + "\n  ".join(lines)) from None


def normalise(data: Any) -> tuple[Any, list[str]]:
    """Fill in what pybids (hence FitLins) accepts but the specification's schema requires.

    pybids reads ``Level`` in any case, defaults ``Model.Type`` to ``glm`` and a missing
    contrast ``Test`` to none, and takes scalar ``Input`` values; bsmschema does not. The
    changes are returned as notes so that nothing is changed silently.
    """
    if not isinstance(data, dict) or not isinstance(data.get("Nodes"), list):
        return data, []
    data = copy.deepcopy(data)
    notes: list[str] = []
    if "BIDSModelVersion" not in data:
        data["BIDSModelVersion"] = "1.0.0"
        notes.append("no BIDSModelVersion: read as 1.0.0")
    if isinstance(data.get("Input"), dict):
        for key, value in list(data["Input"].items()):
            if not isinstance(value, list):
                data["Input"][key] = [value]
    levels = {"run": "Run", "session": "Session", "subject": "Subject", "dataset": "Dataset"}
    for node in data["Nodes"]:
        if not isinstance(node, dict):
            continue
        level = node.get("Level")
        if isinstance(level, str) and level.lower() in levels and level != levels[level.lower()]:
            node["Level"] = levels[level.lower()]
        name = node.get("Name", "?")
        if isinstance(node.get("Model"), dict) and "Type" not in node["Model"]:
            node["Model"]["Type"] = "glm"
            notes.append(f"node {name}: no Model.Type: read as 'glm' (pybids' default)")
        if "GroupBy" not in node and str(node.get("Level", "")).lower() == "run":
            node["GroupBy"] = ["run", "subject"]
        for con in node.get("Contrasts") or []:
            if isinstance(con, dict) and "Test" not in con:
                con["Test"] = "t"
                notes.append(f"node {name}: contrast {con.get('Name')!r} has no Test: read as 't'")
        if isinstance(node.get("DummyContrasts"), dict) and "Test" not in node["DummyContrasts"]:
            node["DummyContrasts"]["Test"] = "t"
    return data, notes


def parse_stats_model(data: Any, path: str = "model.json") -> tuple[RunNode, dict[str, Any], list[str]]:
    """Check a BIDS Stats Model and return its run node, model settings and notes.

    Raises
    ------
    SettingsError
        Invalid per bsmschema, no run-level node, an unsupported transformation or HRF
        (named), or contrasts that name nothing in ``Model.X``.
    """
    data, notes = normalise(data)
    bsm = _validate(data, path)
    runs = [n for n in bsm.Nodes if str(n.Level).lower() == "run"]
    if not runs:
        raise _bad(path, "Nodes", f"no node with Level 'Run' (levels: {[n.Level for n in bsm.Nodes]}); nbdiag "
                                  "audits run-level designs")
    node = runs[0]
    if len(runs) > 1:
        notes.append(f"{len(runs)} run-level nodes; nbdiag audits the first, {node.Name!r}")
    others = [n.Name for n in bsm.Nodes if n is not node]
    if others:
        notes.append(f"higher-level nodes not audited by nbdiag: {', '.join(others)}")
    raw = data["Nodes"][bsm.Nodes.index(node)]
    where = f"Nodes[{node.Name}]"
    model = node.Model
    if str(model.Type).lower() != "glm":
        raise _bad(path, f"{where}.Model.Type", f"nbdiag audits 'glm' run models; got {model.Type!r}")
    x = tuple(model.X)
    instructions = _instructions(node, path, where)
    hrf_model, fir_delays, convolved = _hrf(instructions, model, path, where, notes)
    model_values = _model_values(bsm, model, hrf_model, fir_delays, path, where, notes)
    contrasts = _contrasts(node, raw, x, path, where)
    run_node = RunNode(name=node.Name, x=x, instructions=tuple(instructions), hrf_model=hrf_model,
                       fir_delays=fir_delays, convolved=tuple(convolved), contrasts=contrasts, path=path,
                       notes=tuple(notes), model_values=model_values)
    return run_node, model_values, notes


def _instructions(node: Any, path: str, where: str) -> list[dict[str, Any]]:
    """The node's transformations, checked, with lower-cased keys."""
    instructions: list[dict[str, Any]] = []
    if node.Transformations is None:
        return instructions
    for i, item in enumerate(node.Transformations.Instructions):
        if not isinstance(item, Mapping) or "Name" not in item:
            raise _bad(path, f"{where}.Transformations.Instructions[{i}]",
                       f"expected an object with 'Name' and 'Input'; got {item!r}")
        if item["Name"] not in SUPPORTED:
            raise _bad(path, f"{where}.Transformations.Instructions[{i}]",
                       f"transformation {item['Name']!r} is not supported by nbdiag at run level "
                       f"(supported: {', '.join(SUPPORTED)})")
        clean = _lower_keys(item)
        clean["input"] = list(clean.get("input") or [])
        if not clean["input"]:
            raise _bad(path, f"{where}.Transformations.Instructions[{i}] ({item['Name']})", "no 'Input' given")
        instructions.append(clean)
    return instructions


def _hrf(instructions: list[dict[str, Any]], model: Any, path: str, where: str,
         notes: list[str]) -> tuple[str | None, tuple[int, ...] | None, list[str]]:
    """nilearn's ``hrf_model``, ``fir_delays`` and the convolved variables (Convolve, else Model.HRF)."""
    hrf_model: str | None = None
    fir_delays: tuple[int, ...] | None = None
    convolved: list[str] = []
    for i, step in enumerate(instructions):
        if step["name"] == "Convolve":
            name = _hrf_name(step.get("model", "spm"), bool(step.get("derivative")), bool(step.get("dispersion")),
                             path, f"{where}.Transformations.Instructions[{i}] (Convolve)")
            delays = step.get("firDelays", step.get("fir_delays"))
            if hrf_model is not None and name != hrf_model:
                raise _bad(path, f"{where}.Transformations", f"two Convolve models ({hrf_model!r} and {name!r}): "
                                                              "nilearn builds a design with one HRF")
            hrf_model, convolved = name, convolved + step["input"]
            fir_delays = tuple(int(d) for d in delays) if delays is not None else fir_delays
    if model.HRF is not None:
        hrf = model.HRF
        params = dict(hrf.Parameters or {})
        name = _hrf_name(hrf.Model, bool(params.pop("Derivative", False)), bool(params.pop("Dispersion", False)),
                         path, f"{where}.Model.HRF")
        delays = params.pop("fir_delays", params.pop("FIRDelays", None))
        spm = {"PeakDelay": 6, "PeakDispersion": 1, "UndershootDelay": 16, "UndershootDispersion": 1,
               "PeakUndershootRatio": 6}
        if hrf_model is None and params and (
                not name.startswith("spm") or any(k not in spm or params[k] != spm[k] for k in params)):
            raise _bad(path, f"{where}.Model.HRF.Parameters",
                       f"HRF parameters {params} differ from nilearn's {name!r} HRF; nbdiag builds the design "
                       "with nilearn's named HRFs only")
        if hrf_model is None:
            hrf_model, convolved = name, list(hrf.Variables)
            fir_delays = tuple(int(d) for d in delays) if delays is not None else None
            notes.append(f"Model.HRF convolves {list(hrf.Variables)} with {name!r} (FitLins applies only Convolve "
                         "transformations; see README)")
        elif name != hrf_model:
            notes.append(f"Model.HRF ({name!r}) differs from the Convolve transformation ({hrf_model!r}); "
                         "the Convolve transformation is what pybids/FitLins apply")
    if hrf_model == "fir" and not fir_delays:
        raise _bad(path, f"{where}", "the fir HRF needs fir_delays (Convolve FIRDelays or Model.HRF.Parameters)")
    return hrf_model, fir_delays, convolved


def _model_values(bsm: Any, model: Any, hrf_model: str | None, fir_delays: tuple[int, ...] | None, path: str,
                  where: str, notes: list[str]) -> dict[str, Any]:
    """The nilearn-named model settings a run node states (HRF, drift, high-pass, Input selection)."""
    options = model.Options
    high_pass = options.HighPassFilterCutoffHz if options is not None else None
    if options is not None and options.LowPassFilterCutoffHz is not None:
        raise _bad(path, f"{where}.Model.Options.LowPassFilterCutoffHz",
                   "nilearn's first-level design has no low-pass filter; remove it to audit this model")
    model_values: dict[str, Any] = {
        "hrf_model": hrf_model, "drift_model": "cosine" if high_pass else None, "slice_time_ref": 0.0,
        "confounds_strategy": None, "fir_delays": list(fir_delays) if fir_delays else None,
    }
    if high_pass:
        model_values["high_pass"] = float(high_pass)
    else:
        notes.append("no Model.Options.HighPassFilterCutoffHz: no drift model (FitLins' default --drift-model None)")
    for key, values in (bsm.Input or {}).items():
        values = [str(v) for v in values]
        if key.lower() == "task":
            if len(values) != 1:
                raise _bad(path, "Input.Task", f"nbdiag audits one task at a time; got {values}")
            model_values["task_label"] = values[0]
        elif key.lower() == "space":
            model_values["space_label"] = values[0] if len(values) == 1 else None
        elif key.lower() == "subject":
            model_values["sub_labels"] = values
        else:
            raise _bad(path, f"Input.{key}", "nbdiag reads Task, Space and Subject from Input; select other "
                                             "entities with --bids-filter-file")
    return model_values


def _column(name: Any) -> str:
    return "constant" if name == 1 or name == "intercept" else str(name)


def _contrasts(node: Any, raw: Mapping[str, Any], x: tuple, path: str, where: str) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    dummy = node.DummyContrasts
    if dummy is not None and dummy is not False:
        names = list(getattr(dummy, "Contrasts", None) or []) if not isinstance(dummy, bool) else []
        if not names:
            names = [v for v in x if not (isinstance(v, str) and any(c in v for c in "*?["))]
        for name in names:
            out[str("intercept" if name == 1 else name)] = {_column(name): 1.0}
    for i, con in enumerate(node.Contrasts or []):
        conds, weights = list(con.ConditionList), list(con.Weights)
        if weights and isinstance(weights[0], list):
            raise _bad(path, f"{where}.Contrasts[{i}] ({con.Name})",
                       "F contrasts with several rows are not audited; give t contrasts (one row of weights)")
        if len(conds) != len(weights):
            raise _bad(path, f"{where}.Contrasts[{i}] ({con.Name})",
                       f"{len(conds)} conditions but {len(weights)} weights")
        out[con.Name] = {_column(c): _weight(w, path, f"{where}.Contrasts[{i}]") for c, w in zip(conds, weights)}
    return out


def load_stats_model(path: str | Path) -> tuple[RunNode, dict[str, Any], list[str]]:
    """Read and check ``--model model.json`` (see :func:`parse_stats_model`).

    Raises
    ------
    SettingsError
        Missing file, invalid JSON, or any problem :func:`parse_stats_model` finds.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SettingsError(f"--model: file not found: {path}") from None
    except (OSError, ValueError) as exc:
        raise SettingsError(f"{path}: not valid JSON: {exc}") from None
    return parse_stats_model(data, str(path))


# --------------------------------------------------------------------------- #
# per run: variables -> events and confounds
# --------------------------------------------------------------------------- #
@dataclass
class _Sparse:
    rows: pd.DataFrame  # onset, duration, amplitude (object or float), row (index in events.tsv)


def _expand(patterns: list[Any], names: list[str]) -> list[str]:
    out: list[str] = []
    for p in patterns:
        if p == 1:
            continue
        p = str(p)
        hits = [n for n in names if fnmatch.fnmatchcase(n, p)] if any(c in p for c in "*?[") else (
            [p] if p in names else [])
        out += [h for h in hits if h not in out]
    return out


def _variables(events: pd.DataFrame, confounds: pd.DataFrame | None) -> tuple[dict[str, Any], list[str]]:
    variables: dict[str, Any] = {}
    order: list[str] = []
    for col in events.columns:
        if col in ("onset", "duration"):
            continue
        values = events[col]
        keep = values.notna()
        variables[str(col)] = _Sparse(pd.DataFrame({
            "onset": events.loc[keep, "onset"].astype(float), "duration": events.loc[keep, "duration"].astype(float),
            "amplitude": values[keep], "row": np.flatnonzero(keep.to_numpy())}))
        order.append(str(col))
    if confounds is not None:
        for col in confounds.columns:
            if str(col) in variables:
                continue
            variables[str(col)] = confounds[col].astype(float).reset_index(drop=True)
            order.append(str(col))
    return variables, order


def _numeric(series: pd.Series, name: str, step: str, path: Any) -> pd.Series:
    out = pd.to_numeric(series, errors="coerce")
    if out.isna().any() and series.notna().all():
        raise InputError(f"{step} needs numbers in variable {name!r}", file=path, column=name,
                         expected="numeric values", found=repr(series[out.isna()].iloc[0]))
    return out


def design_inputs(node: RunNode, events: pd.DataFrame, confounds: pd.DataFrame | None,
                  events_path: Any = None) -> tuple[pd.DataFrame, pd.DataFrame | None, pd.DataFrame, list[str]]:
    """Apply the run node to one run's events and raw confounds.

    Returns
    -------
    events : DataFrame
        ``onset, duration, trial_type, modulation`` of every convolved sparse variable in X.
    confounds : DataFrame or None
        The dense variables in X, in X order, NaNs imputed as FitLins does.
    unmodeled : DataFrame
        ``onset, duration, trial_type, reason`` of events.tsv rows no X variable models.
    notes : list of str

    Raises
    ------
    InputError
        When X names a variable this run does not have, or a transformation cannot apply.
    """
    variables, order = _variables(events, confounds)
    notes: list[str] = []
    for step in node.instructions:
        variables, order = _apply_step(step, variables, order, events_path)
    table, dense = _x_variables(node, variables, events_path)
    used = set(int(r) for r in table["row"])
    unused = [i for i in range(len(events)) if i not in used]
    unmodeled = pd.DataFrame({
        "onset": events["onset"].to_numpy(float)[unused], "duration": events["duration"].to_numpy(float)[unused],
        "trial_type": (events["trial_type"].astype(str).to_numpy()[unused] if "trial_type" in events
                       else "n/a"),
        "reason": "not in the model's X"})
    table = table.drop(columns="row").sort_values("onset", kind="stable").reset_index(drop=True)
    if len(table) and np.all(table["modulation"].to_numpy(dtype=float) == 1.0):
        table = table.drop(columns="modulation")  # nilearn's default amplitude; same design
    return table, _dense_confounds(dense, notes), unmodeled, notes


def _apply_step(step: Mapping[str, Any], variables: dict[str, Any], order: list[str],
                events_path: Any) -> tuple[dict[str, Any], list[str]]:
    """One transformation (pybids' semantics) on the run's variables; returns them and their order."""
    name, inputs = step["name"], step["input"]
    outputs = list(step.get("output") or [])
    targets = _expand(inputs, list(variables))
    if not targets:
        raise InputError(f"{name} transformation: no variable matches Input {inputs}", file=events_path,
                         expected=f"one of {', '.join(variables)}", found=", ".join(map(str, inputs)))
    if name == "Factor":
        _factor(step, targets, variables, order, events_path)
    elif name == "Select":
        variables = {v: variables[v] for v in targets}
        order = [v for v in order if v in variables]
    elif name == "Rename":
        if len(outputs) != len(inputs):
            raise InputError(f"Rename: {len(inputs)} inputs but {len(outputs)} outputs", file=events_path)
        for old, new in zip(inputs, outputs):
            if old not in variables:
                raise InputError(f"Rename: variable {old!r} does not exist in this run (pybids/FitLins stop "
                                 "here too)", file=events_path, expected=f"one of {', '.join(variables)}",
                                 found=str(old))
            variables[new] = variables.pop(old)
            order[order.index(old)] = new
    elif name == "Replace":
        _replace_values(step, targets, variables, events_path)
    elif name in ("Scale", "Threshold"):
        for k, var in enumerate(targets):
            target = outputs[k] if k < len(outputs) else var
            variables[target] = _scaled(step, var, variables[var], events_path)
            if target not in order:
                order.append(target)
    # Convolve: applied when the design is built (nilearn's HRF on the events)
    return variables, order


def _factor(step: Mapping[str, Any], targets: list[str], variables: dict[str, Any], order: list[str],
            events_path: Any) -> None:
    """Factor: one 0/1 event variable per level of each target (in place)."""
    sep = step.get("sep", ".")
    if step.get("constraint", "none") != "none":
        raise InputError(f"Factor constraint {step.get('constraint')!r} is not supported (only 'none')",
                         file=events_path)
    for var in targets:
        sparse = variables.pop(var)
        idx = order.index(var)
        order.remove(var)
        if not isinstance(sparse, _Sparse):
            raise InputError(f"Factor applies to events.tsv columns; {var!r} is a confound", file=events_path)
        new = []
        for level in np.sort(sparse.rows["amplitude"].astype(str).unique()):
            rows = sparse.rows[sparse.rows["amplitude"].astype(str) == level].copy()
            rows["amplitude"] = 1.0
            variables[f"{var}{sep}{level}"] = _Sparse(rows)
            new.append(f"{var}{sep}{level}")
        order[idx:idx] = new


def _replace_values(step: Mapping[str, Any], targets: list[str], variables: dict[str, Any], events_path: Any) -> None:
    """Replace: map values (or onsets / durations) of each target (in place)."""
    mapping = step.get("replace") or {}
    attribute = step.get("attribute", "value")
    for var in targets:
        value = variables[var]
        if isinstance(value, _Sparse):
            column = {"value": "amplitude", "onset": "onset", "duration": "duration"}.get(attribute)
            if column is None:
                raise InputError(f"Replace attribute {attribute!r}: expected value, onset or duration",
                                 file=events_path)
            rows = value.rows.copy()
            rows[column] = rows[column].replace(mapping)
            variables[var] = _Sparse(rows)
        else:
            variables[var] = value.replace(mapping)


def _scaled(step: Mapping[str, Any], var: str, value: Any, events_path: Any) -> Any:
    """Scale or Threshold of one variable, as a new variable of the same kind (sparse or dense)."""
    name = step["name"]
    data = _numeric(value.rows["amplitude"] if isinstance(value, _Sparse) else value, var, name,
                    events_path).astype(float)
    if name == "Scale":
        demean, rescale = step.get("demean", True), step.get("rescale", True)
        replace_na = step.get("replaceNa", step.get("replace_na"))
        if data.nunique() == 1 and replace_na in (None, "before"):
            raise InputError(f"Scale: variable {var!r} is constant ({data.iloc[0]}); pybids refuses "
                             "to scale it", file=events_path)
        if replace_na == "before":
            data = data.fillna(0.0)
        if demean:
            data = data - data.mean()
        if rescale:
            data = data / data.std()
        if replace_na == "after":
            data = data.fillna(0.0)
    else:
        threshold = float(step.get("threshold", 0.0))
        if not step.get("signed", True):
            threshold, data = abs(threshold), data.abs()
        keep = data >= threshold if step.get("above", True) else data <= threshold
        data = data.where(keep, 0.0)
        if step.get("binarize", False):
            data = data.where(~keep, 1.0)
    if isinstance(value, _Sparse):
        rows = value.rows.copy()
        rows["amplitude"] = data.to_numpy()
        return _Sparse(rows)
    return data


def _x_variables(node: RunNode, variables: dict[str, Any], events_path: Any) -> tuple[pd.DataFrame, dict]:
    """The events table (with the events.tsv ``row`` of each event) and dense columns of ``Model.X``."""
    names = list(variables)
    x_names = _expand(list(node.x), names)
    missing = [str(v) for v in node.x if v != 1 and not any(c in str(v) for c in "*?[") and not _expand([v], names)]
    if missing:
        events_vars = [n for n in names if isinstance(variables[n], _Sparse)]
        raise InputError(f"Model.X names variable(s) this run does not have: {', '.join(missing)}", file=events_path,
                         expected=f"event variables after the transformations ({', '.join(events_vars)}) or "
                                  f"confounds-file columns ({len(names) - len(events_vars)})",
                         found=", ".join(missing))
    convolved = set(_expand(list(node.convolved), names))
    rows, dense = [], {}
    for var in x_names:
        value = variables[var]
        if isinstance(value, _Sparse):
            if var not in convolved:
                raise InputError(f"Model.X variable {var!r} is an event variable that no Convolve (or Model.HRF) "
                                 "convolves: nbdiag builds every event regressor with nilearn's HRF",
                                 file=events_path, expected="the variable in a Convolve Input", found=var)
            amp = _numeric(value.rows["amplitude"], var, "Convolve", events_path).astype(float)
            part = pd.DataFrame({"onset": value.rows["onset"].to_numpy(), "duration": value.rows["duration"].to_numpy(),
                                 "trial_type": var, "modulation": amp.to_numpy(), "row": value.rows["row"].to_numpy()})
            rows.append(part[part["modulation"] != 0])
        else:
            if var in convolved:
                raise InputError(f"Convolve of the dense variable {var!r} is not supported (nilearn convolves "
                                 "events only)", file=events_path)
            dense[var] = value.to_numpy(dtype=float)
    table = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(
        columns=["onset", "duration", "trial_type", "modulation", "row"])
    return table, dense


def _dense_confounds(dense: Mapping[str, np.ndarray], notes: list[str]) -> pd.DataFrame | None:
    """The dense X variables as confounds, first-row NaNs and other NaNs imputed as FitLins/pybids do."""
    if not dense:
        return None
    conf = pd.DataFrame(dense)
    for col in conf.columns:
        first = conf[col].iloc[0]
        if np.isnan(first):
            if col in MEAN_IMPUTED:
                vals = conf[col].to_numpy()
                conf.loc[0, col] = float(np.nanmean(vals[vals != 0]))
                notes.append(f"{col}: first value imputed with the mean non-zero value (as FitLins)")
            elif "derivative1" in col:
                conf.loc[0, col] = 0.0
    if conf.isna().any().any():
        bad = [c for c in conf.columns if conf[c].isna().any()]
        notes.append(f"NaNs in {', '.join(bad)} replaced with 0 (as pybids does)")
        conf = conf.fillna(0.0)
    return conf


__all__ = ["RunNode", "SUPPORTED", "design_inputs", "load_stats_model", "parse_stats_model"]
