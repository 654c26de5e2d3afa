"""Regenerate the committed report gallery (``reports/demo`` and ``reports/figures``).

    python reports/make_gallery.py

Runs ``nbdiag demo`` into a temporary folder, copies the reports and group tables
(not the per-run ``_design.tsv`` / ``_nbdiag.json``, to keep the gallery small) into
``reports/demo``, and exports the README figures into ``reports/figures``. Outputs are
reproducible: running it twice gives byte-identical files (on the same nbdiag,
nilearn and matplotlib versions). This is the only command that writes into
``reports/``; ``nbdiag demo`` refuses to.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
GALLERY = HERE / "demo"


def main() -> int:
    sys.path.insert(0, str(HERE))
    from make_figures import main as make_figures

    from nbdiag.demo.run import run_demo

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "demo"
        code = run_demo(out, log=lambda msg: None)
        if code != 0:
            return code
        if GALLERY.exists():
            shutil.rmtree(GALLERY)
        (GALLERY / "group").mkdir(parents=True)
        for path in sorted(out.glob("*.html")) + [out / "dataset_description.json"]:
            shutil.copyfile(path, GALLERY / path.name)
        for path in sorted((out / "group").glob("*.tsv")):
            shutil.copyfile(path, GALLERY / "group" / path.name)
        make_figures(str(out))
    print(f"gallery written to {GALLERY}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
