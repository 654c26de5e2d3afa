"""Verdict battery (issue 20): are nbdiag's verdicts right on randomized studies nobody wrote?

Usage::

    PYTHONPATH=$PWD python benchmarks/verdict_battery.py --studies 30 --seed 0
    PYTHONPATH=$PWD python benchmarks/verdict_battery.py --studies 60 --seed 1 --family clean --family cue_present
    PYTHONPATH=$PWD python benchmarks/verdict_battery.py --studies 30 --seed 0 -v      # + why each case is wrong

Each study is drawn from one family (below) with random layout parameters: TR 0.7–2.5 s, blocked or
event-related, block and gap lengths, 1–2 runs, noise level, confound set. Every run is simulated as its
fMRIPrep confounds would show it: a ``global_signal`` (scanner units, the mean over the brain of task
response + the family's component + AR(1) noise + slow drift) beside the six motion parameters and, when
fMRIPrep flags them, ``non_steady_state_outlier*`` columns. The design is nilearn's
(``make_first_level_design_matrix``) with the confounds a ``first_level_from_bids`` user would pass (the
sample mask of ``load_confounds`` dropped); nbdiag audits it with ``audit_design``.

Truth comes from real nilearn ``FirstLevelModel`` fits (OLS, ``signal_scaling=0``) of the global signal:
the flaw in place vs fixed (the component removed from the data, or the left-out confound added to the
model). A contrast is *affected* when nilearn's change is at least 1 SE of the contrast (SE from the fit on
the fixed data), *unaffected* below 0.25 SE; in between either verdict is accepted.

Scores per run (a study is right when all its runs are):

(a) on each affected contrast the first warn/fail finding names the true cause; on an unaffected one no
    warn/fail finding names it, and in the families where nothing is wrong (``clean``, ``true_deactivation``,
    ``cue_absent``, ``motion_chance``, ``spikes_harmless``) no contrast has a warn/fail finding and no
    explanation names a measured cause (``… contribute …``);
(b) where the first finding's size is measured (``magnitude_source`` / ``severity_basis`` measured), it is
    within 15 % of nilearn's change;
(c) the run fails only for a measured effect at the fail size (nilearn's change ≥ 0.8 × ``sensitivity_fail``
    SE on some contrast).

Nothing is written to disk; the table and the totals go to stdout. Deterministic for a given ``--seed``.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nbdiag.design.context import DesignContext  # noqa: E402
from nbdiag.explain.audit import audit_design  # noqa: E402
from nbdiag.core.thresholds import Thresholds  # noqa: E402

MOTION = ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")
CONTRASTS = {"zero_back": "zero_back", "two_back": "two_back", "two_back - zero_back": "two_back - zero_back"}
#: families where nothing in the data is wrong: no warn/fail on any contrast, no cause named
QUIET = ("clean", "true_deactivation", "motion_chance")
FAMILIES = ("cue_present", "cue_absent", "nss_flagged", "nss_unflagged", "motion_chance", "motion_locked",
            "spikes_harmless", "spikes_harmful", "true_deactivation", "settling", "tiled", "forum", "clean")
#: the cause a finding names (code, or code + evidence source)
CAUSE_OF_CODE = {
    "nonsteady_unhandled": "nonsteady", "transient_unflagged": "transient", "baseline_short_gaps": "cue",
    "baseline_unmodeled_events": "cue", "confound_task_correlated": "motion_in_model",
    "baseline_edge_concentrated": "settling", "contrast_variance_inflated": "tiled",
    "baseline_scarce": "tiled", "baseline_modeled_rest": "tiled", "scrub_not_applied": "scrub",
}
#: the true cause of each family with a flaw (tiled: a variance cause, no bias to prove)
TRUE_CAUSE = {"cue_present": ("cue",), "nss_flagged": ("nonsteady",), "nss_unflagged": ("transient",),
              "motion_locked": ("motion_left_out",), "spikes_harmful": ("transient",),
              "spikes_harmless": ("transient",), "cue_absent": ("cue",),
              "settling": ("settling", "transient"), "tiled": ("tiled",), "forum": ("nonsteady",)}
AFFECTED_SE, UNAFFECTED_SE, SIZE_TOL = 1.0, 0.25, 0.15


@dataclass
class Run:
    """One simulated run: what nbdiag sees (design, roles, context) and nilearn's proof."""

    design: pd.DataFrame
    roles: dict[str, str]
    context: DesignContext
    proved: dict[str, float]          # nilearn: flawed − fixed, % signal
    se: dict[str, float]              # nilearn: SE of each contrast (fit on the fixed data)
    cvif: dict[str, float] = field(default_factory=dict)


