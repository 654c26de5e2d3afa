"""``nbdiag demo``: the whole pipeline on the bundled n-back dataset."""

from __future__ import annotations

import sys
from pathlib import Path

from nbdiag.errors import EXIT_RUN_ERRORS

DEMO_DIR = Path(__file__).parent
DATA_DIR = DEMO_DIR / "data"
CONFIG = DEMO_DIR / "nbdiag.toml"


def _top_zero_back(records: list[dict]) -> list[str]:
    lines = []
    for record in records:
        if record.get("variant") != "nortdur" or record.get("status") == "error":
            continue
        contrast = (record.get("contrasts") or {}).get("zero_back") or {}
        codes = contrast.get("findings") or []
        top = next((f for f in record.get("findings", [])
                    if f.get("contrast") == "zero_back" and codes and f["code"] == codes[0]), None)
        label = record["run"]["prefix"]
        if top is None:
            lines.append(f"  {label}: no warning for zero_back")
        else:
            lines.append(f"  {label}: [{top['severity']}] {top['code']}: {top['title']}")
    return lines


def run_demo(output_dir: str | Path = "reports/demo", n_jobs: int = 1, log=None) -> int:
    """Audit the demo dataset (participant + group level) and print a summary.

    Returns the exit code of the participant level (0 when every run was
    audited); the group sign-off result is printed, not returned, because the
    demo is meant to contain runs that fail it.
    """
    from nbdiag.config import load_config
    from nbdiag.group import run_group
    from nbdiag.pipeline import run_participant

    if not (DATA_DIR / "dataset_description.json").exists():
        print(f"nbdiag demo: the bundled dataset is missing from {DATA_DIR}", file=sys.stderr)
        return EXIT_RUN_ERRORS
    output_dir = Path(output_dir)
    config = load_config(CONFIG)
    result = run_participant(DATA_DIR, output_dir, config, n_jobs=n_jobs, log=log)
    signoff = run_group(output_dir, fail_on="fail")
    records = [a.record for a in result.audits]
    print()
    print(f"nbdiag demo: {len({a.run.key for a in result.audits})} runs x {len(config.all_variants())} variants "
          f"({', '.join(s.variant for s in config.all_variants())})")
    for status in ("pass", "warn", "fail", "error"):
        print(f"  {status:5s} {sum(r['status'] == status for r in records)}")
    print("Top explanation for zero_back (variant nortdur):")
    for line in _top_zero_back(records):
        print(line)
    print(f"Group sign-off: {'passed' if signoff == 0 else 'some runs fail (see group/signoff.tsv)'}")
    print(f"Open {(output_dir / 'group.html').absolute()}")
    return result.exit_code
