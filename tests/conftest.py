"""Shared pytest fixtures: synthetic BIDS + fMRIPrep datasets.

Fixtures
--------
make_bids
    Factory ``make_bids(path, spec=None, *, subdir="bids") -> Path`` that
    writes a dataset with :func:`nbdiag.demo.synth.write_dataset` and returns
    its root (``path / subdir``; outputs can go in a sibling folder).
    ``spec`` defaults to :func:`nbdiag.demo.synth.small_spec`.
small_spec
    A fresh :class:`~nbdiag.demo.synth.DatasetSpec` from ``small_spec()``:
    ``sub-01`` (ses-1 run-01 with 2 non-steady volumes, ses-1 run-02 without
    INSTRUCTION rows, ses-2 run-01, ses-2 ``acq-VARIANTObliquity`` run-02 with
    110 scans, 3 non-steady volumes and a motion outlier at volume 50) and
    ``sub-02`` (no session, run-01, StartTime 1.0 s, motion correlated with
    the 2BACK blocks).  Tiny real images, TR 2.0 s, 120 scans: nilearn fits
    take ~0.1 s per subject.
small_bids
    That dataset, written once per test session.  Read-only: do not write
    into it (use ``make_bids(tmp_path)`` for a private copy).
demo_bids
    The committed demo dataset (``nbdiag/demo/data``, header-only images).
forum_toml
    Factory ``forum_toml(high_pass=0.005, contrasts=(...)) -> str``: the forum post's
    ``first_level_from_bids`` call as a TOML config (fMRIPrep derivatives of the demo
    layout, 0BACK/2BACK renamed, variants ``nortdur`` and ``rtdur``).

Examples
--------
>>> def test_something(make_bids, tmp_path):  # doctest: +SKIP
...     from nbdiag.demo.synth import RunSpec, DatasetSpec
...     spec = DatasetSpec([RunSpec("01", session="1", run=1, n_scans=100,
...                                 t_r=2.0, n_nonsteady=3)])
...     root = make_bids(tmp_path, spec)
...     models, imgs, events, confounds = first_level_from_bids(
...         root, "nback", space_label=spec.space,
...         img_filters=[("desc", "preproc")],
...         derivatives_folder=spec.derivatives)

Specs can be tweaked with :func:`dataclasses.replace` or
:func:`nbdiag.demo.synth.with_runs` (e.g. ``with_runs(spec, image="header")``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from nbdiag.demo.synth import DatasetSpec, small_spec as _small_spec, write_dataset

MakeBids = Callable[..., Path]

DEMO_DATA = Path(__file__).resolve().parents[1] / "nbdiag" / "demo" / "data"


def _make_bids(
    path: str | Path, spec: DatasetSpec | None = None, *, subdir: str = "bids"
) -> Path:
    """Write ``spec`` (default ``small_spec()``) at ``path/subdir``.

    Parameters
    ----------
    path : str or Path
        Parent folder, typically pytest's ``tmp_path``.
    spec : DatasetSpec, optional
        Dataset to write; default :func:`nbdiag.demo.synth.small_spec`.
    subdir : str, default="bids"
        Name of the dataset root inside ``path`` ("" for ``path`` itself).

    Returns
    -------
    Path
        The absolute dataset root.
    """
    root = Path(path) / subdir if subdir else Path(path)
    return write_dataset(root, spec if spec is not None else _small_spec())


#: The forum post's settings (``nbdiag/demo/nbdiag.toml`` without its compcor variant).
FORUM_TOML = """
[model]
task_label = "nback"
space_label = "MNI152NLin6Asym"
derivatives_folder = "derivatives/fmriprep"
img_filters = [["desc", "preproc"]]
drift_model = "cosine"
high_pass = {high_pass}
confounds_strategy = ["motion", "non_steady_state"]
confounds_motion = "basic"

[events]
rename = {{ "0BACK" = "zero_back", "2BACK" = "two_back" }}

[contrasts]
{contrasts}

[variants.nortdur]

[variants.rtdur]
events.transform = ["rtdur"]
"""
FORUM_CONTRASTS = ("two_back - zero_back", "two_back", "zero_back")


def _forum_toml(high_pass: float = 0.005, contrasts: tuple[str, ...] = FORUM_CONTRASTS) -> str:
    return FORUM_TOML.format(high_pass=high_pass, contrasts="\n".join(f'"{c}" = "{c}"' for c in contrasts))


@pytest.fixture(scope="session")
def forum_toml() -> Callable[..., str]:
    """Factory: the forum post's TOML config text (see the module docstring)."""
    return _forum_toml


@pytest.fixture
def make_bids() -> MakeBids:
    """Factory fixture: ``make_bids(tmp_path, spec=None) -> root``."""
    return _make_bids


@pytest.fixture
def small_spec() -> DatasetSpec:
    """A fresh ``nbdiag.demo.synth.small_spec()`` (see module docstring)."""
    return _small_spec()


@pytest.fixture(scope="session")
def small_bids(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``small_spec()`` written once per session; treat as read-only."""
    return _make_bids(tmp_path_factory.mktemp("small_bids"))


@pytest.fixture(scope="session")
def demo_bids() -> Path:
    """Root of the committed demo dataset (skips if it is not there)."""
    if not (DEMO_DATA / "dataset_description.json").is_file():
        pytest.skip("demo dataset not generated (python -m nbdiag.demo.make_demo)")
    return DEMO_DATA


@pytest.fixture(scope="session", autouse=True)
def _stop_joblib_workers():
    """Stop joblib's reusable loky workers when the session ends.

    Coverage measures the workers (``patch = ["subprocess"]`` in pyproject.toml);
    each writes its data file when it exits. Stopping them here, before
    pytest-cov combines the data files, is what gets their lines counted.
    """
    yield
    try:
        from joblib.externals.loky import get_reusable_executor
    except ImportError:  # pragma: no cover - joblib always ships loky
        return
    get_reusable_executor().shutdown(wait=True)


@pytest.fixture(scope="session")
def demo_output(demo_bids: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo dataset audited at participant level (no HTML) into a temporary folder; read-only."""
    from nbdiag.config import load_config
    from nbdiag.demo.run import CONFIG
    from nbdiag.participant.pipeline import run_participant

    out = tmp_path_factory.mktemp("demo_output")
    run_participant(demo_bids, out, load_config(CONFIG), reports=False, log=lambda line: None)
    return out


@pytest.fixture(autouse=True, scope="session")
def _round_trip_every_written_record():
    """Every ``*_nbdiag.json`` a test writes in this process survives the typed model's round trip:
    ``to_json(from_json(j))`` is the JSON written, byte for byte (tests/record_schema.py)."""
    from nbdiag.outputs import files

    from record_schema import assert_round_trip

    original = files.write_record_json

    def checked(path, data):
        if str(path).endswith("_nbdiag.json"):
            assert_round_trip(data, str(path))
        return original(path, data)

    files.write_record_json = checked
    yield
    files.write_record_json = original


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every browser test ``slow``: those skipped without headless Chromium.

    The other slow tests (subprocesses, SIGKILL, Dask, the README's shell blocks) carry
    ``@pytest.mark.slow`` themselves; ``pytest -m "not slow"`` leaves all of them out.
    """
    for item in items:
        if any("chromium" in str(m.kwargs.get("reason", "")).lower() for m in item.iter_markers("skipif")):
            item.add_marker(pytest.mark.slow)
