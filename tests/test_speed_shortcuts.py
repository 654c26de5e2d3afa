"""Shortcuts of the participant level's speed work (issue 20) give what the long way gives.

Each test runs the shortcut and the code it replaces on the same input: the per-column
constant test, nilearn's high-res grid, and the dataset-path rewrite of a run record.
"""

from __future__ import annotations

import copy
import pickle
import threading

import numpy as np
import pytest

from nbdiag.design import hrf
from nbdiag.diagnostics._linalg import DesignAlgebra, constant_columns, is_constant_column, with_intercept
from nbdiag.record.build import _FRESH_SECTIONS, _may_hold, relative_to_dataset


def _columns():
    rng = np.random.default_rng(3)
    n = 40
    cols = [np.ones(n), np.zeros(n), rng.normal(size=n), np.full(n, -3.5), 5.0 + 1e-14 * rng.normal(size=n),
            1e-20 * np.ones(n), np.r_[np.ones(n - 1), np.nan], np.full(n, np.inf), np.r_[np.zeros(n - 1), 1.0]]
    return np.column_stack(cols)


def test_constant_columns_equal_the_per_column_rule():
    X = _columns()
    with np.errstate(invalid="ignore"):
        expected = [is_constant_column(X[:, j]) for j in range(X.shape[1])]
        got = constant_columns(X).tolist()
    assert got == expected == [True, False, False, True, True, True, False, False, False]


def test_with_intercept_and_vif_design_follow_the_per_column_rule():
    X = _columns()[:, [2, 8]]
    assert with_intercept(X).shape[1] == 3  # no constant column: one appended
    Y = _columns()[:, [2, 3]]
    assert with_intercept(Y) is Y  # already has one
    Z = _columns()[:, [0, 1, 2, 4, 8]]
    keep, _ = DesignAlgebra.of(Z).centred
    assert keep.tolist() == [not is_constant_column(Z[:, j]) and np.ptp(Z[:, j]) > 0 for j in range(Z.shape[1])]
    empty = DesignAlgebra.of(np.zeros((0, 2)))
    with pytest.raises(ValueError):  # no rows: the per-column rule raises as before
        _ = empty.centred


@pytest.mark.parametrize("min_onset, oversampling", [(-24.0, 50), (0.0, 16)])
def test_memoised_grid_equals_a_fresh_one(min_onset, oversampling):
    ft = np.arange(30) * 2.0 + 0.5
    hrf.clear_cache()
    first = hrf._high_res_grid(ft, min_onset, oversampling)
    again = hrf._high_res_grid(ft.copy(), min_onset, oversampling)
    assert again is first and not first.flags.writeable
    n = hrf._NILEARN.n_frames_high_res(ft, min_onset, oversampling)
    fresh = np.linspace(ft.min() + min_onset, ft.max() * (1 + 1.0 / (ft.size - 1)), np.rint(n).astype(int))
    assert first.tobytes() == fresh.tobytes()
    cond = np.array([[3.0, 20.0], [2.0, 0.0], [1.0, 1.0]])
    warm = hrf.compute_regressor_fast(cond, "glover", ft, min_onset=min_onset, oversampling=oversampling)[0]
    hrf.clear_cache()
    assert not hrf._GRIDS
    cold = hrf.compute_regressor_fast(cond, "glover", ft, min_onset=min_onset, oversampling=oversampling)[0]
    assert warm.tobytes() == cold.tobytes()


def test_grid_memo_is_bounded():
    hrf.clear_cache()
    for k in range(12):
        hrf._high_res_grid(np.arange(10.0) + k, -24.0, 50)
    assert len(hrf._GRIDS) == 8


def _walked(rec, root):
    """The long way: every section walked (a record that is not a completed one)."""
    out = relative_to_dataset({**rec, "error": "x"}, root)
    out["error"] = None
    return out


def _record(root):
    return {"run": {"files": {"bold": f"{root}/sub-01/func/b.nii.gz"}}, "error": None, "status": "pass",
            "settings": {"t_r": {"source": f"RepetitionTime in {root}/x_bold.json"}},
            "confounds": {"raw_columns": ["global_signal", "csf"], "nilearn_warnings": []},
            "events": {"modeled": [{"onset": 1.0, "trial_type": "a"}]},
            "diagnostics": {"drift": {"spectra": [0.1, float("nan"), 2.0]}, "baseline": {"kind": "fixation"}},
            "contrasts": {"a": {"explanation": "no path here", "weights": [0.5, -0.5]}},
            "whatif": [], "measured": {"mode": "confounds"},
            "findings": [{"message": f"see {root}/sub-01/func/b_events.tsv", "evidence": {"file": f"{root}."}}]}


