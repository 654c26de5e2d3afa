"""Group report ``OUTPUT_DIR/group.html``: renders the group tables only."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from nbdiag.findings import severity_rank

__all__ = ["render_group_report", "plot_metric_distributions", "plot_findings_heatmap", "plot_check_counts"]

_LABEL_OK = re.compile(r"^[A-Za-z0-9]+$")
_SEV_LEVELS = ["none", "info", "warn", "fail", "error"]
#: Most rows drawn in the runs × findings heatmap.
MAX_HEATMAP_ROWS = 120


def _run_label(row: Mapping[str, Any]) -> str:
    parts = [f"sub-{row.get('subject')}"]
    for key, ent in (("session", "ses"), ("task", "task"), ("acq", "acq"), ("run", "run")):
        v = row.get(key)
        if v is not None and not (isinstance(v, float) and np.isnan(v)) and v != "":
            parts.append(f"{ent}-{v}")
    return "_".join(parts) + f" [{row.get('variant')}]"


def findings_matrix(records: Sequence[Mapping[str, Any]], rt: pd.DataFrame) -> pd.DataFrame:
    """Runs × finding codes: worst severity rank (0 none, 1 info, 2 warn, 3 fail, 4 error).

    ``rt`` is the group runs table of the same records, in the same order.
    """
    labels = [_run_label(r) for r in rt.to_dict("records")]
    codes: list[str] = []
    for rec in records:
        for f in rec.get("findings") or []:
            if isinstance(f, Mapping) and f.get("code") not in codes:
                codes.append(str(f.get("code")))
    m = np.zeros((len(records), len(codes)), dtype=int)
    for i, rec in enumerate(records):
        for f in rec.get("findings") or []:
            if not isinstance(f, Mapping):
                continue
            try:
                r = severity_rank(f.get("severity")) + 1
            except ValueError:
                continue
            j = codes.index(str(f.get("code")))
            m[i, j] = max(m[i, j], r)
    return pd.DataFrame(m, index=labels, columns=codes)


def plot_findings_heatmap(matrix: pd.DataFrame, ax: Any = None) -> Any:
    """Heatmap of runs × finding codes coloured by the worst severity."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    from matplotlib.colors import BoundaryNorm, ListedColormap

    from nbdiag.report.figures import SEVERITY_COLORS, _RC, _label_in, _margins

    cmap = ListedColormap(["#f2f2f2", SEVERITY_COLORS["info"], SEVERITY_COLORS["warn"],
                           SEVERITY_COLORS["fail"], "#222222"])
    norm = BoundaryNorm(np.arange(-0.5, 5.5), cmap.N)
    with plt.rc_context(_RC):
        nr, nc = matrix.shape
        lab = _label_in(matrix.index, 60, 0.062)
        bottom = _label_in(matrix.columns, 30, 0.062)
        if ax is None:
            fig, ax = plt.subplots(figsize=(lab + 0.35 * nc + 2.0, bottom + 0.22 * nr + 0.4))
            _margins(fig, left=lab, bottom=bottom, right=1.6, top=0.15)
        else:
            fig = ax.figure
        sns.heatmap(matrix, cmap=cmap, norm=norm, ax=ax, cbar=True, linewidths=0.5, linecolor="white",
                    cbar_kws={"ticks": range(5), "shrink": 0.5 if nr > 6 else 1.0})
        ax.collections[0].colorbar.set_ticklabels(_SEV_LEVELS)
        ax.set_xticks(np.arange(nc) + 0.5)
        ax.set_xticklabels(matrix.columns, rotation=55, ha="right", fontsize=8)
        ax.set_yticks(np.arange(nr) + 0.5)
        ax.set_yticklabels(matrix.index, fontsize=8)
        ax.set_xlabel("")
        ax.set_ylabel("")
        return fig


