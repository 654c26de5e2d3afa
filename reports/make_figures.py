"""Export the tutorial figures of README.md from a demo output folder.

    nbdiag demo nbdiag-demo
    python reports/make_figures.py nbdiag-demo

(``python reports/make_gallery.py`` does both and refreshes the whole gallery.)

Uses the report's own plot functions on the records nbdiag wrote; computes nothing.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from nbdiag.report import figures as F  # noqa: E402

HERE = Path(__file__).parent / "figures"
RUNS = {
    "sub01": "sub-01/ses-1/func/sub-01_ses-1_task-nback_run-01_desc-nortdur_nbdiag.json",
    "sub01_masked": None,
    "sub02ses2": "sub-02/ses-2/func/sub-02_ses-2_task-nback_run-01_desc-nortdur_nbdiag.json",
}


def _weights_figure(record: dict, path: Path, contrasts=("zero_back", "two_back - zero_back")) -> None:
    nss_info = record["diagnostics"]["confounds"]["nonsteady"]
    weights = {c: record["contrasts"][c]["weights"] for c in contrasts}
    shares = {c: record["contrasts"][c]["baseline_composition"]["negative"] for c in contrasts}
    fig = F.plot_contrast_weights(
        record["design"]["frame_times"], weights, record["diagnostics"]["baseline"]["scan_classes"],
        modeled=record["events"]["modeled"], unmodeled=record["events"]["unmodeled"],
        epochs=record["diagnostics"]["baseline"]["epochs"],
        nonsteady=[] if nss_info.get("handled") else nss_info.get("volumes", []),
        negative_share=shares, title={c: c for c in contrasts})
    fig.savefig(path, dpi=90, bbox_inches="tight", metadata={"Software": None})


def _composition_figure(record: dict, path: Path) -> None:
    comps = {n: c["baseline_composition"]["negative"] for n, c in record["contrasts"].items()}
    F.plot_baseline_composition(comps).savefig(path, dpi=90, bbox_inches="tight", metadata={"Software": None})


def main(out_dir: str) -> None:
    out = Path(out_dir)
    HERE.mkdir(exist_ok=True)
    sub01 = json.loads((out / RUNS["sub01"]).read_text())
    _weights_figure(sub01, HERE / "sub-01_weights.png")
    _composition_figure(sub01, HERE / "sub-01_composition.png")
    sub02 = json.loads((out / RUNS["sub02ses2"]).read_text())
    _weights_figure(sub02, HERE / "sub-02_ses-2_weights.png")
    print(f"wrote figures to {HERE}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "nbdiag-demo")