@dataclass
class Study:
    family: str
    seed: int
    params: dict[str, Any]
    runs: list[Run]


# ---------------------------------------------------------------- simulation
def _layout(rng: np.random.Generator, t_r: float, blocked: bool, cue: bool) -> tuple[pd.DataFrame, int, dict]:
    """All events of a run (``zero_back``/``two_back`` + ``INSTRUCTION`` cues + ``fixation``) and its length."""
    rows: list[tuple[float, float, str]] = []
    t = float(rng.uniform(6.0, 20.0))
    rows.append((0.0, t, "fixation"))
    target = float(rng.uniform(280.0, 420.0))
    p: dict[str, Any] = {"design": "blocked" if blocked else "event-related"}
    first = str(rng.choice(["zero_back", "two_back"]))
    other = "two_back" if first == "zero_back" else "zero_back"
    if blocked:
        block, gap, cue_s = (float(rng.uniform(20.0, 45.0)), float(rng.uniform(8.0, 24.0)),
                             float(rng.uniform(2.0, 6.0)))
        p.update(block_s=round(block, 1), fix_s=round(gap, 1), cue_s=round(cue_s, 1))
        i = 0
        while t + cue_s + block + gap <= target or i < 4:
            rows.append((t, cue_s, "INSTRUCTION"))
            t += cue_s
            rows.append((t, block, first if i % 2 == 0 else other))
            t += block
            rows.append((t, gap, "fixation"))
            t += gap
            i += 1
    else:
        dur, cue_s = float(rng.uniform(1.0, 3.0)), float(rng.uniform(1.0, 2.0))
        p.update(trial_s=round(dur, 1), cue_s=round(cue_s, 1))
        while t < target:
            cond = str(rng.choice(["zero_back", "two_back"]))
            if cue:
                rows.append((t, cue_s, "INSTRUCTION"))
                t += cue_s
            rows.append((t, dur, cond))
            t += dur
            isi = float(rng.uniform(2.0, 8.0))
            rows.append((t, isi, "fixation"))
            t += isi
    n = int(np.ceil((t + float(rng.uniform(6.0, 14.0))) / t_r))
    ev = pd.DataFrame(rows, columns=["onset", "duration", "trial_type"])
    return ev, n, p


def _regressors(ev: pd.DataFrame, n: int, t_r: float) -> pd.DataFrame:
    from nilearn.glm.first_level import make_first_level_design_matrix

    return make_first_level_design_matrix(np.arange(n) * t_r, ev, hrf_model="glover", drift_model=None)


def _ar1(rng: np.random.Generator, n: int, sd: float, rho: float) -> np.ndarray:
    e = rng.normal(0.0, sd * np.sqrt(1 - rho ** 2), n)
    out = np.empty(n)
    out[0] = rng.normal(0.0, sd)
    for i in range(1, n):
        out[i] = rho * out[i - 1] + e[i]
    return out


def _box(ev: pd.DataFrame, n: int, t_r: float, cond: str) -> np.ndarray:
    ft = np.arange(n) * t_r
    b = np.zeros(n)
    for o, d in zip(ev.onset[ev.trial_type == cond], ev.duration[ev.trial_type == cond]):
        b[(ft >= o) & (ft < o + max(d, t_r))] = 1.0
    return b


