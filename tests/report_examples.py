"""A realistic fake run record (docs/record.md) for tests, benchmarks and previews.

This module builds n-back run records the way the audit pipeline writes them, so the
reports can be rendered and tested before (and independently of) the real pipeline.
It is *test data*: the numbers are computed here with plain numpy, never by the
report code, which only renders what a record holds.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["example_run", "example_error_record", "finding", "sensitivity", "contrast", "minimal_record"]

_OKABE = None


def _events(n_scans: int, t_r: float, zero_name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Blocks: INSTRUCTION (4 s, unmodelled) -> condition (24 s) -> fixation (12 s)."""
    modeled, unmodeled = [], []
    t = 6.0
    k = 0
    end = n_scans * t_r - 30
    while t < end:
        unmodeled.append({"onset": t, "duration": 4.0, "trial_type": "INSTRUCTION",
                          "reason": "dropped by --events-drop"})
        t += 4.0
        name = zero_name if k % 2 == 0 else "two_back"
        modeled.append({"onset": t, "duration": 24.0, "trial_type": name})
        t += 24.0 + 12.0
        k += 1
    return pd.DataFrame(modeled), pd.DataFrame(unmodeled)


def _entry(source: str, label: str, bias: float, sd: float) -> dict[str, Any]:
    """A sensitivity entry (docs/record.md) for an assumed size in % signal, σ for 1 % white noise."""
    return {"source": source, "label": label, "bias": bias, "bias_percent": bias, "bias_sd": bias / sd,
            "sd_percent": sd, "sd_source": None, "noise_sd_percent": None, "magnitude_source": None,
            "direction": "lowers" if bias < 0 else "inflates", "unit": "% signal", "typical": 1.0, "cause": None,
            "structural": None, "severity": None, "severity_basis": None, "hypothesis": None,
            "rank_sd": abs(bias / sd)}