def plot_metric_distributions(table: pd.DataFrame, metrics: Sequence[tuple[str, str, float | None]],
                              ax: Any = None) -> Any:
    """Strip + box plots of key metrics across runs, one panel per metric, by variant.

    Parameters
    ----------
    table : DataFrame
        ``nbdiag_runs.tsv`` rows.
    metrics : sequence of (column, label, threshold)
        Threshold, when given, is drawn as a dashed line.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    from nbdiag.report.figures import SEVERITY_COLORS, _RC

    metrics = [m for m in metrics if m[0] in table and table[m[0]].notna().any()]
    with plt.rc_context(_RC):
        n = max(1, len(metrics))
        ncol = min(3, n)
        nrow = int(np.ceil(n / ncol))
        fig, axes = plt.subplots(nrow, ncol, figsize=(3.9 * ncol, 2.9 * nrow), squeeze=False)
        fig.subplots_adjust(left=0.08, right=0.98, bottom=0.12 / nrow, top=1 - 0.1 / nrow,
                            wspace=0.35, hspace=0.65)
        palette = sns.color_palette("colorblind")
        variants = sorted(table["variant"].astype(str).unique())
        for axm, (col, label, thr) in zip(axes.flat, metrics):
            d = table[["variant", col]].copy()
            d["variant"] = d["variant"].astype(str)
            d[col] = pd.to_numeric(d[col], errors="coerce")
            d = d.dropna()
            sns.boxplot(data=d, x="variant", y=col, order=variants, ax=axm, color="#eeeeee",
                        fliersize=0, width=0.5, linewidth=0.8)
            sns.stripplot(data=d, x="variant", y=col, order=variants, ax=axm, hue="variant",
                          hue_order=variants, palette=palette[: len(variants)], legend=False, size=4,
                          jitter=0.15)
            if thr is not None:
                axm.axhline(thr, color=SEVERITY_COLORS["warn"], ls="--", lw=1)
            vals = d[col].to_numpy(dtype=float)
            if vals.size and (vals > 0).all() and vals.max() / vals.min() > 100:
                axm.set_yscale("log")  # e.g. condition numbers spanning decades
                label += " (log scale)"
            axm.set_title(label, fontsize=10, loc="left")
            axm.set_xlabel("")
            axm.set_ylabel("")
            axm.tick_params(axis="x", labelrotation=20)
        for axm in list(axes.flat)[len(metrics):]:
            axm.set_visible(False)
        return fig


def plot_check_counts(counts: pd.DataFrame, ax: Any = None) -> Any:
    """Stacked bars: number of run × variants per finding code by worst severity."""
    import matplotlib.pyplot as plt

    from nbdiag.report.figures import SEVERITY_COLORS, _RC, _label_in, _margins

    with plt.rc_context(_RC):
        lab = _label_in(counts.index, 30)
        if ax is None:
            fig, ax = plt.subplots(figsize=(lab + 6.0, 0.3 * len(counts) + 1.0))
            _margins(fig, left=lab, right=1.3, bottom=0.5, top=0.1)
        else:
            fig = ax.figure
        left = np.zeros(len(counts))
        for sev in ("info", "warn", "fail", "error"):
            if sev not in counts:
                continue
            v = counts[sev].to_numpy(dtype=float)
            ax.barh(range(len(counts)), v, left=left, color=SEVERITY_COLORS[sev], label=sev, height=0.7)
            left += v
        ax.set_yticks(range(len(counts)))
        ax.set_yticklabels(counts.index, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("run × variants")
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        return fig


def _outliers(table: pd.DataFrame, cols: Sequence[str]) -> dict[int, list[str]]:
    """Rows whose metric lies beyond Q3 + 1.5 IQR (upper tail: bigger is worse)."""
    out: dict[int, list[str]] = {}
    for col in cols:
        if col not in table:
            continue
        v = pd.to_numeric(table[col], errors="coerce")
        if v.notna().sum() < 4:
            continue
        q1, q3 = np.nanpercentile(v, [25, 75])
        hi = q3 + 1.5 * (q3 - q1)
        for i in np.where(v > hi)[0]:
            label = f"contrast VIF of {col[:-5]}" if col.endswith(":cvif") else col.replace("_", " ")
            out.setdefault(int(i), []).append(f"{label} = {v.iloc[i]:.3g} (dataset outlier: > {hi:.3g})")
    return out


def build_group_context(records: Sequence[Mapping[str, Any]], rt: pd.DataFrame, so: pd.DataFrame,
                        fail_on: str = "fail") -> dict[str, Any]:
    """Template context of ``group.html`` (exposed for tests).

    ``rt`` and ``so`` are the group runs and sign-off tables of ``records``
    (:mod:`nbdiag.group`), row for row.
    """
    from nbdiag.report.figures import figure_to_png_uri, figure_to_svg
    from nbdiag.report.subject import section_id

    figs: dict[str, Any] = {}

    def fig(name: str, fn: Any, png: bool = False) -> None:
        try:
            f = fn()
            figs[name] = {"kind": "png", "content": figure_to_png_uri(f, dpi=90)} if png else \
                {"kind": "svg", "content": __import__("markupsafe").Markup(figure_to_svg(f))}
        except Exception as exc:  # noqa: BLE001 - a figure must not break the report
            import matplotlib.pyplot as plt

            plt.close("all")
            figs[name] = {"kind": "error", "content": f"figure could not be drawn: {type(exc).__name__}: {exc}"}

    # per check counts
    fm = findings_matrix(records, rt)
    counts = pd.DataFrame({sev: (fm == i + 1).sum(axis=0) for i, sev in enumerate(["info", "warn", "fail", "error"])})
    counts["none"] = (fm == 0).sum(axis=0)
    counts = counts.sort_values(["error", "fail", "warn", "info"], ascending=False)
    check_rows = [{"code": code, **{k: int(v) for k, v in row.items()}} for code, row in counts.iterrows()]
    if len(counts):
        fig("checks", lambda: plot_check_counts(counts))
    heat_note = None
    if fm.size:
        shown = fm
        if len(fm) > MAX_HEATMAP_ROWS:
            # large datasets: the problem runs only, worst first
            worst = fm.max(axis=1)
            order = fm.assign(_w=worst, _n=(fm >= 3).sum(axis=1)).sort_values(["_w", "_n"], ascending=False)
            shown = fm.loc[order.index[: MAX_HEATMAP_ROWS]]
            shown = shown[shown.max(axis=1) >= 3] if (shown.max(axis=1) >= 3).any() else shown
            heat_note = (f"{len(shown)} of {len(fm)} run × variants shown: those with the most severe findings. "
                         "All rows are in group/nbdiag_runs.tsv.")
        fig("heatmap", lambda: plot_findings_heatmap(shown), png=len(shown) > 60)
    contrast_cvif = [c for c in rt.columns if c.endswith(":cvif")]
    metrics = [("condition_number", "condition number", 30.0), ("max_task_vif", "max task VIF", 5.0),
               ("baseline_fraction", "baseline fraction", 0.15)]
    metrics += [(c, f"contrast VIF: {c[:-5]}", 5.0) for c in contrast_cvif]
    if len(rt) and "variant" in rt:
        fig("metrics", lambda: plot_metric_distributions(rt, metrics))
    # outliers
    out = _outliers(rt, ["condition_number", "max_task_vif"] + contrast_cvif)
    outlier_rows = []
    for i, row in enumerate(rt.to_dict("records")):
        reasons = list(out.get(i, []))
        srow = so.iloc[i]
        if srow["signoff"] == "fail":
            reasons.insert(0, f"fails sign-off: {srow['reasons']}")
        if not reasons:
            continue
        sub = str(row.get("subject"))
        link = f"sub-{sub}.html#{section_id(row.get('prefix'), row.get('variant'))}" if _LABEL_OK.match(sub) else None
        outlier_rows.append({"label": _run_label(row), "status": row["status"], "reasons": reasons, "link": link})
    # variants across the dataset
    variants = []
    for v, d in rt.groupby(rt["variant"].astype(str), sort=True):
        vso = so[so["variant"].astype(str) == v]
        entry = {"variant": v, "n": len(d),
                 **{s: int((d["status"] == s).sum()) for s in ("pass", "warn", "fail", "error")},
                 "signoff_pass": int((vso["signoff"] == "pass").sum()),
                 "medians": []}
        for col, label, _ in metrics:
            if col in d:
                vals = pd.to_numeric(d[col], errors="coerce")
                entry["medians"].append((label, float(vals.median()) if vals.notna().any() else None))
        variants.append(entry)
    subjects = sorted({str(s) for s in rt.get("subject", pd.Series(dtype=str)) if s is not None})
    return {
        "n_records": len(rt),
        "fail_on": fail_on,
        "status_counts": {s: int((rt["status"] == s).sum()) for s in ("pass", "warn", "fail", "error")} if len(rt) else {},
        "signoff_pass": int((so["signoff"] == "pass").sum()), "signoff_fail": int((so["signoff"] == "fail").sum()),
        "checks": check_rows, "figs": figs, "heat_note": heat_note, "outliers": outlier_rows, "variants": variants,
        "metric_labels": [m[1] for m in metrics],
        "subjects": [{"label": s, "link": f"sub-{s}.html" if _LABEL_OK.match(s) else None} for s in subjects],
        "signoff": so.to_dict("records"),
        "versions": next(((r.get("nbdiag_version"), r.get("nilearn_version")) for r in records
                          if r.get("nbdiag_version")), (None, None)),
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def render_group_report(records: Sequence[Mapping[str, Any]], runs: pd.DataFrame, signoff: pd.DataFrame,
                        output_path: str | Path, fail_on: str = "fail") -> Path:
    """Render ``group.html`` from run records.

    Parameters
    ----------
    records : sequence of dict
        Run records (``nbdiag.group.collect_records``).
    runs, signoff : DataFrame
        The group runs and sign-off tables of ``records`` (``nbdiag.group``), row for row.
    output_path : path
        HTML file to write (atomically).
    fail_on : {"fail", "warn"}
        Sign-off level shown in the report.

    Returns
    -------
    Path
    """
    from nbdiag.outputs import atomic_write_text
    from nbdiag.report.subject import get_env

    ctx = build_group_context(records, runs, signoff, fail_on)
    html = get_env().get_template("group.html.j2").render(**ctx)
    return atomic_write_text(Path(output_path), html)
