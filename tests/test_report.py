"""Subject report rendering from records following docs/record.md."""

from __future__ import annotations

import re

import pytest

from report_examples import example_error_record, example_run
from nbdiag.report.subject import fmt_num, render_subject_report

HOSTILE = "<img src=x onerror=alert(1)>"
EXTERNAL = ("http://", "https://", "//cdn", 'src="http', "src='http", "url(http", "@import")


@pytest.fixture(scope="module")
def subject_inputs():
    records, designs = [], {}
    for variant, rtdur in (("nortdur", False), ("rtdur", True)):
        rec, design = example_run("01", variant, rtdur=rtdur)
        records.append(rec)
        designs[(rec["run"]["prefix"], variant)] = design
    records.append(example_error_record("01"))
    return records, designs


@pytest.fixture(scope="module")
def rendered(subject_inputs, tmp_path_factory):
    records, designs = subject_inputs
    out = tmp_path_factory.mktemp("out")
    path = render_subject_report("01", records, designs, out)
    return path, path.read_text(encoding="utf-8")


def test_file_name_and_atomic(rendered):
    path, _ = rendered
    assert path.name == "sub-01.html"
    assert [p.name for p in path.parent.iterdir()] == ["sub-01.html"]  # no temp file left


def test_sections_present(rendered):
    _, html = rendered
    for text in ('<table id="verdict"', "Findings", "Contrast weights", "Sensitivity to unmodelled signals",
                 "Contrasts and variants compared", "Design matrix, correlation and VIF", "Drift and confounds",
                 "Settings, notes and input files", "nortdur", "rtdur", "baseline_unmodeled_events",
                 "Model INSTRUCTION as its own condition", "data:image/png;base64,", "<svg"):
        assert text in html, text
    # the verdict table is the first element of substance
    assert html.index('<table id="verdict"') < html.index("<details")
    # explanation of each contrast is shown
    assert "zero_back compares zero_back blocks" in html
    assert 'id="sub-01_ses-1_task-nback_run-01--nortdur"' in html  # target of group.html links
    # the error run is shown with its message and details
    assert "could not be audited" in html
    assert "column &#39;onset&#39; must be numeric" in html
    assert "&#39;n/a&lt;script&gt;&#39;" in html
    # evidence is a table, never raw JSON
    assert '{&#34;' not in html and "{&quot;" not in html


def test_reports_have_no_timestamp_and_are_reproducible(subject_inputs, tmp_path):
    records, designs = subject_inputs
    a = render_subject_report("01", records, designs, tmp_path / "a.html").read_bytes()
    b = render_subject_report("01", records, designs, tmp_path / "b.html").read_bytes()
    assert a == b
    assert b"generated" not in a and b"UTC" not in a


def test_no_external_resources(rendered):
    _, html = rendered
    for bad in EXTERNAL:
        assert bad not in html, bad
    assert "<link" not in html
    # svg namespace declarations are the only URLs, and they are not fetched
    assert not re.search(r"""(src|href)\s*=\s*["']?(?!#|data:|sub-)[a-z]+:""", html)


def test_hostile_trial_type_is_text(tmp_path):
    rec, design = example_run("02", "nortdur", hostile=True)
    path = render_subject_report("02", [rec], {(rec["run"]["prefix"], "nortdur"): design}, tmp_path)
    html = path.read_text(encoding="utf-8")
    assert HOSTILE not in html
    assert "<img src=x" not in html and "<img src=\"x\"" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    # the only <img> tags are our base64 figures
    for tag in re.findall(r"<img[^>]*>", html):
        assert 'src="data:image/png;base64,' in tag


def test_render_without_designs_and_minimal_record(tmp_path):
    rec, _ = example_run("03", "nortdur")
    for key in ("diagnostics", "events", "whatif"):
        rec.pop(key)
    rec["contrasts"]["zero_back"]["variance"] = None
    path = render_subject_report("sub-03", [rec], None, tmp_path / "x.html")
    html = path.read_text(encoding="utf-8")
    assert path.name == "x.html" and "n/a" in html


def test_bad_subject_label(tmp_path):
    with pytest.raises(ValueError, match="alphanumeric"):
        render_subject_report("../evil", [], None, tmp_path)


