"""Export the tutorial figures of README.md from a demo output folder.

    nbdiag demo nbdiag-demo
    python reports/make_figures.py nbdiag-demo

(``python reports/make_gallery.py`` does both and refreshes the whole gallery.)

The figures are the subject report's own SVG charts (nbdiag.report.run_figures), drawn from
the records nbdiag wrote and saved as standalone ``.svg`` files; nothing is computed here.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from nbdiag.report.run_figures import weights_svg
from nbdiag.report.svgplot import save

HERE = Path(__file__).parent / "figures"
RUNS = {
    "sub-01_weights.svg": "sub-01/ses-1/func/sub-01_ses-1_task-nback_run-01_desc-nortdur_nbdiag.json",
    "sub-02_ses-2_weights.svg": "sub-02/ses-2/func/sub-02_ses-2_task-nback_run-01_desc-nortdur_nbdiag.json",
}
CONTRASTS = ("zero_back", "two_back - zero_back")


def main(out_dir: str) -> None:
    out = Path(out_dir)
    HERE.mkdir(exist_ok=True)
    for name, record_path in RUNS.items():
        record = json.loads((out / record_path).read_text(encoding="utf-8"))
        save(weights_svg(record, CONTRASTS), HERE / name)
    print(f"wrote figures to {HERE}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "nbdiag-demo")
