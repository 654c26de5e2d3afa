"""``nbdiag demo``: the whole pipeline on the bundled n-back dataset."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from nbdiag.config import load_config
from nbdiag.core.errors import EXIT_RUN_ERRORS, EXIT_USAGE

DEMO_DIR = Path(__file__).parent
DATA_DIR = DEMO_DIR / "data"
CONFIG = DEMO_DIR / "nbdiag.toml"


def _measured_words(contrast: dict) -> str:
    """The global signal's zero_back estimate and t, as measured from the run's confounds file."""
    gs = ((contrast.get("measured") or {}).get("global_signal")) or {}
    est, t = gs.get("estimate_ols"), gs.get("t")
    if est is None or t is None or gs.get("in_model"):
        return ""
    return f"; global signal {est:+.3f} % (t = {t:.1f})"


def _top_zero_back(records: list[dict]) -> list[str]:
    """One line per run: the first warn/fail cause for zero_back, or that none reaches warn size."""
    lines = []
    for record in records:
        if record.get("variant") != "nortdur" or record.get("status") == "error":
            continue
        contrast = (record.get("contrasts") or {}).get("zero_back") or {}
        codes = contrast.get("findings") or []
        top = next((f for f in record.get("findings", [])
                    if f.get("contrast") == "zero_back" and codes and f["code"] == codes[0]), None)
        label = record["run"]["prefix"]
        if top is None or top.get("severity") not in ("warn", "fail"):
            lines.append(f"  {label}: no cause reaches the warn size{_measured_words(contrast)}")
        else:
            lines.append(f"  {label}: [{top['severity']}] {top['code']}: {top['title']}")
    return lines


#: Default output folder of ``nbdiag demo`` (relative to the current directory).
DEFAULT_OUTPUT = Path("nbdiag-demo")


def refuse_output(output_dir: str | Path, allow_gallery: bool = False) -> str | None:
    """Why ``output_dir`` must not receive the demo, or ``None`` when it may.

    The demo never writes inside the installed nbdiag package, nor into the
    ``reports/`` folder of a git checkout (the committed gallery, regenerated only by
    ``python reports/make_gallery.py``, which passes ``allow_gallery=True``).
    """
    out = Path(output_dir).absolute().resolve()
    package = Path(__file__).resolve().parent.parent
    if out == package or package in out.parents:
        return f"{output_dir} is inside the installed nbdiag package ({package.name}/); choose another folder"
    if allow_gallery:
        return None
    for folder in (out, *out.parents):
        if folder.name == "reports" and (folder.parent / ".git").exists():
            return (f"{output_dir} is inside the git checkout's reports/ folder (the committed gallery); "
                    "regenerate the gallery with 'python reports/make_gallery.py' or choose another folder")
    return None


def run_demo(output_dir: str | Path = DEFAULT_OUTPUT, n_jobs: int = 1, log=None, *,
             allow_gallery: bool = False, participant_labels: list[str] | None = None) -> int:
    """Audit the demo dataset (participant + group level) and print a summary.

    Returns the exit code of the participant level (0 when every run was
    audited), or 2 when ``output_dir`` is refused (:func:`refuse_output`); the group
    sign-off result is printed, not returned, because the demo is meant to contain
    runs that fail it. ``participant_labels`` restricts the demo to some subjects
    (tests).
    """
    # lazy: `import nbdiag.demo` (data_path, the synth generator) must not load both levels
    from nbdiag.group.pipeline import collect_records, run_group
    from nbdiag.participant.pipeline import run_participant

    if not (DATA_DIR / "dataset_description.json").exists():
        print(f"nbdiag demo: the bundled dataset is missing from {DATA_DIR}", file=sys.stderr)
        return EXIT_RUN_ERRORS
    why = refuse_output(output_dir, allow_gallery)
    if why:
        print(f"nbdiag demo: error: {why}", file=sys.stderr)
        return EXIT_USAGE
    output_dir = Path(output_dir)
    config = load_config(CONFIG)
    result = run_participant(DATA_DIR, output_dir, config, n_jobs=n_jobs, log=log,
                             participant_labels=participant_labels)
    signoff = run_group(output_dir, fail_on="fail", bids_dir=DATA_DIR)
    records = [a.summary for a in result.audits]
    print()
    print(f"nbdiag demo: {len({a.run.key for a in result.audits})} runs x {len(config.all_variants())} variants "
          f"({', '.join(s.variant for s in config.all_variants())})")
    for status in ("pass", "warn", "fail", "error"):
        print(f"  {status:5s} {sum(r.status == status for r in records)}")
    print("Top explanation for zero_back (variant nortdur):")
    for line in _top_zero_back(sorted(collect_records(output_dir), key=lambda r: r["run"]["prefix"])):
        print(line)
    print(f"Group sign-off: {'passed' if signoff == 0 else 'some runs fail (see group/signoff.tsv)'}")
    for line in next_steps(DATA_DIR, output_dir):
        print(line)
    return result.exit_code


def next_steps(data_dir: Path, output_dir: Path) -> list[str]:
    """What ``nbdiag demo`` prints last: where the audited data live and the exact next commands."""
    data = shlex.quote(str(Path(data_dir).resolve()))
    out = shlex.quote(str(output_dir))
    config = shlex.quote(str(CONFIG.resolve()))
    first = sorted(p.name for p in Path(output_dir).glob("sub-*.html"))
    subject = first[0] if first else "sub-01.html"
    tag = subject[: -len(".html")]
    return [
        "",
        f"Data audited: {data}",
        "  (the demo dataset installed with nbdiag; in Python: nbdiag.demo.data_path())",
        f"Settings: {config}",
        "Next:",
        (f"  1. open {Path(output_dir) / 'group.html'} (one verdict per variant x contrast), then "
         f"{Path(output_dir) / subject}"),
        ("  2. in a subject page, rate each run (include / exclude / unsure), type your initials (e.g. AB) and "
         f"click 'Download ratings (JSON)': it saves {tag}_ratings_AB.json"),
        "  3. merge the ratings into the sign-off (group/signoff.tsv, group/include.tsv):",
        f"     nbdiag {data} {out} group --ratings {tag}_ratings_AB.json",
        "  4. audit your own data with the same settings:",
        f"     nbdiag BIDS_DIR OUTPUT_DIR participant --config {config}",
    ]
