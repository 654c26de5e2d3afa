"""The finding registry (nbdiag.core.codes): every emitted code is registered, none is a bare string."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from nbdiag.core import codes
from nbdiag.core.findings import SEVERITIES, Finding
from nbdiag.core.thresholds import GROUP_ONLY, THRESHOLD_TABLE

PACKAGE = Path(codes.__file__).resolve().parents[1]
#: test data shipped in the package (moving to tests/, issue 10): it writes codes as record JSON would
NOT_SCANNED = {PACKAGE / "core" / "codes.py"}


def test_every_code_in_the_demo_records_is_registered(demo_output):
    records = sorted(demo_output.rglob("*_nbdiag.json"))
    assert len(records) == 21  # 7 runs x 3 variants
    seen = set()
    for path in records:
        record = json.loads(path.read_text())
        for f in record["findings"]:
            assert f["code"] in codes.REGISTRY, f"{path.name}: unregistered finding code {f['code']!r}"
            seen.add(f["code"])
        for name, c in record.get("contrasts", {}).items():
            for code in c.get("findings", []):
                assert code in codes.REGISTRY, f"{path.name}: contrast {name}: unregistered code {code!r}"
        for wi in record.get("whatif", []):
            assert wi["code"] in codes.REGISTRY
        if record.get("error"):
            assert record["error"]["code"] in codes.REGISTRY
    # the demo exercises the main families (a scan that finds nothing would pass vacuously)
    assert {"nonsteady_unhandled", "baseline_short_gaps", "sensitive_unmodeled_signal",
            "contrast_variance_inflated", "rt_regressor_overlap"} <= seen


def _code_literals(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in codes.REGISTRY]


def test_no_bare_code_strings_outside_the_registry():
    offenders = [f"{path.relative_to(PACKAGE.parent)}:{line}: {value!r}"
                 for path in sorted(PACKAGE.rglob("*.py")) if path not in NOT_SCANNED
                 for line, value in _code_literals(path)]
    assert offenders == [], "use nbdiag.core.codes.<CODE>.code / .finding(...) instead of:\n" + "\n".join(offenders)


def test_the_scan_finds_a_bare_code_string(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text('x = {"code": "vif_high"}\ny = "not_a_code"\n')
    assert _code_literals(bad) == [(1, "vif_high")]


@pytest.mark.parametrize("entry", list(codes.REGISTRY.values()), ids=list(codes.REGISTRY))
def test_entries_are_well_formed(entry):
    assert entry.family in codes.FAMILIES
    assert entry.severity in SEVERITIES
    assert set(entry.thresholds) <= set(THRESHOLD_TABLE)
    assert set(codes.rule_keys(entry.rule)) <= set(entry.thresholds)
    assert entry.title and entry.meaning and entry.rule
    assert codes.REGISTRY[entry.code] is entry is codes.get(entry.code)
    assert getattr(codes, entry.code.upper()) is entry


def test_thresholds_named_by_the_registry_exist():
    named = {k for e in codes.REGISTRY.values() for k in e.thresholds}
    assert named <= set(THRESHOLD_TABLE)
    # every threshold that decides a finding is attributed to one (the baseline epoch/gap
    # definitions are read by baseline_scarce / baseline_short_gaps); the group-only ones
    # decide the rows of group/nbdiag_outliers.tsv
    assert named | set(GROUP_ONLY) == set(THRESHOLD_TABLE) and not named & set(GROUP_ONLY)


def test_finding_defaults_come_from_the_entry():
    f = codes.VIF_HIGH.finding("m", evidence={"vif": 6.0})
    assert f == Finding(code="vif_high", severity="warn", title=codes.VIF_HIGH.title, message="m",
                        evidence={"vif": 6.0}, contrast=None, score=0.0, fix=codes.VIF_HIGH.fix)
    g = codes.VIF_HIGH.finding("m", severity="fail", title="t", fix=None, contrast="c", score=2.0)
    assert (g.severity, g.title, g.fix, g.contrast, g.score, g.evidence) == ("fail", "t", None, "c", 2.0, {})


def test_bad_entries_are_refused():
    with pytest.raises(ValueError, match="unknown"):
        codes.Code("x_y", "design", "warn", "t", "m", thresholds=("no_such_threshold",))
    with pytest.raises(ValueError, match="family"):
        codes.Code("x_y", "nope", "warn", "t", "m")
    with pytest.raises(ValueError, match="severity"):
        codes.Code("x_y", "design", "bad", "t", "m")
    with pytest.raises(ValueError, match="rule"):
        codes.Code("x_y", "design", "warn", "t", "m", thresholds=("vif_warn",), rule="warn ≥ {vif_fail}")
    with pytest.raises(ValueError, match="twice"):
        codes._register(codes.VIF_HIGH)
    with pytest.raises(KeyError, match="unknown finding code 'nope'"):
        codes.get("nope")


def test_rule_text_uses_the_threshold_defaults():
    assert codes.VIF_HIGH.rule_text() == "warn ≥ 5, fail ≥ 10"
    # issue 11: per-contrast severity follows the predicted bias (graded, not cliffs)
    assert codes.BASELINE_UNMODELED_EVENTS.rule_text() == (
        "≥ 5% of negative weight; per contrast warn when the events' response moves it by ≥ 0.5 σ "
        "(fail ≥ 2 σ or ≥ 25%), else info")


README = PACKAGE.parent / "README.md"


def test_readme_findings_table_matches_the_registry():
    text = README.read_text(encoding="utf-8")
    assert codes.replace_table(text) == text, (
        "README's findings table differs from nbdiag.core.codes; run python -m nbdiag.core.codes --write-readme")
    block = text[text.index(codes.TABLE_START):text.index(codes.TABLE_END)]
    for code in codes.REGISTRY:
        assert f"| `{code}` |" in block
    for key in THRESHOLD_TABLE:
        assert f"| `{key}` |" in block


def test_write_and_check_readme_and_schema(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{codes.TABLE_START}\nstale\n{codes.TABLE_END}\n\nafter\n", encoding="utf-8")
    schema = tmp_path / "record.schema.json"
    schema.write_text(json.dumps({"$defs": {"code": {"enum": ["vif_high", "old_code"]}}}), encoding="utf-8")
    assert codes.main(["--check-readme", str(readme)]) == 1
    assert "--write-readme" in capsys.readouterr().err
    assert codes.main(["--check-schema", str(schema)]) == 1
    assert codes.main(["--write-readme", str(readme), "--write-schema", str(schema)]) == 0
    text = readme.read_text(encoding="utf-8")
    assert "stale" not in text and text.endswith(f"{codes.TABLE_END}\n\nafter\n")
    assert codes.markdown_table() in text
    assert json.loads(schema.read_text(encoding="utf-8"))["$defs"]["code"]["enum"] == list(codes.REGISTRY)
    assert codes.main(["--check-readme", str(readme), "--check-schema", str(schema)]) == 0
    capsys.readouterr()
    assert codes.main([]) == 0
    assert capsys.readouterr().out == codes.markdown_table()
    with pytest.raises(ValueError, match="findings-table:start"):
        codes.replace_table("no markers here")


def test_table_cells_escape_pipes():
    row = next(line for line in codes.markdown_table().splitlines() if "`correlation_high`" in line)
    assert "\\|r\\|" in row and row.count(" | ") == 5