def test_completed_record_is_rewritten_as_by_the_full_walk(tmp_path):
    root = tmp_path / "bids"
    rec = _record(root)
    before = copy.deepcopy(rec)
    fast, slow = relative_to_dataset(rec, root), _walked(rec, root)
    assert pickle.dumps(fast) == pickle.dumps(slow)
    assert fast["findings"][0]["message"] == "see bids::sub-01/func/b_events.tsv"
    assert fast["findings"][0]["evidence"]["file"] == "bids::."
    assert fast["run"]["files"]["bold"] == "bids::sub-01/func/b.nii.gz"
    assert pickle.dumps(rec) == pickle.dumps(before)  # the input is not modified
    # a fresh section without a path is kept as it is (the walk would copy it unchanged)
    assert fast["contrasts"] is rec["contrasts"] and fast["diagnostics"] is rec["diagnostics"]
    assert fast["findings"] is not rec["findings"] and fast["settings"] is not rec["settings"]
    assert set(_FRESH_SECTIONS) <= set(rec)


def test_paths_in_every_fresh_section_are_found(tmp_path):
    root = tmp_path / "bids"
    for key in sorted(_FRESH_SECTIONS):
        rec = _record(root)
        rec[key] = {"deep": [{"text": f"α {root}/a.tsv"}]}
        out = relative_to_dataset(rec, root)
        assert out[key] == {"deep": [{"text": "α bids::a.tsv"}]}, key


def test_unpicklable_sections_are_walked_and_non_utf8_paths_found(tmp_path):
    root = tmp_path / "bids"
    lock = threading.Lock()
    rec = _record(root)
    rec["diagnostics"] = {"lock": lock, "note": f"{root}/x"}
    assert _may_hold(rec["diagnostics"], [b"nothing"])  # cannot be pickled: counts as holding a path
    out = relative_to_dataset(rec, root)
    assert out["diagnostics"] == {"lock": lock, "note": "bids::x"}
    odd = tmp_path / "b\udcffids"  # a folder name that is not valid UTF-8 (surrogate escape)
    rec = _record(odd)
    out = relative_to_dataset(rec, odd)
    assert out["findings"][0]["message"] == "see bids::sub-01/func/b_events.tsv"
    assert out["contrasts"] == rec["contrasts"]


def test_error_records_are_walked_whole(tmp_path):
    root = tmp_path / "bids"
    rec = {**_record(root), "error": {"message": f"cannot read {root}/x.tsv"}}
    out = relative_to_dataset(rec, root)
    assert out["error"] == {"message": "cannot read bids::x.tsv"}
    assert out["contrasts"] is not rec["contrasts"] and out["contrasts"] == rec["contrasts"]


def test_participant_loop_freezes_only_what_it_found_and_restores_it():
    import gc

    from nbdiag.participant.pipeline import _long_lived_frozen

    assert gc.get_freeze_count() == 0
    keep = [object() for _ in range(3)]
    with _long_lived_frozen():
        assert gc.get_freeze_count() > 0  # objects alive before the runs: out of the full collections' reach
        new = [[]]  # made during the runs: collected as usual
        assert gc.is_tracked(new)
    assert gc.get_freeze_count() == 0 and keep
    with pytest.raises(RuntimeError):
        with _long_lived_frozen():
            raise RuntimeError("a run failed")
    assert gc.get_freeze_count() == 0  # restored on the way out of an error
    gc.freeze()  # the caller froze objects itself: left alone
    try:
        frozen = gc.get_freeze_count()
        with _long_lived_frozen():
            assert gc.get_freeze_count() == frozen
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()


def test_participant_level_runs_with_the_heap_frozen(small_bids, tmp_path, monkeypatch):
    import gc

    from nbdiag.participant import pipeline
    from nbdiag.config import load_config
    from nbdiag.demo.run import CONFIG

    seen = []
    original = pipeline._timed

    def timed(*args):
        seen.append(gc.get_freeze_count())
        return original(*args)

    monkeypatch.setattr(pipeline, "_timed", timed)
    pipeline.run_participant(small_bids, tmp_path / "out", load_config(CONFIG), reports=False,
                             log=lambda line: None)
    assert seen and all(count > 0 for count in seen)
    assert gc.get_freeze_count() == 0


