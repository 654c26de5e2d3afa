"""HTML reports: one self-contained page per subject and one for the group.

Public API
----------
render_subject_report(subject, records, designs, output_path) -> Path
render_group_report(records, runs, signoff, output_path, fail_on="fail") -> Path

Reports render run records (docs/record.md) and design TSVs; they compute no
statistics. Imports are lazy so that ``import nbdiag.report`` stays cheap.
"""

from __future__ import annotations

from typing import Any

__all__ = ["render_subject_report", "render_group_report"]


def __getattr__(name: str) -> Any:
    if name == "render_subject_report":
        from nbdiag.report.subject import render_subject_report  # lazy: keeps `import nbdiag.report` cheap

        return render_subject_report
    if name == "render_group_report":
        from nbdiag.report.group_report import render_group_report  # lazy: as above

        return render_group_report
    raise AttributeError(f"module 'nbdiag.report' has no attribute {name!r}")