def _fit(design: pd.DataFrame, series: np.ndarray, names: list[str], t_r: float,
         sample_mask: np.ndarray | None = None) -> tuple[dict[str, float], dict[str, float]]:
    """nilearn's OLS estimate (% of the mean, ``signal_scaling=0``) and SE of each contrast for one voxel."""
    import nibabel as nib
    from nilearn.glm.first_level import FirstLevelModel

    y, X = series, design
    if sample_mask is not None:
        y, X = series[sample_mask], design.iloc[sample_mask]
    img = nib.Nifti1Image(np.asarray(y, float).reshape(1, 1, 1, -1), np.eye(4))
    mask = nib.Nifti1Image(np.ones((1, 1, 1), dtype=np.int8), np.eye(4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = FirstLevelModel(mask_img=mask, noise_model="ols", minimize_memory=False, t_r=t_r)
        model.fit(img, design_matrices=[X])
        est, se = {}, {}
        for c in names:
            out = model.compute_contrast(c, output_type="all")
            est[c] = float(out["effect_size"].get_fdata().ravel()[0])
            se[c] = float(np.sqrt(out["effect_variance"].get_fdata().ravel()[0]))
    return est, se


def _cvif(design: pd.DataFrame, names: dict[str, str]) -> dict[str, float]:
    """Contrast VIF by hand: c'(Z'Z)⁻¹c / c'c with Z the centred, unit-norm non-constant columns."""
    cols = [c for c in design.columns if c != "constant"]
    Z = design[cols].to_numpy(float)
    Z = Z - Z.mean(axis=0)
    Z = Z / np.linalg.norm(Z, axis=0)
    inv = np.linalg.pinv(Z.T @ Z)
    out = {}
    for name, expr in names.items():
        c = np.zeros(len(cols))
        parts = [p.strip() for p in expr.replace("-", " - ").split()]
        sign = 1.0
        for tok in parts:
            if tok == "-":
                sign = -1.0
            elif tok in cols:
                c[cols.index(tok)] += sign
                sign = 1.0
        out[name] = float(c @ inv @ c / (c @ c))
    return out


def make_study(family: str, seed: int) -> Study:  # noqa: C901 - one branch per family, read top to bottom
    """Draw one study of ``family`` (deterministic in ``seed``)."""
    rng = np.random.default_rng([seed, FAMILIES.index(family)])
    forum = family == "forum"
    t_r = 0.8 if forum else float(np.round(rng.uniform(0.7, 2.5), 2))
    # cues sit in the gaps before blocks; a cue locked to every trial of an event-related design is
    # indistinguishable from the trial's own response, so the cue families are blocked
    blocked = True if family in ("forum", "tiled", "cue_present", "cue_absent") else bool(rng.random() < 0.6)
    n_runs = int(rng.integers(1, 3))
    noise_sd = float(rng.uniform(0.1, 0.4))                    # % per scan, the global signal's own noise
    high_pass = 0.005 if forum else float(rng.choice([0.005, 0.008, 0.01]))
    motion_in_model = family in ("forum", "motion_chance") or (family not in ("motion_locked",)
                                                               and bool(rng.random() < 0.6))
    ev, n, params = _layout(rng, t_r, blocked, cue=True)
    params.update(t_r=t_r, n_scans=n, n_runs=n_runs, noise_sd=round(noise_sd, 2), high_pass=high_pass,
                  motion_in_model=motion_in_model)
    # what the user models (events.tsv): the cues are missing in the cue families, fixation is never modelled
    # except when the conditions tile the run
    if family in ("cue_present", "cue_absent"):
        modelled = ev[ev.trial_type.isin(["zero_back", "two_back"])]
    elif family == "tiled":
        modelled = ev
    else:
        modelled = ev[ev.trial_type.isin(["zero_back", "two_back", "INSTRUCTION"])]
    modelled = modelled.reset_index(drop=True)
    betas = {"zero_back": float(rng.uniform(0.2, 1.0)), "two_back": float(rng.uniform(0.5, 1.5)),
             "INSTRUCTION": float(rng.uniform(0.3, 1.0)) if family != "cue_absent" else 0.0}
    if family == "true_deactivation":
        betas["zero_back"] = -float(rng.uniform(0.3, 1.0))
        betas["two_back"] = float(rng.choice([-1.0, 1.0])) * float(rng.uniform(0.2, 1.0))
    params["betas"] = {k: round(v, 2) for k, v in betas.items()}
    k_nss = int(rng.integers(1, 5)) if family in ("nss_flagged", "nss_unflagged", "forum") else 0
    e0 = float(rng.uniform(3.0, 60.0)) if k_nss else 0.0
    if k_nss:
        params.update(n_bright=k_nss, excess0_percent=round(e0, 1))
    runs = []
    for r in range(n_runs):
        rr = np.random.default_rng([seed, FAMILIES.index(family), r + 1])
        reg = _regressors(ev, n, t_r)
        task = sum(b * reg[c].to_numpy() for c, b in betas.items() if c in reg.columns)
        level = float(rr.uniform(400.0, 900.0))
        noise = _ar1(rr, n, noise_sd, float(rr.uniform(0.0, 0.5)))
        drift = np.cumsum(rr.normal(0.0, float(rr.uniform(0.002, 0.05)), n))   # slow random-walk drift, % per scan
        # motion: a random walk (mm / rad-like) — task-locked in motion_locked, chance-correlated in
        # motion_chance (an apparent task-shaped drift the data do not carry)
        walk = np.cumsum(rr.normal(0.0, 0.02, (n, 6)), axis=0)
        motion = pd.DataFrame(walk, columns=list(MOTION))
        carried = np.zeros(n)
        col = str(rr.choice(["trans_z", "rot_x", "trans_y"]))
        box2 = _box(ev, n, t_r, "two_back")
        if family == "motion_chance":
            motion[col] = motion[col] + float(rr.uniform(0.1, 0.4)) * box2
        if family == "motion_locked":
            amp = float(rr.uniform(0.1, 0.4))
            motion[col] = amp * box2 + rr.normal(0.0, 0.03, n)
            carried = float(rr.uniform(0.5, 2.0)) * motion[col].to_numpy()
            params.update(locked_column=col, locked_mm=round(amp, 2))
        flaw = np.zeros(n)
        if k_nss:
            flaw[:k_nss] = e0 * np.exp(-np.arange(k_nss) / 1.5)
        if family in ("spikes_harmless", "spikes_harmful"):
            m = int(rr.integers(2, 7))
            vols = rr.choice(np.arange(10, n - 5), size=m, replace=False)
            size = rr.uniform(0.8, 1.5, m) if family == "spikes_harmless" else rr.uniform(10.0, 40.0, m)
            flaw[vols] = size
            params.update(n_spikes=m)
        if family == "settling":
            amp, tau = float(rng.uniform(1.0, 4.0)), float(rng.uniform(8.0, 30.0))
            flaw = amp * np.exp(-np.arange(n) * t_r / tau)
            params.update(settle_percent=round(amp, 2), tau_s=round(tau, 1))
        if family == "cue_present":
            flaw = betas["INSTRUCTION"] * reg["INSTRUCTION"].to_numpy()
            task = task - flaw
        clean_pct = 100.0 + task + carried + noise + drift
        gs = level * (clean_pct + flaw) / 100.0                    # scanner units
        gs_fixed = level * clean_pct / 100.0
        # confounds the model gets; the strategy and the flags fMRIPrep wrote
        flagged = family in ("nss_flagged", "forum")
        raw_cols = list(MOTION) + ["global_signal", "csf", "white_matter", "framewise_displacement"] + (
            [f"non_steady_state_outlier{i:02d}" for i in range(k_nss)] if flagged else [])
        strategy: tuple[str, ...] | None = (("motion", "non_steady_state") if motion_in_model else
                                            ("high_pass", "non_steady_state"))
        add = motion if motion_in_model else None
        from nilearn.glm.first_level import make_first_level_design_matrix
        design = make_first_level_design_matrix(np.arange(n) * t_r, modelled, hrf_model="glover",
                                                drift_model="cosine", high_pass=high_pass, add_regs=add)
        roles = {c: ("constant" if c == "constant" else "drift" if c.startswith("drift_") else
                     "confound" if c in MOTION else "task") for c in design.columns}
        signals = {"global_signal": gs, **{c: motion[c].to_numpy() for c in MOTION}}
        ctx = DesignContext(t_r=t_r, events=modelled, high_pass=high_pass, drift_model="cosine",
                            nonsteady_volumes=tuple(range(k_nss)) if flagged else (),
                            raw_confound_columns=tuple(raw_cols), confounds_strategy=strategy,
                            measured_signals=signals, noise_model="ar1", n_scans_total=n)
        names = list(CONTRASTS)
        est, _ = _fit(design, gs, names, t_r)
        if family == "motion_locked":        # fixed: the left-out motion column added to the model
            fixed, se = _fit(design.assign(**{col: motion[col].to_numpy()}), gs, names, t_r)
        elif family == "motion_chance":      # fixed: the chance-correlated motion left out
            fixed, se = _fit(design.drop(columns=list(MOTION)), gs, names, t_r)
        else:
            fixed, se = _fit(design, gs_fixed, names, t_r)
        proved = {c: est[c] - fixed[c] for c in names}
        runs.append(Run(design, roles, ctx, proved, se, _cvif(design, CONTRASTS) if family == "tiled" else {}))
    return Study(family, seed, params, runs)


# ---------------------------------------------------------------- scoring
def cause_of(f: Any) -> str:
    """The cause a finding names."""
    src = str(f.evidence.get("source") or "")
    if src.startswith("confound_left_out:"):
        return "motion_left_out"
    if f.code == "sensitive_unmodeled_signal":
        fam = src.split(":", 1)[0]
        return {"nonsteady": "nonsteady", "transient": "transient", "pre_block": "cue", "short_gaps": "cue",
                "unmodeled": "cue", "run_start": "settling", "confound": "motion_in_model"}.get(fam, f"signal:{fam}")
    return CAUSE_OF_CODE.get(f.code, f.code)


def _measured_size(f: Any) -> float | None:
    ev = f.evidence
    if ev.get("severity_basis") == "measured_part" and ev.get("measured_bias_percent") is not None:
        return float(ev["measured_bias_percent"])
    if str(ev.get("magnitude_source") or "").startswith("measured"):
        v = ev.get("bias_percent")
        return None if v is None else float(v)
    for e in ev.get("sensitivity") or []:
        if e.get("source") == ev.get("source") and e.get("measured_bias_percent") is not None:
            return float(e["measured_bias_percent"])
    return None


def score_run(family: str, run: Run, audit: Any, th: Thresholds) -> tuple[bool, str, str, list[str], bool]:
    """(right, expected, got, reasons, quiet) for one run; expected/got list the contrasts in order; quiet: no
    contrast is affected (nothing to find)."""
    why: list[str] = []
    quiet = True
    truth = TRUE_CAUSE.get(family, ())
    exp_txt, got_txt = [], []
    for name in CONTRASTS:
        first = next((f for f in audit.findings if f.contrast == name and f.severity in ("warn", "fail")), None)
        got = cause_of(first) if first is not None else "none"
        ratio = abs(run.proved[name]) / run.se[name] if run.se[name] > 0 else 0.0
        if family == "tiled":
            affected = run.cvif.get(name, 0.0) >= th.cvif_fail
            unaffected = run.cvif.get(name, 0.0) < th.cvif_warn
        elif family in QUIET:
            affected, unaffected = False, True
        else:
            affected, unaffected = ratio >= AFFECTED_SE, ratio < UNAFFECTED_SE
        quiet &= unaffected
        expected = "/".join(truth) if affected else "none" if unaffected else f"{'/'.join(truth)}|none"
        exp_txt.append(expected)
        got_txt.append(got + (f"({first.severity[0]})" if first is not None else ""))
        if affected and got not in truth:
            why.append(f"{name}: expected {'/'.join(truth)} first ({ratio:.1f} SE), got {got}"
                       + (f" [{first.title}]" if first is not None else ""))
        if unaffected and first is not None:
            if True:
                why.append(f"{name}: expected no warn/fail ({ratio:.2f} SE), got {got} {first.severity}: "
                           f"{first.message[:160]}")
        if not affected and not unaffected and first is not None and got not in truth:
            why.append(f"{name}: gray zone ({ratio:.2f} SE) but got another cause {got}")
        if unaffected and " contribute " in (audit.contrasts[name].get("explanation") or ""):
            why.append(f"{name}: the answer names a cause on a quiet study")
        # (b) measured size within 15 %
        if affected and first is not None and got in truth and family != "tiled":
            size = _measured_size(first)
            if size is not None and abs(size - run.proved[name]) > SIZE_TOL * abs(run.proved[name]):
                why.append(f"{name}: measured {size:+.3g} % vs nilearn {run.proved[name]:+.3g} %")
    # (c) run status
    worst = max((abs(run.proved[c]) / run.se[c] for c in CONTRASTS if run.se[c] > 0), default=0.0)
    if audit.status == "fail" and (family in QUIET or worst < 0.8 * th.sensitivity_fail):
        fails = [f"{f.code}({f.contrast})" for f in audit.findings if f.severity == "fail"]
        why.append(f"run fails ({', '.join(fails[:4])}) but nilearn's largest change is {worst:.2f} SE")
    if family == "clean" and audit.status != "pass":
        warns = [f"{f.code}({f.contrast})" for f in audit.findings if f.severity in ("warn", "fail")]
        why.append(f"clean run is {audit.status}: {', '.join(warns[:4])}")
    return not why, " ".join(exp_txt), " ".join(got_txt), why, quiet


def run_battery(n_studies: int, seed: int, families: tuple[str, ...] = FAMILIES, verbose: bool = False,
                out=sys.stdout) -> dict[str, Any]:
    """Draw ``n_studies`` studies (families cycled in a seeded order), audit and score them."""
    th = Thresholds()
    rng = np.random.default_rng(seed)
    order = list(rng.permutation(len(families)))
    rows = []
    for i in range(n_studies):
        fam = families[order[i % len(families)]]
        study_seed = int(seed * 100_000 + i)
        study = make_study(fam, study_seed)
        ok, exp, got, why, quiet = True, [], [], [], True
        for run in study.runs:
            audit = audit_design(run.design, run.roles, run.context, CONTRASTS, th)
            r_ok, e, g, w, q = score_run(fam, run, audit, th)
            ok &= r_ok
            quiet &= q
            exp.append(e)
            got.append(g)
            why += w
            st = audit.status
        rows.append({"family": fam, "seed": study_seed, "expected": exp[0], "got": got[0], "right": ok,
                     "why": why, "status": st, "params": study.params,
                     "quiet": quiet})
    print(f"{'family':18s} {'seed':>8s}  {'expected (zero_back two_back diff)':40s} {'got':40s} right", file=out)
    for r in rows:
        print(f"{r['family']:18s} {r['seed']:8d}  {r['expected']:40s} {r['got']:40s} {'yes' if r['right'] else 'NO'}",
              file=out)
        if verbose and not r["right"]:
            print(f"    params: {r['params']}", file=out)
            for w in r["why"]:
                print(f"    - {w}", file=out)
    by = defaultdict(lambda: [0, 0])
    for r in rows:
        by[r["family"]][0] += r["right"]
        by[r["family"]][1] += 1
    total = sum(r["right"] for r in rows)
    quiet = [r for r in rows if r["quiet"]]
    fp = sum(1 for r in quiet if not r["right"])
    print("", file=out)
    for fam in families:
        if fam in by:
            print(f"  {fam:18s} {by[fam][0]}/{by[fam][1]}", file=out)
    print(f"right: {total}/{len(rows)} ({100 * total / max(len(rows), 1):.0f} %); studies with nothing to find (clean, true deactivation, or no contrast moved by ≥ 0.25 SE) flagged: "
          f"{fp}/{len(quiet)}", file=out)
    return {"rows": rows, "right": total, "n": len(rows), "by_family": dict(by), "quiet_wrong": fp,
            "n_quiet": len(quiet)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--studies", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--family", action="append", choices=FAMILIES, help="only these families (repeatable)")
    ap.add_argument("-v", "--verbose", action="store_true", help="print why each wrong case is wrong")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    run_battery(a.studies, a.seed, tuple(a.family) if a.family else FAMILIES, a.verbose)
    print(f"({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