def test_column_values_equal_pandas_label_selection():
    import pandas as pd

    from nbdiag.diagnostics._linalg import column_values

    rng = np.random.default_rng(5)
    design = pd.DataFrame(rng.normal(size=(20, 5)), columns=["a", "b", "c", "d", "e"])
    for names in (["c", "a"], ["e"], [], ["a", "b", "c", "d", "e"]):
        np.testing.assert_array_equal(column_values(design, names), design[names].to_numpy(dtype=float))
    twice = pd.DataFrame(rng.normal(size=(20, 3)), columns=["a", "a", "b"])  # repeated names: pandas' answer
    np.testing.assert_array_equal(column_values(twice, ["a", "b"]), twice[["a", "b"]].to_numpy(dtype=float))
    assert column_values(twice, ["a"]).shape == (20, 2)
    with pytest.raises(KeyError, match="zz"):
        column_values(design, ["a", "zz"])


def test_censoring_task_frame_equals_the_label_selection():
    import pandas as pd

    from nbdiag.design.context import DesignContext
    from nbdiag.diagnostics.censoring import full_task

    rng = np.random.default_rng(6)
    design = pd.DataFrame(rng.normal(size=(12, 4)), columns=["x", "y", "drift_1", "constant"],
                          index=np.arange(12) * 2.0)
    roles = {"x": "task", "y": "task", "drift_1": "drift", "constant": "constant"}
    got = full_task(design, roles, DesignContext(t_r=2.0))
    pd.testing.assert_frame_equal(got, design[["x", "y"]].reset_index(drop=True))


@pytest.mark.parametrize("shuffle", [False, True])
def test_scans_within_pieces_equal_the_per_piece_count(shuffle):
    from nbdiag.diagnostics.baseline import _scans_within

    rng = np.random.default_rng(8)
    times = np.arange(200) * 0.8 + 0.4
    if shuffle:
        rng.shuffle(times)
    edges = np.sort(rng.uniform(-5, 170, 60))
    edges[5] = times[10] if not shuffle else edges[5]  # a piece starting exactly on a frame time
    pieces = [{"start": float(a), "end": float(b)} for a, b in zip(edges[:-1], edges[1:])]
    want = [int(np.sum((times >= p["start"] - 1e-9) & (times < p["end"] - 1e-9))) for p in pieces]
    assert _scans_within(times, pieces) == want
    assert sum(want) > 0


@pytest.mark.parametrize("order", [1, 2, 3])
def test_whitening_rows_at_once_equals_one_series_at_a_time(order):
    from nbdiag.diagnostics.measured import _whiten, _whiten_rows

    rng = np.random.default_rng(order)
    V = rng.normal(size=(6, 50))
    rho = rng.uniform(-0.5, 0.5, order)
    W = _whiten_rows(V, rho)
    for row, w in zip(V, W):
        np.testing.assert_array_equal(w, _whiten(row, rho))
        c = rng.normal(size=50)
        assert float(c @ w) == float(c @ _whiten(row, rho))
    assert _whiten_rows(np.zeros((0,)), rho).size == 0


def test_timeline_without_flagged_volumes_is_the_same_with_or_without_nonsteady_cuts():
    import pandas as pd

    from nbdiag.core.thresholds import Thresholds
    from nbdiag.design.context import DesignContext
    from nbdiag.diagnostics.baseline import _timeline

    events = pd.DataFrame({"onset": [10.0, 40.0, 43.0, 80.0], "duration": [20.0, 2.0, 2.0, 20.0],
                           "trial_type": ["a", "b", "b", "a"]})
    design = pd.DataFrame({"a": np.zeros(60), "b": np.zeros(60), "constant": np.ones(60)},
                          index=np.arange(60) * 2.0)
    th = Thresholds()
    quiet = DesignContext(t_r=2.0, events=events)
    assert _timeline(design, quiet, th, True).pieces == _timeline(design, quiet, th, False).pieces
    flagged = DesignContext(t_r=2.0, events=events, nonsteady_volumes=(0, 1))
    assert _timeline(design, flagged, th, True).pieces != _timeline(design, flagged, th, False).pieces