def example_run(  # noqa: C901
    subject: str = "01",
    variant: str = "nortdur",
    run: str = "01",
    *,
    session: str | None = "1",
    n_scans: int = 300,
    t_r: float = 0.8,
    hostile: bool = False,
    rtdur: bool = False,
    seed: int = 0,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Return ``(record, design)`` for one fake n-back run.

    Parameters
    ----------
    subject, variant, run, session : str
        BIDS labels of the run.
    n_scans : int
        Number of volumes.
    t_r : float
        Repetition time in seconds.
    hostile : bool
        Name the 0-back condition ``<img src=x onerror=alert(1)>`` to test escaping.
    rtdur : bool
        Add an ``RTDur`` regressor (the ConsDurRTDur variant).
    seed : int
        Seed of the fake motion confounds.

    Returns
    -------
    record : dict
        JSON-ready record following docs/record.md.
    design : DataFrame
        Design matrix indexed by frame times.
    """
    from nilearn.glm.first_level import make_first_level_design_matrix

    rng = np.random.default_rng(seed)
    zero = "<img src=x onerror=alert(1)>" if hostile else "zero_back"
    frame_times = np.arange(n_scans) * t_r
    modeled, unmodeled = _events(n_scans, t_r, zero)
    ev = modeled.copy()
    if rtdur:
        rt = modeled.copy()
        rt["trial_type"] = "RTDur"
        rt["modulation"] = 1.0
        rt["duration"] = 0.6 * rt["duration"]
        ev["modulation"] = 1.0
        ev = pd.concat([ev, rt], ignore_index=True)
    n_conf = 6
    motion = np.cumsum(rng.normal(0, 0.02, (n_scans, n_conf)), axis=0)
    motion[:, 0] += 0.05 * np.convolve((frame_times % 80 < 28).astype(float), np.ones(5) / 5, "same")
    conf_names = ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]
    design = make_first_level_design_matrix(
        frame_times, ev, hrf_model="spm", drift_model="cosine", high_pass=0.01,
        add_regs=motion, add_reg_names=conf_names,
    )
    cols = list(design.columns)
    tasks = [c for c in cols if c in (zero, "two_back", "RTDur")]
    drifts = [c for c in cols if c.startswith("drift_")]

    def role(c: str) -> str:
        if c in tasks:
            return "task"
        if c in drifts:
            return "drift"
        if c == "constant":
            return "constant"
        return "confound"

    X = design.to_numpy()
    pinv = np.linalg.pinv(X)
    nss = [0, 1, 2, 3]

    # scan classes
    classes = []
    for i, t in enumerate(frame_times):
        cls = None
        if i in nss:
            cls = "nonsteady"
        for _, e in modeled.iterrows():
            if e.onset <= t < e.onset + e.duration:
                cls = cls or f"condition:{e.trial_type}"
        for _, e in unmodeled.iterrows():
            if e.onset <= t < e.onset + e.duration:
                cls = cls or "unmodeled_event"
        if cls is None:
            edge = t < 0.1 * n_scans * t_r or t >= 0.9 * n_scans * t_r
            cls = "run_edge" if edge else "fixation"
        classes.append(cls)
    classes_arr = np.array(classes)

    # baseline epochs (contiguous non-condition runs)
    epochs = []
    i = 0
    while i < n_scans:
        if classes[i].startswith("condition:"):
            i += 1
            continue
        j = i
        while j < n_scans and classes[j] == classes[i]:
            j += 1
        kind = classes[i]
        contains = ["INSTRUCTION"] if kind == "unmodeled_event" else []
        epochs.append({"start": float(frame_times[i]), "duration": float((j - i) * t_r),
                       "n_scans": int(j - i), "kind": kind, "contains": contains,
                       "position": "start" if i == 0 else ("end" if j == n_scans else "middle")})
        i = j
    base_mask = ~np.char.startswith(classes_arr.astype(str), "condition:")

    exprs = {zero: zero, "two_back": "two_back", f"two_back - {zero}": f"two_back - {zero}"}
    contrasts: dict[str, Any] = {}
    findings: list[dict[str, Any]] = []
    for name, expr in exprs.items():
        c = np.zeros(len(cols))
        if name == f"two_back - {zero}":
            c[cols.index("two_back")] = 1
            c[cols.index(zero)] = -1
            kind = "differential"
        else:
            c[cols.index(name)] = 1
            kind = "single"
        w = pinv.T @ c
        var = float(c @ np.linalg.pinv(X.T @ X) @ c)
        neg = np.clip(w, None, 0)
        pos = np.clip(w, 0, None)
        keys = sorted(set(classes))
        negc = {k: float(neg[classes_arr == k].sum() / neg.sum()) if neg.sum() else 0.0 for k in keys}
        posc = {k: float(pos[classes_arr == k].sum() / pos.sum()) if pos.sum() else 0.0 for k in keys}
        edge_n = max(1, int(0.1 * n_scans))
        edge_share = float((neg[:edge_n].sum() + neg[-edge_n:].sum()) / neg.sum()) if neg.sum() else 0.0
        sd = np.sqrt(var)
        m_nss = np.zeros(n_scans)
        m_nss[nss] = np.exp(-np.arange(4) / 1.5)
        m_unm = (classes_arr == "unmodeled_event").astype(float)
        bias_nss = float(w @ m_nss)
        bias_unm = float(w @ m_unm) * 0.5
        sens = [
            _entry("nonsteady", "1 % extra signal decaying over the 4 flagged volumes", bias_nss, sd),
            _entry("unmodeled_event", "0.5 % response during INSTRUCTION screens", bias_unm, sd),
            _entry("run_start", "1 % exponential settling over the first 20 s", float(w @ np.exp(-frame_times / 20.0)),
                   sd),
        ]
        codes: list[str] = []
        if kind == "single":
            ff = [
                {"code": "baseline_unmodeled_events", "severity": "fail", "contrast": name,
                 "title": "Unmodelled INSTRUCTION screens sit in the baseline",
                 "message": f"{negc.get('unmodeled_event', 0):.0%} of the negative weight of {name} falls on "
                            "INSTRUCTION screens that are listed in events.tsv but not modelled.",
                 "evidence": {"share_negative_weight": negc.get("unmodeled_event", 0),
                              "trial_types": ["INSTRUCTION"]},
                 "score": 0.9, "fix": "Model INSTRUCTION as its own condition (do not drop it from events.tsv)."},
                {"code": "nonsteady_unhandled", "severity": "fail", "contrast": name,
                 "title": "Non-steady-state volumes are left in the model",
                 "message": f"The 4 bright first volumes bias {name} by {sens[0]['bias_sd']:+.2f} standard deviations.",
                 "evidence": {"volumes": nss, "bias_sd": sens[0]["bias_sd"]},
                 "score": 0.7, "fix": "Pass sample_masks to FirstLevelModel.fit or drop the first 4 volumes."},
                {"code": "baseline_edge_concentrated", "severity": "warn", "contrast": name,
                 "title": "Baseline weight concentrated at the run edges",
                 "message": f"{edge_share:.0%} of the negative weight lies in the first/last 10 % of the run.",
                 "evidence": {"edge_share": edge_share}, "score": 0.3,
                 "fix": "Add fixation blocks in the middle of the run."},
            ]
            findings += ff
            codes = [f["code"] for f in ff]
            expl = (f"{name} compares {name} blocks with everything not modelled. "
                    f"{negc.get('unmodeled_event', 0):.0%} of its negative weight sits on INSTRUCTION screens "
                    f"and {negc.get('nonsteady', 0):.0%} on the first 4 volumes: any signal there pushes "
                    f"{name} down.")
        else:
            expl = (f"{name} compares the two conditions directly; unmodelled baseline periods carry "
                    f"{sum(v for k, v in negc.items() if not k.startswith('condition:')):.0%} of its negative weight.")
        contrasts[name] = {
            "expression": expr,
            "vector": dict(zip(cols, c.tolist())),
            "kind": kind,
            "estimable": True,
            "variance": var,
            "efficiency": 1.0 / var,
            "cvif": float(3.2 + rng.random() * 6) if kind == "single" else 1.4,
            "effect_required_pct": None,
            "drift_r2": 0.31 if kind == "single" else 0.04,
            "weights": w.tolist(),
            "baseline_composition": {"negative": negc, "positive": posc, "edge_share": edge_share},
            "sensitivity": sens,
            "explanation": expl,
            "findings": codes,
        }
    run_findings = [
        {"code": "nonsteady_unhandled", "severity": "fail", "contrast": None,
         "title": "Non-steady-state volumes are left in the model",
         "message": "load_confounds returned a sample mask removing volumes 0-3; first_level_from_bids drops it.",
         "evidence": {"volumes": nss}, "score": 0.7,
         "fix": "Pass sample_masks to FirstLevelModel.fit or drop the first 4 volumes."},
        {"code": "vif_high", "severity": "warn", "contrast": None,
         "title": f"VIF of {zero} is high",
         "message": f"VIF of {zero} is 6.1 (warn ≥ 5).",
         "evidence": {"column": zero, "vif": 6.1}, "score": 0.2, "fix": "Add more baseline between blocks."},
    ]
    findings = run_findings + findings

    def r2_on(target: np.ndarray, others: list[str]) -> float:
        A = design[others].to_numpy()
        beta, *_ = np.linalg.lstsq(A, target, rcond=None)
        res = target - A @ beta
        tc = target - target.mean()
        return float(1 - res @ res / (tc @ tc))

    task_conf = tasks + conf_names
    corr = np.corrcoef(design[task_conf].to_numpy().T)
    vif = {}
    for c_ in task_conf:
        others = [o for o in task_conf if o != c_] + ["constant"]
        r2 = r2_on(design[c_].to_numpy(), others)
        vif[c_] = 1.0 / max(1e-9, 1 - r2)
    vif[zero] = 6.1
    freqs = np.fft.rfftfreq(n_scans, t_r)[:256]
    power = {t: (np.abs(np.fft.rfft(design[t] - design[t].mean())) ** 2)[:256].tolist() for t in tasks}

    record: dict[str, Any] = {
        "nbdiag_version": "0.1.0",
        "nilearn_version": "0.14.1",
        "run": {
            "subject": subject, "session": session, "task": "nback", "run": run,
            "entities": {k: v for k, v in {"sub": subject, "ses": session, "task": "nback", "run": run}.items() if v},
            "prefix": "_".join(f"{k}-{v}" for k, v in
                               {"sub": subject, "ses": session, "task": "nback", "run": run}.items() if v),
            "files": {"bold": f"/data/derivatives/sub-{subject}/func/sub-{subject}_task-nback_run-{run}_bold.nii.gz",
                      "events": f"/data/bids/sub-{subject}/func/sub-{subject}_task-nback_run-{run}_events.tsv",
                      "confounds": f"/data/derivatives/sub-{subject}/func/sub-{subject}_task-nback_run-{run}_desc-confounds_timeseries.tsv"},
        },
        "variant": variant,
        "settings": {
            "t_r": {"value": t_r, "source": "derivatives sidecar (RepetitionTime)"},
            "slice_time_ref": {"value": 0.0, "source": "default"},
            "n_scans": {"value": n_scans, "source": "image header"},
            "model": {"hrf_model": "spm", "drift_model": "cosine", "high_pass": 0.01,
                      "confounds_strategy": ["motion", "non_steady_state"], "confounds_motion": "basic"},
            "events": {"rename": {}, "drop": ["INSTRUCTION"], "transform": "rtdur" if rtdur else None,
                       "rt_column": "response_time"},
            "variant": variant, "measure": "confounds",
            "contrasts": exprs,
            "thresholds": {}, "limits": {},
        },
        "notes": [],
        "design": {
            "tsv": "design.tsv", "n_scans": n_scans, "n_columns": len(cols),
            "rank": int(np.linalg.matrix_rank(X)),
            "columns": [{"name": c_, "role": role(c_), "source": "events" if c_ in tasks else "confounds"}
                        for c_ in cols],
            "frame_times": frame_times.tolist(),
            "nilearn_warnings": [],
            "regularized": False,
            "sample_mask": {"returned_by_load_confounds": list(range(4, n_scans)), "applied": False,
                            "n_removed": 4, "removed_volumes": nss},
        },
        "events": {"modeled": modeled.to_dict("records"), "unmodeled": unmodeled.to_dict("records")},
        "diagnostics": {
            "collinearity": {"vif": vif, "correlation": {"columns": task_conf, "matrix": corr.tolist()},
                             "condition_number": 14.2, "rank": int(np.linalg.matrix_rank(X)),
                             "n_columns": len(cols), "regularized": False, "correlation_pairs": [],
                             "correlation_tiers": {}, "condition_blocks": {}},
            "drift": {"drift_columns": drifts, "cosine_confounds": [],
                      "periods_s": {d: 2 * n_scans * t_r / (i + 1) for i, d in enumerate(drifts)},
                      "r2_task": {t: r2_on(design[t].to_numpy(), drifts + ["constant"]) for t in tasks},
                      "r2_contrast": {}, "recommended_cutoff_s": 128.0, "recommended_high_pass_hz": 1 / 128.0,
                      "fsl_cutoffcalc_s": None, "current_cutoff_s": 100.0,
                      "variance_kept": {t: 0.9 for t in tasks},
                      "spectra": {"freqs_hz": freqs.tolist(), "power": power}},
            "confounds": {"r2_task": {t: r2_on(design[t].to_numpy(), conf_names + ["constant"]) for t in tasks},
                          "nonsteady": {"columns_in_file": [f"non_steady_state_outlier0{i}" for i in range(4)],
                                        "volumes": nss, "modeled_as_regressors": False, "masked": False,
                                        "handled": False},
                          "scrub": {"requested": False, "volumes": [], "applied": False},
                          "dof": n_scans - int(np.linalg.matrix_rank(X))},
            "baseline": {"fraction": float(base_mask.mean()), "n_scans": int(base_mask.sum()),
                         "epochs": epochs, "scan_classes": classes, "modeled_rest": [],
                         "n_long_epochs": sum(e["kind"] in ("fixation", "run_edge") and e["duration"] >= 16
                                              for e in epochs)},
        },
        "contrasts": contrasts,
        "whatif": [{"fix": "apply sample mask", "code": "nonsteady_unhandled",
                    "contrasts": {zero: {"max_abs_bias_sd_before": abs(contrasts[zero]["sensitivity"][0]["bias_sd"]),
                                         "max_abs_bias_sd_after": 0.02,
                                         "variance_before": contrasts[zero]["variance"],
                                         "variance_after": contrasts[zero]["variance"] * 1.01}}}],
        "findings": findings,
        "status": "fail",
        "error": None,
    }
    return json.loads(json.dumps(record)), design  # JSON values only (numpy floats become floats)


def example_error_record(subject: str = "01", run: str = "02", variant: str = "nortdur") -> dict[str, Any]:
    """Return a record of a run that could not be audited (``status: error``)."""
    prefix = f"sub-{subject}_task-nback_run-{run}"
    return {
        "nbdiag_version": "0.1.0", "nilearn_version": "0.14.1",
        "run": {"subject": subject, "session": None, "task": "nback", "run": run,
                "entities": {"sub": subject, "task": "nback", "run": run}, "prefix": prefix,
                "files": {"events": f"/data/bids/sub-{subject}/func/{prefix}_events.tsv"}},
        "variant": variant,
        "settings": {"t_r": {"value": 0.8, "source": "sidecar"}, "slice_time_ref": None, "n_scans": None,
                     "variant": variant, "measure": "confounds", "model": {}, "events": {}, "contrasts": None,
                     "thresholds": {}, "limits": {}},
        "notes": [],
        "findings": [{"code": "events_invalid", "severity": "error", "contrast": None,
                      "title": "events.tsv is invalid", "message": "onset is not a number in row 3",
                      "evidence": {"row": 3}, "score": 1.0, "fix": "Fix the onset value."}],
        "status": "error",
        "error": {"message": "column 'onset' must be numeric", "file": f"{prefix}_events.tsv",
                  "column": "onset", "row": 3, "expected": "a number", "found": "'n/a<script>'",
                  "code": "events_invalid"},
    }


# --------------------------------------------------------------------------- small complete records
def finding(code: str, severity: str, contrast: str | None = None, *, title: str = "", message: str = "",
            evidence: dict[str, Any] | None = None, score: float | None = None,
            fix: str | None = None) -> dict[str, Any]:
    """A finding as a record writes it (every field of docs/record.md, the ones not given null/empty)."""
    return {"code": code, "severity": severity, "title": title, "message": message, "evidence": evidence or {},
            "contrast": contrast, "score": score, "fix": fix}


def sensitivity(source: str, **fields: Any) -> dict[str, Any]:
    """A contrast's sensitivity entry: ``fields`` over nulls for every field the schema requires."""
    entry: dict[str, Any] = {k: None for k in (
        "label", "bias", "bias_percent", "bias_sd", "sd_percent", "sd_source", "noise_sd_percent",
        "magnitude_source", "direction", "unit", "typical", "cause", "structural", "severity", "severity_basis",
        "hypothesis", "rank_sd")}
    entry["label"] = source
    return {"source": source, **entry, **fields}


def contrast(expression: str, **fields: Any) -> dict[str, Any]:
    """A contrast entry: ``fields`` over an estimable contrast with no numbers and no findings."""
    return {"expression": expression, "estimable": True, "findings": [], **fields}


def minimal_record(prefix: str = "sub-01_task-t_run-1", variant: str = "v", status: str = "pass", *,
                   findings: list[dict[str, Any]] | None = None, contrasts: dict[str, Any] | None = None,
                   thresholds: dict[str, float] | None = None, **parts: Any) -> dict[str, Any]:
    """A complete record (it reads with ``RunRecord.from_json``) holding only what a test is about:
    the run's prefix, variant, status, findings, contrasts, thresholds, and any other top-level ``parts``."""
    entities = dict(p.split("-", 1) for p in prefix.split("_") if "-" in p)
    record: dict[str, Any] = {
        "nbdiag_version": "0.1.0", "nilearn_version": "0.14.1",
        "run": {"subject": entities.get("sub", "01"), "session": entities.get("ses"), "task": entities.get("task"),
                "run": entities.get("run"), "entities": entities, "prefix": prefix, "files": {}},
        "variant": variant,
        "settings": {"t_r": None, "slice_time_ref": None, "n_scans": None, "variant": variant, "measure": "confounds",
                     "model": {}, "events": {}, "contrasts": None, "thresholds": thresholds or {}, "limits": {}},
        "notes": [],
    }
    if contrasts is not None:
        record["contrasts"] = contrasts
    record.update(parts)
    record["findings"] = findings or []
    record["status"] = status
    return record