def test_run_figures_are_the_report_charts(subject_inputs, tmp_path):
    """One chart stack: the README/notebook figure of a record is the report's own SVG chart."""
    import xml.etree.ElementTree as ET

    from nbdiag.report import svgplot
    from nbdiag.report.run_figures import run_figures, weights_svg

    rec, design = subject_inputs[0][0], subject_inputs[1][(subject_inputs[0][0]["run"]["prefix"], "nortdur")]
    figs = run_figures(rec, design)
    assert {"design", "correlation", "vif", "weights", "drift", "spectra", "confounds"} <= set(figs)
    assert all(f["kind"] == "svg" for f in figs.values() if isinstance(f, dict))
    assert str(figs["weights"]["content"]) == weights_svg(rec)
    c = rec["contrasts"]["zero_back"]
    one = weights_svg(rec, ["zero_back"])
    share = c["baseline_composition"]["negative"]["unmodeled_event"]
    assert f"{share:.0%}" in one and "unmodelled events" in one
    # one panel title (bold) and the share table's heading
    assert one.count('font-weight="bold"') == 2 < weights_svg(rec).count('font-weight="bold"')
    assert weights_svg(rec, ["no_such_contrast"]) is None and weights_svg({**rec, "contrasts": {}}) is None
    path = svgplot.save(one, tmp_path / "w.svg")
    text = path.read_text(encoding="utf-8")
    root = ET.fromstring(text)   # a standalone file: namespace declared, parses as XML
    assert root.tag == "{http://www.w3.org/2000/svg}svg" and text.count("xmlns=") == 1
    assert root[0].get("fill") == "#ffffff"   # opaque background (GitHub dark mode)
    assert svgplot.standalone(text) == text   # idempotent
    assert svgplot.show(one)._repr_svg_() == text
    with pytest.raises(ValueError, match="not an <svg>"):
        svgplot.standalone("<div></div>")


def test_a_broken_figure_becomes_a_caption(subject_inputs):
    from nbdiag.report.run_figures import run_figures

    rec = dict(subject_inputs[0][0])
    rec["events"] = {"modeled": [{"onset": 1.0, "duration": "x", "trial_type": "a"}], "unmodeled": []}
    figs = run_figures(rec, None)
    assert figs["weights"]["kind"] == "error" and "could not be drawn" in figs["weights"]["content"]
    assert "vif" in figs   # the other figures are still drawn


def test_fmt_num():
    assert fmt_num(None) == "n/a"
    assert fmt_num(float("nan")) == "n/a"
    assert fmt_num(True) == "yes"
    assert fmt_num(0.012345) == "0.0123"
    assert fmt_num(12.345) == "12.3"


@pytest.fixture(scope="module")
def demo_output(tmp_path_factory):
    """Real records: the bundled demo dataset audited by the real pipeline (sub-01)."""
    pipeline = pytest.importorskip("nbdiag.participant.pipeline")
    config_mod = pytest.importorskip("nbdiag.config")
    demo = pytest.importorskip("nbdiag.demo.run")
    if not (demo.DATA_DIR / "dataset_description.json").exists():
        pytest.skip("demo dataset missing")
    out = tmp_path_factory.mktemp("demo")
    result = pipeline.run_participant(demo.DATA_DIR, out, config_mod.load_config(demo.CONFIG),
                                      participant_labels=["01"], log=lambda msg: None)
    return out, result


def test_real_records_subject_report(demo_output):
    out, result = demo_output
    html = (out / "sub-01.html").read_text(encoding="utf-8")
    variants = {a.variant for a in result.audits}
    assert len(variants) >= 2
    for v in variants:
        assert f">{v}<" in html
    for text in ("Contrasts and variants compared", "Contrast weights", "share of negative weight",
                 "Sensitivity to unmodelled signals", "zero_back"):
        assert text in html, text
    assert "figure could not be drawn" not in html
    for bad in EXTERNAL:
        assert bad not in html, bad
    # every finding of every record is in the report
    for a in result.audits:
        for f in a.record.to_json().get("findings") or []:
            assert f["code"] in html


def test_real_records_group(demo_output):
    from nbdiag.group.pipeline import collect_records, run_group

    out, result = demo_output
    records = collect_records(out)
    assert len(records) == len(result.audits)
    code = run_group(out, "warn")
    statuses = {r["status"] for r in records}
    assert code == (3 if statuses & {"warn", "fail", "error"} else 0)
    html = (out / "group.html").read_text(encoding="utf-8")
    assert 'href="sub-01.html"' in html or code == 0


def test_many_confounds_are_summarised(tmp_path):
    rec, design = example_run("04", "nortdur")
    names = [f"a_comp_cor_{i:02d}" for i in range(60)]
    cols = rec["diagnostics"]["collinearity"]["correlation"]["columns"] + names
    n = len(cols)
    rec["diagnostics"]["collinearity"]["correlation"] = {
        "columns": cols, "matrix": [[1.0 if i == j else 0.01 * ((i + j) % 7) for j in range(n)] for i in range(n)]}
    rec["diagnostics"]["collinearity"]["vif"].update({c: 1.0 + i / 10 for i, c in enumerate(names)})
    html = render_subject_report("04", [rec], {(rec["run"]["prefix"], "nortdur"): design}, tmp_path).read_text()
    assert "30 of 68 regressors shown" in html
    assert "figure could not be drawn" not in html
