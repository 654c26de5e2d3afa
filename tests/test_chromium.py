"""Open the reports in headless Chromium: they must load, run their inline JS, and
make no request and raise no error. Skipped when Chromium is not installed."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from nbdiag.group.pipeline import run_group
from report_examples import example_error_record, example_run
from nbdiag.report.subject import render_subject_report

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium (/usr/bin/chromium) not installed")

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0"]


def _dump_dom(path: Path) -> tuple[str, str]:
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", path.as_uri()],
                              capture_output=True, text=True, timeout=90)
    return proc.stdout, proc.stderr


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    records = []
    for variant, rtdur in (("nortdur", False), ("rtdur", True)):
        rec, design = example_run("07", variant, rtdur=rtdur, hostile=True)
        records.append((rec, design))
        d = out / "sub-07" / "ses-1" / "func"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{rec['run']['prefix']}_desc-{variant}_nbdiag.json").write_text(json.dumps(rec))
    err = example_error_record("07")
    subject = render_subject_report(
        "07", [r for r, _ in records] + [err], {(r["run"]["prefix"], r["variant"]): d for r, d in records}, out)
    run_group(out, "fail")
    return subject, out / "group.html"


@pytest.mark.parametrize("which", [0, 1])
def test_report_loads_without_errors(reports, which):
    dom, log = _dump_dom(reports[which])
    assert 'data-nbdiag-ready="1"' in dom, "inline JS did not run"
    assert "Uncaught" not in log, log[-2000:]
    assert "Refused to" not in log, log[-2000:]  # CSP violation = something tried to load
    # the hostile trial_type is text, never an element
    assert 'onerror="alert(1)"' not in dom
    assert "&lt;img src=x onerror=alert(1)&gt;" in dom
