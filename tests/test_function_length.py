"""No function in nbdiag/ longer than MAX_LINES (issue 21: "no function over ~80 lines").

A function's length is its ``def`` line to its last line, docstring included, as ``ast``
reports it (nested functions count on their own). ``ALLOWED`` lists the functions still
being split; empty it as they are: an entry whose function is gone or already short fails
too, so the list only shrinks.
"""

from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

import pytest

MAX_LINES = 80
ROOT = Path(__file__).resolve().parents[1] / "nbdiag"

#: module.function -> still longer than MAX_LINES (being split by other work; remove when done). Empty:
#: every function in nbdiag/ is within the limit; a new long one is split, not listed here.
ALLOWED: set[str] = set()


@lru_cache(maxsize=None)
def function_lengths(root: Path = ROOT) -> dict[str, int]:
    """``{module.function: lines}`` of every function (and method) under ``root``."""
    out: dict[str, int] = {}
    for path in sorted(root.rglob("*.py")):
        module = ".".join(path.relative_to(root.parent).with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{module}.{node.name}"
                out[name] = max(out.get(name, 0), node.end_lineno - node.lineno + 1)
    return out


def test_no_function_is_longer_than_the_limit():
    long = {name: n for name, n in function_lengths().items() if n > MAX_LINES and name not in ALLOWED}
    assert not long, (f"functions over {MAX_LINES} lines (split them into named, documented helpers): "
                      + ", ".join(f"{k} ({v})" for k, v in sorted(long.items())))


def test_the_allow_list_only_shrinks():
    lengths = function_lengths()
    stale = sorted(name for name in ALLOWED if lengths.get(name, 0) <= MAX_LINES)
    assert not stale, f"remove from ALLOWED in {Path(__file__).name} (gone or now short): {', '.join(stale)}"


def test_the_length_check_sees_a_long_function(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))
    (package / "mod.py").write_text(f"def short():\n    return 1\n\n\ndef long():\n{body}\n", encoding="utf-8")
    lengths = function_lengths(package)
    assert lengths == {"pkg.mod.short": 2, "pkg.mod.long": MAX_LINES + 1}


@pytest.mark.parametrize("name", ["nbdiag.inputs.fmriprep.load_run_confounds", "nbdiag.design.hrf.compute_regressor_fast",
                                  "nbdiag.demo.synth.dataset.write_dataset"])
def test_functions_split_here_are_measured(name):
    assert 0 < function_lengths()[name] <= MAX_LINES
