"""Small foundation helpers: jsonable's documented rules, OUTPUT_DIR checks, lazy package attributes."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import nbdiag
from nbdiag._json import jsonable
from nbdiag.outputs import atomic_write_text, check_output_dir


class _HasDict:
    def to_dict(self):
        return {"a": np.float32(1.5), 2: np.nan}


def test_jsonable_rules():
    assert jsonable(np.array(3.0)) == 3.0 and jsonable(np.array(np.inf)) is None
    assert jsonable(np.bool_(True)) is True and jsonable(np.int16(4)) == 4
    assert jsonable(np.float32(np.nan)) is None
    assert jsonable(_HasDict()) == {"a": 1.5, "2": None}
    assert jsonable(pd.DataFrame({"x": [1, 2]})) == [{"x": 1}, {"x": 2}]
    assert jsonable(Path("a/b")) == os.path.join("a", "b")
    assert jsonable((1, [np.float64(2.0)])) == [1, [2.0]]


def test_package_lazy_attribute():
    from nbdiag.api import Audit

    assert nbdiag.Audit is Audit
    with pytest.raises(AttributeError, match="module 'nbdiag' has no attribute 'nothing'"):
        nbdiag.nothing  # noqa: B018


def test_check_output_dir_refuses_file_and_readonly(tmp_path):
    f = tmp_path / "out.txt"
    f.write_text("x")
    with pytest.raises(ValueError, match="is an existing file; expected a folder"):
        check_output_dir(f)
    assert check_output_dir(tmp_path / "new") == (tmp_path / "new").absolute()
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        try:
            with pytest.raises(ValueError, match="is not writable"):
                check_output_dir(ro)
        finally:
            ro.chmod(0o700)


def test_atomic_write_leaves_no_temp_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "a.json"
    target.write_text("old")

    def fail(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]
