"""Edges of the file boundary: saved-design TSVs, atomic writes, source-dataset metadata."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from nbdiag.core.errors import InputError
from nbdiag.inputs.saved_design import load_saved_design
from nbdiag.outputs.files import _source_dataset, atomic_write_text


@pytest.mark.parametrize("content, message", [
    (b"a\tb\n\xff\xfe\x00\n", "cannot read design TSV"),
    (b"", "cannot read design TSV"),
    (b"a\tb\n", "design file is empty"),
    (b"a\tb\n1\tx\n", "design values must be numbers"),
])
def test_saved_design_bad_files(tmp_path, content, message):
    path = tmp_path / "d.tsv"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        load_saved_design(path, t_r=2.0)


def test_saved_design_sidecar_that_is_not_json_is_ignored(tmp_path):
    path = tmp_path / "d.tsv"
    path.write_text("a\tb\n1\t0\n0\t1\n1\t1\n")
    (tmp_path / "d.json").write_text("{not json")
    with pytest.raises(InputError):  # no t_r from anywhere: an error that says so
        load_saved_design(path)
    design, t_r, _, source = load_saved_design(path, t_r=2.5)
    assert t_r == 2.5 and source == "--t-r"
    np.testing.assert_array_equal(design.index.to_numpy(), [0.0, 2.5, 5.0])


def test_atomic_write_leaves_no_temporary_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "out" / "x.txt"
    atomic_write_text(target, "old")

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert sorted(p.name for p in target.parent.iterdir()) == ["x.txt"]


def test_source_dataset_names_doi_and_version_never_a_path(tmp_path):
    assert _source_dataset(tmp_path) == {}  # no dataset_description.json
    (tmp_path / "dataset_description.json").write_text("[1, 2]")
    assert _source_dataset(tmp_path) == {}
    (tmp_path / "dataset_description.json").write_text(json.dumps(
        {"Name": "x", "DatasetDOI": "10.1/abc", "DatasetVersion": "1.0.2", "Other": 3}))
    assert _source_dataset(tmp_path) == {"DOI": "10.1/abc", "Version": "1.0.2"}