def _standing_out_loop(dev, steady, ns, thr, rough):
    """The per-volume loop ``measured._standing_out`` replaced (two np.median calls per volume)."""
    from nbdiag.diagnostics.measured import LOCAL_WINDOW as w

    steady_dev = np.where(steady, dev, np.nan)
    cand = np.flatnonzero(np.isfinite(dev) & (np.abs(dev - rough) > 0.5 * thr))
    stands = np.zeros(dev.size, dtype=bool)
    local_of = {}
    for v in sorted(set(cand.tolist()) | ns):
        nb = np.concatenate([steady_dev[max(v - w, 0):v], steady_dev[v + 1:v + 1 + w]])
        nb = nb[np.isfinite(nb)]
        local_of[v] = local = float(np.median(nb)) if nb.size else 0.0
        stands[v] = abs(dev[v] - local) > thr
    calm = np.where(stands, np.nan, steady_dev)
    for v in local_of:
        nb = np.concatenate([calm[max(v - w, 0):v], calm[v + 1:v + 1 + w]])
        nb = nb[np.isfinite(nb)]
        if nb.size:
            local_of[v] = float(np.median(nb))
    return stands, local_of


@pytest.mark.parametrize("seed", range(12))
def test_standing_out_equals_the_per_volume_medians(seed):
    """Vectorised neighbour medians: the same volumes and the same local levels (spikes, flagged volumes, NaN/inf values, unsteady stretches, runs shorter than the window)."""
    from nbdiag.diagnostics.measured import _running_level, _standing_out

    rng = np.random.default_rng(seed)
    n = int(rng.choice([5, 12, 60, 300]))
    dev = rng.normal(size=n).round(int(rng.integers(1, 4)))  # rounding: ties, even-count medians
    spikes = rng.choice(n, size=max(1, n // 20), replace=False)
    dev[spikes] += rng.choice([-8.0, 8.0], size=spikes.size)
    steady = rng.random(n) > 0.1
    if seed % 3 == 0:
        dev[rng.choice(n, size=2, replace=False)] = [np.nan, np.inf][: 2]
    ns = set(rng.choice(n, size=min(3, n), replace=False).tolist()) if seed % 2 else set()
    rough = _running_level(dev, steady)
    stands, local_of = _standing_out(dev, steady, ns, 3.0, rough)
    ref_stands, ref_local = _standing_out_loop(dev, steady, ns, 3.0, rough)
    assert stands.tolist() == ref_stands.tolist()
    assert list(local_of) == list(ref_local)
    # the same numbers; the bits too, except the sign of a zero median (np.median's partition picks
    # either of two equal values, -0.0 or 0.0, by position)
    assert list(local_of.values()) == list(ref_local.values())
    assert [np.float64(v).tobytes() for v in local_of.values() if v != 0] == \
        [np.float64(v).tobytes() for v in ref_local.values() if v != 0]


@pytest.mark.parametrize("seed", range(6))
def test_local_levels_equal_the_per_volume_medians(seed):
    """``measured.local_levels`` (neighbour medians at once) gives the per-volume loop's levels: steady
    neighbours within the window, the volume left out, the whole steady median where none is near."""
    from nbdiag.diagnostics.measured import LOCAL_WINDOW as w
    from nbdiag.diagnostics.measured import local_levels

    rng = np.random.default_rng(seed)
    n = int(rng.choice([3, 20, 200]))
    s = rng.normal(500.0, 5.0, n)
    s[rng.choice(n, size=1)] = np.nan
    steady = rng.random(n) > (0.9 if seed == 5 else 0.2)  # seed 5: few steady volumes, some with none near
    vols = sorted(set(rng.choice(n, size=min(5, n), replace=False).tolist()) | {0, n - 1})
    ok = steady & np.isfinite(s)
    whole = float(np.median(s[ok])) if ok.any() else float("nan")
    ref = []
    for v in vols:
        lo, hi = max(v - w, 0), min(v + w + 1, n)
        near = ok[lo:hi].copy()
        near[v - lo] = False
        ref.append(float(np.median(s[lo:hi][near])) if near.any() else whole)
    np.testing.assert_array_equal(local_levels(s, vols, steady), np.array(ref))
    assert local_levels(s, [], steady).shape == (0,)
    assert np.isnan(local_levels(np.zeros(0), [0], np.zeros(0, dtype=bool))).all()
