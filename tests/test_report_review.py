"""Issue 14: a report a reviewer can act on in two minutes, and a sign-off they can record.

* Chromium (headless) loads every demo report with no console error and no request; at
  1280×800 the verdict table is fully visible without scrolling, the page with sections
  collapsed is at most 1.5 screens per run × variant, and no element's text overflows
  its box (1280 and 1920 px wide, sections open);
* the same condition has the same colour in every figure of two subjects;
* two demo runs into two folders give identical files, with no absolute path inside;
* ratings saved by the report's widget round-trip into signoff.tsv; a rating for an
  unknown run is refused by name; ``--variant`` changes the exit code.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pandas as pd
import pytest

from nbdiag.cli import main
from nbdiag.demo.run import DATA_DIR, refuse_output, run_demo
from nbdiag.report.palette import condition_color

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--enable-logging=stderr", "--v=0"]
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed")

#: Subjects used here: sub-04 has 2 runs (3 variants x 3 contrasts each), sub-01 the forum case.
LABELS = ["01", "04"]


@pytest.fixture(scope="module")
def demo_dirs(tmp_path_factory):
    """The demo (sub-01 and sub-04) run twice, into two differently named folders."""
    if not (DATA_DIR / "dataset_description.json").exists():
        pytest.skip("demo dataset missing")
    base = tmp_path_factory.mktemp("demo")
    outs = []
    for name in ("first", "second-folder"):
        out = base / name
        assert run_demo(out, log=lambda msg: None, participant_labels=LABELS) == 0
        outs.append(out)
    return outs


# --------------------------------------------------------------------------- reproducibility
def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_two_demo_runs_identical_and_without_machine_paths(demo_dirs):
    a, b = demo_dirs
    fa, fb = _files(a), _files(b)
    assert sorted(fa) == sorted(fb)
    assert any(k.endswith(".html") for k in fa) and any(k.endswith("_nbdiag.json") for k in fa)
    for name in fa:
        assert fa[name].replace(str(a).encode(), b"OUT") == fb[name].replace(str(b).encode(), b"OUT"), name
    machine = [str(a), str(DATA_DIR), str(DATA_DIR.resolve()), str(Path.cwd()), str(Path.home()),
               str(Path(__file__).resolve().parent.parent)]
    for name, data in fa.items():
        text = data.decode("utf-8", errors="replace")
        for path in machine:
            assert path not in text, f"{name} holds the absolute path {path}"
    rec = json.loads(next(v for k, v in fa.items() if k.endswith("_desc-nortdur_nbdiag.json")))
    assert rec["run"]["files"]["events"].startswith("bids::sub-")
    assert rec["run"]["files"]["confounds"].startswith("bids::derivatives/fmriprep/sub-")


def test_demo_refuses_package_and_gallery(tmp_path):
    pkg = Path(__file__).resolve().parent.parent / "nbdiag"
    assert "installed nbdiag package" in refuse_output(pkg / "demo" / "out")
    checkout = tmp_path / "repo"
    (checkout / ".git").mkdir(parents=True)
    assert "reports/" in refuse_output(checkout / "reports" / "demo")
    assert refuse_output(checkout / "reports" / "demo", allow_gallery=True) is None
    assert refuse_output(tmp_path / "elsewhere") is None
    assert main(["demo", str(checkout / "reports" / "demo")]) == 2
    assert not (checkout / "reports").exists()


# --------------------------------------------------------------------------- colours
_KEYED = re.compile(r'<(rect|path|polyline|circle)\b[^>]*?(?:fill|stroke)="(#[0-9A-Fa-f]{6})"[^>]*?'
                    r'data-key="condition:([^"]+)"')


def _condition_colors(html: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for svg in re.findall(r"<svg\b.*?</svg>", html, flags=re.S):
        for _, color, name in _KEYED.findall(svg):
            out.setdefault(name, set()).add(color.upper())
    return out


def test_same_condition_same_colour_in_every_figure_of_two_subjects(demo_dirs):
    out = demo_dirs[0]
    seen: dict[str, set[str]] = {}
    for label in LABELS:
        for name, colors in _condition_colors((out / f"sub-{label}.html").read_text()).items():
            seen.setdefault(name, set()).update(colors)
    assert {"two_back", "zero_back"} <= set(seen)
    for name, colors in seen.items():
        assert colors == {condition_color(name).upper()}, (name, colors)
    assert len({condition_color(n) for n in ("two_back", "zero_back", "INSTRUCTION", "RTDur")}) == 4
    # the group page: one colour per variant in the figure and the tables
    group = (out / "group.html").read_text()
    dots = re.findall(r'<circle [^>]*fill="(#[0-9A-Fa-f]{6})"[^>]*data-key="variant:([^"]+)"', group)
    by_variant: dict[str, set[str]] = {}
    for color, variant in dots:
        by_variant.setdefault(variant, set()).add(color)
    assert set(by_variant) == {"nortdur", "rtdur", "compcor"}
    assert all(len(c) == 1 for c in by_variant.values()) and len({min(c) for c in by_variant.values()}) == 3


def test_evidence_is_a_table_with_the_threshold_crossed():
    from nbdiag.report.summary import evidence_rows, merge_findings

    rows = evidence_rows({"negative_weight_share": 0.484, "short_gap_seconds": 6.0, "warn_at": 0.25,
                          "sensitivity": [{"source": "pre_block", "bias_sd": -3.35}]}, "fail")
    main = rows[0]
    assert (main["name"], main["value"], main["threshold"], main["margin"]) == (
        "negative_weight_share", "48.4 %", "warn_at 25 %", "+23.4 points")
    assert {"name": "short_gap_seconds", "value": "6.00 s", "unit": "", "threshold": "", "margin": ""} in rows
    assert rows[-1]["value"] == "-3.35 σ"
    # a threshold the evidence does not name comes from the registry and the record's thresholds
    rows = evidence_rows({"source": "nonsteady", "bias": -0.976, "bias_sd": -7.997, "unit": "% signal"}, "fail",
                         "sensitive_unmodeled_signal", {"sensitivity_warn": 0.5, "sensitivity_fail": 2.0})
    sd = next(r for r in rows if r["name"] == "bias_sd")
    assert (sd["value"], sd["threshold"], sd["margin"]) == ("-8.00 σ", "sensitivity_fail 2 σ", "+6.00 σ (×4)")
    # one finding, one place: the same finding in two variants and two contrasts is one entry
    from report_examples import finding, minimal_record

    recs = []
    for variant, vif in (("a", 6.0), ("b", 12.0)):
        recs.append(minimal_record(variant=variant, contrasts={}, thresholds={"vif_warn": 5, "vif_fail": 10},
                                   findings=[finding("vif_high", "warn" if vif < 10 else "fail",
                                                     title=f"VIF of x is {vif}", message="m",
                                                     evidence={"column": "x", "vif": vif})]))
    merged = merge_findings(recs)
    assert len(merged) == 1 and merged[0]["severity"] == "fail"
    assert [(p["variant"], p["number"]) for p in merged[0]["places"]] == [("a", "vif 6.00 (vif_warn 5)"),
                                                                          ("b", "vif 12.0 (vif_fail 10)")]


# --------------------------------------------------------------------------- chromium
MEASURE = r"""
<script>
(function () {
  function overflowing() {
    var bad = [];
    var els = document.querySelectorAll("main *");
    for (var i = 0; i < els.length; i++) {
      var el = els[i];
      if (el.closest("svg")) { continue; }
      var cs = getComputedStyle(el);
      if (cs.display === "inline" || cs.display === "none" || el.clientWidth === 0) { continue; }
      var hasText = false;
      for (var k = 0; k < el.childNodes.length; k++) {
        if (el.childNodes[k].nodeType === 3 && el.childNodes[k].textContent.trim()) { hasText = true; }
      }
      if (hasText && el.scrollWidth > el.clientWidth + 1) { bad.push(el.tagName + "." + el.className + ": " + el.textContent.slice(0, 60)); }
    }
    var svgs = document.querySelectorAll("main svg.fig");
    for (var s = 0; s < svgs.length; s++) {
      var box = svgs[s].getBoundingClientRect();
      if (!box.width) { continue; }
      var texts = svgs[s].querySelectorAll("text");
      for (var t = 0; t < texts.length; t++) {
        var r = texts[t].getBoundingClientRect();
        if (r.width && (r.left < box.left - 1 || r.right > box.right + 1 || r.top < box.top - 1 || r.bottom > box.bottom + 1)) {
          bad.push("svg text clipped: " + texts[t].textContent.slice(0, 60));
        }
      }
    }
    if (document.documentElement.scrollWidth > window.innerWidth + 1) { bad.push("page wider than the window"); }
    return bad;
  }
  var out = { width: window.innerWidth, height: window.innerHeight };
  var v = document.getElementById("verdict");
  if (v) {
    var r = v.getBoundingClientRect();
    out.verdict_bottom = r.bottom + window.scrollY;
    var first = document.querySelector("main").firstElementChild;
    out.first_id = first ? first.id : null;
    out.rows = v.tBodies[0].rows.length;
  }
  var secs = document.querySelectorAll("details.sec");
  if (secs.length) { out.first_sec_top = secs[0].getBoundingClientRect().top + window.scrollY; }
  out.sections = [];
  for (var i = 0; i < secs.length; i++) { out.sections.push(secs[i].getBoundingClientRect().height); }
  out.page_collapsed = document.documentElement.scrollHeight;
  out.n_rating = document.querySelectorAll(".rating").length;
  out.ready = document.documentElement.getAttribute("data-nbdiag-ready");
  var ds = document.querySelectorAll("details");
  for (var j = 0; j < ds.length; j++) { ds[j].open = true; }
  out.overflow = overflowing();
  if (window.nbdiagRatings) {
    var w = document.querySelector(".rating");
    w.querySelector("input[value=exclude]").checked = true;
    w.querySelector("input.comment").value = "cue gaps, see weights";
    document.querySelector("input[name=reviewer]").value = "AB";
    out.ratings = window.nbdiagRatings();
  }
  var pre = document.createElement("pre");
  pre.id = "nbdiag-measure";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>
"""


def _measure(html_path: Path, width: int, height: int) -> tuple[dict, str]:
    html = html_path.read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / html_path.name
        probe.write_text(html.replace("</body>", MEASURE + "</body>"), encoding="utf-8")
        with tempfile.TemporaryDirectory() as profile:
            proc = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}",
                                   "--virtual-time-budget=3000", "--dump-dom", probe.as_uri()],
                                  capture_output=True, text=True, timeout=120)
    m = re.search(r'<pre id="nbdiag-measure">(.*?)</pre>', proc.stdout, flags=re.S)
    assert m, proc.stderr[-2000:]
    import html as _html

    return json.loads(_html.unescape(m.group(1))), proc.stderr


def _no_errors(log: str) -> None:
    assert "Uncaught" not in log, log[-2000:]
    assert "Refused to" not in log, log[-2000:]  # CSP: something tried to load a resource
    assert "ERR_" not in log, log[-2000:]


@needs_chromium
def test_subject_report_first_screen_and_layout(demo_dirs):
    out = demo_dirs[0]
    m, log = _measure(out / "sub-04.html", 1280, 800)
    _no_errors(log)
    assert m["ready"] == "1"
    assert m["first_id"] == "verdict"
    # 2 runs x 3 variants x 3 contrasts (plus whole-run rows for run-level failures)
    assert m["rows"] >= 18
    assert m["verdict_bottom"] <= 800, m["verdict_bottom"]
    assert m["n_rating"] == 6
    assert m["page_collapsed"] <= 1.5 * 800 * 6, m["page_collapsed"]
    assert m["sections"] and max(m["sections"]) <= 40, m["sections"]  # collapsed: one summary line each
    assert m["overflow"] == [], m["overflow"][:10]
    m2, log2 = _measure(out / "sub-04.html", 1920, 1080)
    _no_errors(log2)
    assert m2["overflow"] == [], m2["overflow"][:10]


@needs_chromium
@pytest.mark.parametrize("name,width,height", [("sub-01.html", 1280, 800), ("group.html", 1280, 800),
                                               ("group.html", 1920, 1080)])
def test_other_reports_load_clean_without_overflow(demo_dirs, name, width, height):
    m, log = _measure(demo_dirs[0] / name, width, height)
    _no_errors(log)
    assert m["ready"] == "1"
    assert m["overflow"] == [], m["overflow"][:10]


@needs_chromium
@pytest.mark.parametrize("width,height", [(1280, 800), (1920, 1080)])
def test_group_report_first_screen_is_the_verdict(demo_dirs, width, height):
    """The group page opens with #verdict (variant x contrast), fully visible on the first screen;
    at most 1.5 screens before the first collapsed section; nothing overflows."""
    m, log = _measure(demo_dirs[0] / "group.html", width, height)
    _no_errors(log)
    assert m["first_id"] == "verdict"
    assert m["rows"] == 3 * 3  # 3 variants x 3 contrasts
    assert m["verdict_bottom"] <= height, m["verdict_bottom"]
    assert m["first_sec_top"] <= 1.5 * height, m["first_sec_top"]
    assert m["sections"] and max(m["sections"]) <= 40, m["sections"]
    assert m["overflow"] == [], m["overflow"][:10]


@needs_chromium
@pytest.mark.parametrize("label", LABELS)
def test_each_subject_verdict_is_on_the_first_screen(demo_dirs, label):
    m, log = _measure(demo_dirs[0] / f"sub-{label}.html", 1280, 800)
    _no_errors(log)
    assert m["first_id"] == "verdict"
    assert m["verdict_bottom"] <= 800, m["verdict_bottom"]
    assert m["overflow"] == [], m["overflow"][:10]


def test_group_page_agrees_with_its_tables(demo_dirs):
    """Page consistency: status counts match the runs table, every run counted as failing has status
    fail, every 'n = N' / 'k of N subjects' / 'across N subjects' counts subjects that contribute."""
    import html as _html

    import pandas as pd

    from nbdiag.group.pipeline import collect_records

    out = demo_dirs[0]
    page = (out / "group.html").read_text(encoding="utf-8")
    runs = pd.read_csv(out / "group" / "nbdiag_runs.tsv", sep="\t", dtype=str)
    records = collect_records(out)
    subjects = {str(r["run"]["subject"]) for r in records if r.get("status") != "error"}
    verdict = page[page.index('<table id="verdict"'):page.index("</table>", page.index('<table id="verdict"'))]
    # estimates: n is the number of subjects with the measured global signal (independent count)
    measured = {}
    for rec in records:
        for cname, c in (rec.get("contrasts") or {}).items():
            if (c.get("measured") or {}).get("global_signal", {}).get("estimate_ols") is not None:
                measured.setdefault((rec["variant"], cname), set()).add(rec["run"]["subject"])
    ns = re.findall(r"t = [^,<]+, n = (\d+)", verdict)
    assert len(ns) == 9
    for n in ns:
        assert int(n) in {len(v) for v in measured.values()}
    # causes: "k of N subjects", k counted here from by_class (non-zero part in a subject's runs)
    for words, k, n in re.findall(r'title="([^"]+)">[^<]+</span>: <b>[^<]+</b> <span class="more">[^,]+, (\d+) of (\d+) '
                                  r"subjects", verdict):
        cls = _html.unescape(words).split(":", 2)[2]
        hits = {rec["run"]["subject"] for rec in records for c in (rec.get("contrasts") or {}).values()
                if abs(((c.get("measured") or {}).get("global_signal", {}).get("by_class") or {}).get(cls, 0.0))
                > 1e-12}
        assert int(k) <= len(hits) and int(n) == len(subjects)
    # across N subjects anywhere on the page: N subjects were audited
    for n in re.findall(r"[Aa]cross (\d+) subjects?", _html.unescape(re.sub(r"<[^>]+>", "", page))):
        assert int(n) <= len(subjects)
    # runs failing: every run named as failing has status fail in the runs table
    status = {(r["prefix"], r["variant"]): r["status"] for r in runs.to_dict("records")}
    failing = re.findall(r'<td class="variant">([^<]+)</td>(?:(?!<tr).)*?<span class="badge fail" title="([^"]+)"',
                         verdict, flags=re.DOTALL)
    assert failing  # sub-01 fails (non-steady-state volumes) under every variant
    for variant, title in failing:
        for prefix in _html.unescape(title).split(", "):
            assert status[(prefix, variant)] == "fail", (prefix, variant)
    # the status badges of each variant section equal the runs table's counts
    for variant in sorted(runs["variant"].unique()):
        section = page[page.index(f"</span> {variant} "):]
        for sev in ("pass", "warn", "fail", "error"):
            shown = re.search(rf'<span class="badge {sev}">{sev}</span> (\d+)', section)
            assert int(shown.group(1)) == int((runs[runs["variant"] == variant]["status"] == sev).sum())


@needs_chromium
def test_ratings_widget_round_trips_into_signoff(demo_dirs, tmp_path):
    out = demo_dirs[1]
    m, _ = _measure(out / "sub-04.html", 1280, 800)
    saved = m["ratings"]
    assert saved["subject"] == "04" and saved["reviewer"] == "AB"
    assert saved["ratings"] == [{"run": "sub-04_ses-1_task-nback_run-01", "variant": "nortdur",
                                 "rating": "exclude", "comment": "cue gaps, see weights"}]
    path = tmp_path / "sub-04_ratings_AB.json"
    path.write_text(json.dumps(saved))
    code = main([str(DATA_DIR), str(out), "group", "--ratings", str(path)])
    assert code == 3
    so = pd.read_csv(out / "group" / "signoff.tsv", sep="\t", dtype=str, keep_default_na=False)
    assert list(so.columns[-7:-3]) == ["reviewer", "rating", "comment", "final"]
    assert list(so.columns[-3:]) == ["rating_source", "rating_original", "rating_mapping"]  # issue 23
    row = so[(so["prefix"] == "sub-04_ses-1_task-nback_run-01") & (so["variant"] == "nortdur")].iloc[0]
    assert (row["signoff"], row["reviewer"], row["rating"], row["final"]) == ("pass", "AB", "exclude", "fail")
    assert row["comment"] == "AB: cue gaps, see weights"
    others = so.drop(index=row.name)
    assert (others["final"] == others["signoff"]).all() and (others["rating"] == "").all()
    inc = pd.read_csv(out / "group" / "include.tsv", sep="\t", dtype=str)
    assert not ((inc["prefix"] == row["prefix"]) & (inc["variant"] == "nortdur")).any()
    html = (out / "group.html").read_text()
    assert "Reviewers disagree with the automatic sign-off (1)" in html
    # restore the plain group outputs for the other tests
    assert main([str(DATA_DIR), str(out), "group"]) == 3


def test_rating_for_unknown_run_is_refused_by_name(demo_dirs, tmp_path, capsys):
    out = demo_dirs[1]
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"nbdiag_ratings": 1, "subject": "09", "reviewer": "AB", "ratings": [
        {"run": "sub-09_ses-1_task-nback_run-01", "variant": "nortdur", "rating": "include", "comment": ""}]}))
    before = (out / "group" / "signoff.tsv").read_bytes()
    assert main([str(DATA_DIR), str(out), "group", "--ratings", str(path)]) == 2
    err = capsys.readouterr().err
    assert "sub-09_ses-1_task-nback_run-01 [nortdur]" in err and "not in OUTPUT_DIR" in err
    assert (out / "group" / "signoff.tsv").read_bytes() == before  # nothing written
    path.write_text(json.dumps({"ratings": [{"run": "sub-04_ses-1_task-nback_run-01", "variant": "nortdur",
                                             "rating": "maybe"}]}))
    assert main([str(DATA_DIR), str(out), "group", "--ratings", str(path)]) == 2
    assert "must be one of" in capsys.readouterr().err


def test_variant_option_decides_exit_code(tmp_path):
    from report_examples import example_run

    for variant, status in (("nortdur", "pass"), ("compcor", "fail")):
        rec, _ = example_run("01", variant)
        rec["status"] = status
        rec["findings"] = [] if status == "pass" else [f for f in rec["findings"] if f["severity"] == "fail"]
        d = tmp_path / "sub-01" / "ses-1" / "func"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{rec['run']['prefix']}_desc-{variant}_nbdiag.json").write_text(json.dumps(rec))
    assert main(["bids", str(tmp_path), "group"]) == 3
    assert main(["bids", str(tmp_path), "group", "--variant", "nortdur"]) == 0
    so = pd.read_csv(tmp_path / "group" / "signoff.tsv", sep="\t", dtype=str)
    assert list(so["variant"]) == ["nortdur"]
    inc = pd.read_csv(tmp_path / "group" / "include.tsv", sep="\t", dtype=str)
    assert list(inc["variant"]) == ["nortdur"]
    assert "(not deciding sign-off)" in (tmp_path / "group.html").read_text()
    assert main(["bids", str(tmp_path), "group", "--variant", "compcor", "--variant", "nortdur"]) == 3
    assert main(["bids", str(tmp_path), "group", "--variant", "nosuch"]) == 2
    assert main(["bids", str(tmp_path / "out"), "participant", "--variant", "nortdur"]) == 2


def test_sizes_and_sigma_say_where_they_come_from():
    from nbdiag.report.summary import size_basis, verdict_rows

    assumed = size_basis({"source": "pre_block", "label": "a 0.5 % HRF response before each block"})
    assert assumed["kind"] == "assumed" and assumed["size"] == "assumed 0.5 % signal"
    assert "1 % white noise per scan (assumed)" in assumed["sigma"]
    measured = size_basis({"source": "nonsteady", "label": "the excess of the 4 flagged volumes",
                           "magnitude_source": "measured:global_signal",
                           "sd_source": "measured:global_signal residual"})
    assert measured["kind"] == "measured"
    assert measured["size"] == "measured from the confounds column global_signal"
    assert measured["sigma"] == "σ measured from the confounds column global_signal residual"
    from report_examples import contrast, finding, minimal_record, sensitivity

    rec = minimal_record(status="fail", contrasts={"zero_back": contrast("zero_back", sensitivity=[
        sensitivity("nonsteady", label="x", bias=-0.98, bias_sd=-8.0, bias_percent=-0.98, unit="% signal",
                    magnitude_source="measured:global_signal")])},
        findings=[finding("sensitive_unmodeled_signal", "fail", "zero_back",
                          title="zero_back is sensitive to an unmodelled signal (nonsteady)",
                          evidence={"source": "nonsteady", "bias": -0.98, "bias_sd": -8.0})])
    (row,) = verdict_rows([rec], lambda p, v: f"{p}--{v}")
    assert row["status"] == "fail" and row["basis"]["kind"] == "measured"
    assert row["sentence"] == "Unmodelled signal (nonsteady): lowers it by 8.00 σ (0.980 % signal)."


def test_recommendation_names_the_cheapest_variant_that_handles_every_failing_cause():
    from nbdiag.report.group_report import recommend_variant

    def summary(name, codes, eff, n_fail):
        return {"variant": name, "fail_codes": codes, "final_fail": n_fail, "n": 7,
                "efficiency": {"zero_back": eff}}

    line = recommend_variant([summary("a", ["nonsteady_unhandled"], 100.0, 2), summary("b", [], 80.0, 0),
                              summary("c", [], 60.0, 0)], ["zero_back"])
    assert line.startswith("b handles every failing cause (Non-steady-state volumes stay in the model) with 0 of 7 "
                           "runs failing")  # words, not codes
    assert "zero_back 80%" in line
    line = recommend_variant([summary("a", ["x", "y"], 100.0, 3), summary("b", ["x"], 50.0, 1)], ["zero_back"])
    assert line.startswith("No variant handles every failing cause (x fail under every variant); b leaves")
    assert "handles y" in line and "zero_back 50%" in line


def test_an_error_message_is_one_reason_whole():
    """DMCC55B: a CompCor variant erroring on fMRIPrep 1.3.2 outputs; the message holds '; ' and ')'."""
    from nbdiag.report.group_report import (
        _collapse,
        _error_message,
        _reason_codes,
        recommend_variant,
    )

    message = ("compcor needs fMRIPrep's CompCor columns (fMRIPrep < 1.4 did not write it); "
               "a_comp_cor_00 (found no file), scrub_not_applied")
    reasons = f"error: {message}"
    assert _reason_codes(reasons) == ["error"]
    assert _error_message(reasons) == message
    assert _reason_codes("nonsteady_unhandled (zero_back); baseline_scarce") == ["nonsteady_unhandled",
                                                                                 "baseline_scarce"]
    items = _collapse([("error", f"sub-{i:02d}") for i in range(10)], {"error": [message]})
    assert items == [{"reason": "error", "n": 10, "runs": [f"sub-{i:02d}" for i in range(10)],
                      "words": "could not be audited (error)", "messages": [message]}]
    line = recommend_variant([{"variant": "compcor", "fail_codes": ["error"], "final_fail": 10, "n": 10,
                               "efficiency": {"c": 1.0}},
                              {"variant": "plain", "fail_codes": [], "final_fail": 0, "n": 10,
                               "efficiency": {"c": 1.0}}], ["c"])
    assert "runs that could not be audited (error)" in line
    assert "did not write it)" not in line and "found no file)" not in line


def test_input_files_named_relative_to_the_dataset(tmp_path):
    from nbdiag.inputs.bids import bids_uri
    from nbdiag.record.build import relative_to_dataset

    root = tmp_path / "bids"
    assert bids_uri(root / "sub-01" / "func" / "x_events.tsv", root) == "bids::sub-01/func/x_events.tsv"
    assert bids_uri(tmp_path / "elsewhere" / "c.tsv", root) == "c.tsv"  # outside BIDS_DIR: the name only
    assert bids_uri(None, root) is None
    rec = {"settings": {"t_r": {"source": f"RepetitionTime in {root}/derivatives/x_bold.json"}},
           "notes": [f"read {root}.", f"{root}2/other"], "n": 3}
    out = relative_to_dataset(rec, root)
    assert out["settings"]["t_r"]["source"] == "RepetitionTime in bids::derivatives/x_bold.json"
    assert out["notes"] == ["read bids::.", f"{root}2/other"] and out["n"] == 3


def test_subject_first_screen_names_the_fix_of_each_failing_run(demo_dirs):
    """sub-01 fails under every variant: one fix line per run × variant, in nilearn terms, right under
    the verdict table (before the first collapsed section). Under nortdur/rtdur the flagged volumes'
    measured excess fails the run (sample mask); under compcor it stays below the fail size there
    (issue 20: severity from the measured effect), and the drift overlap no longer fails it either: the
    run's global signal holds no drift footprint (verdict battery: a design property fails a run only
    by its measured effect), so compcor has no fix line."""
    page = (demo_dirs[0] / "sub-01.html").read_text(encoding="utf-8")
    block = page[page.index('<ul class="fixes" id="fixes">'):]
    block = block[:block.index("</ul>")]
    assert page.index('id="fixes"') < page.index('<details class="sec"')
    assert page.index('<table id="verdict"') < page.index('id="fixes"')
    lines = block.split("<li>")[1:]
    assert len(lines) == 2  # nortdur, rtdur
    by_variant = {v: next(x for x in lines if f">{v}</a>" in x) for v in ("nortdur", "rtdur")}
    for v in ("nortdur", "rtdur"):
        assert "sample_masks" in by_variant[v] and "FirstLevelModel.fit" in by_variant[v]
        assert 'title="nonsteady_unhandled"' in by_variant[v]  # the code in a tooltip
    assert not any(">compcor</a>" in x for x in lines)
    assert 'id="fixes"' not in (demo_dirs[0] / "sub-04.html").read_text(encoding="utf-8")  # nothing fails there


def test_design_facts_and_findings_count_baseline_epochs_alike(demo_dirs):
    """The design section's count is the one baseline_scarce uses (epochs >= baseline_epoch_seconds)."""
    import html as _html

    from nbdiag.group.pipeline import collect_records

    page = _html.unescape((demo_dirs[0] / "sub-01.html").read_text(encoding="utf-8"))
    rec = next(r for r in collect_records(demo_dirs[0]) if r["run"]["subject"] == "01" and r["variant"] == "nortdur")
    base = rec["diagnostics"]["baseline"]
    long_ = sum(1 for e in base["epochs"] if e["kind"] in ("fixation", "run_edge") and e["duration"] >= 10.0)
    assert long_ == base["n_long_epochs"]
    assert "baseline epochs ≥ 10 s" in page
    assert f"{long_} (of {len(base['epochs'])} unmodelled)" in page
    scarce = next(f for f in rec["findings"] if f["code"] == "baseline_scarce")
    assert f"{long_} unmodelled epoch(s) last at least 10 s" in scarce["message"]


@pytest.mark.parametrize("label", LABELS)
def test_subject_statuses_agree_with_their_rows(demo_dirs, label):
    """An info row whose bias reaches the warn size says why it does not count (capped at info);
    a warn/fail row below it never happens; the run badge is the worst row of its variant."""
    import html as _html

    page = _html.unescape((demo_dirs[0] / f"sub-{label}.html").read_text(encoding="utf-8"))
    places = re.findall(r'<td><span class="badge (\w+)">\w+</span>( <span class="more capped"[^>]*>capped at info[^<]*'
                        r'</span>)?</td><td class="n">([+\-−]?[0-9.]+) σ', page)
    assert places
    for sev, capped, number in places:
        big = abs(float(number.replace("−", "-"))) >= 0.5
        if sev == "info" and big:
            assert capped, number
        if capped:
            assert sev == "info" and big
    cells = re.findall(r'<td class="n ?(sev-\w+)?" title="bias [^"]*?(?:; (\w+))?">([+\-−]?[0-9.]+) σ'
                       r'( <span class="more capped")?', page)
    assert cells
    for shade, sev, number, capped in cells:
        if sev in ("warn", "fail"):
            assert shade == f"sev-{sev}"
        if sev == "info":
            assert shade == "" and bool(capped) == (abs(float(number.replace("−", "-"))) >= 0.5)
