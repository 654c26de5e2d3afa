"""compute_regressor_fast equals nilearn's compute_regressor."""

import warnings

import numpy as np
import pytest
from nilearn.glm.first_level import compute_regressor

from nbdiag.design import hrf as _hrf
from nbdiag.design.hrf import clear_cache, compute_regressor_fast

MODELS = ["glover", "glover + derivative", "glover + derivative + dispersion",
          "spm", "spm + derivative", "spm + derivative + dispersion", None]


def _close(a, b, rtol=1e-8):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape
    scale = max(np.abs(b).max(), 1e-300)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale)


def _random_case(rng, n_events=None):
    t_r = float(rng.choice([0.5, 0.8, 1.0, 2.0, 2.5, 0.72]))
    n = int(rng.integers(20, 400))
    str_ = float(rng.choice([0.0, 0.5, 0.3]))
    ft = np.linspace(str_ * t_r, (n - 1 + str_) * t_r, n)
    k = int(rng.integers(1, 40) if n_events is None else n_events)
    on = np.sort(rng.uniform(-10, n * t_r + 5, k))
    dur = rng.choice([0.0, 0.5, 1.0, 3.0, 20.0, 30.0], k) * rng.uniform(0.5, 1.5, k)
    amp = rng.choice([1.0, -0.5, 2.3], k)
    return np.vstack([on, dur, amp]), ft


@pytest.mark.parametrize("model", MODELS)
def test_random_inputs_match_nilearn(model):
    rng = np.random.default_rng(1000 + MODELS.index(model))  # fixed per model (hash() of a str varies per process)
    for _ in range(15):
        clear_cache()
        cond, ft = _random_case(rng)
        os_ = int(rng.choice([50, 16, 1]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref, ref_names = compute_regressor(cond, model, ft, con_id="c", oversampling=os_)
            got, names = compute_regressor_fast(cond, model, ft, con_id="c", oversampling=os_)
        assert names == ref_names
        _close(got, ref)


@pytest.mark.parametrize("delays", [[0], [0, 1, 2, 5], [3]])
@pytest.mark.parametrize("os_", [50, 10, 1])
def test_fir_matches_nilearn(delays, os_):
    rng = np.random.default_rng(7)
    for _ in range(5):
        cond, ft = _random_case(rng)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref, rn = compute_regressor(cond, "fir", ft, con_id="x", oversampling=os_, fir_delays=delays)
            got, gn = compute_regressor_fast(cond, "fir", ft, con_id="x", oversampling=os_, fir_delays=delays)
        assert gn == rn
        _close(got, ref)


def test_dense_fft_path_matches(monkeypatch):
    monkeypatch.setattr(_hrf, "_SPARSE_MAX_PRODUCTS", 0)
    rng = np.random.default_rng(3)
    for model in ["glover", "spm + derivative + dispersion"]:
        for _ in range(5):
            clear_cache()
            cond, ft = _random_case(rng, n_events=60)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ref, _ = compute_regressor(cond, model, ft)
                got, _ = compute_regressor_fast(cond, model, ft)
            _close(got, ref)


def test_many_events_chunked(monkeypatch):
    monkeypatch.setattr(_hrf, "_SPARSE_MAX_PRODUCTS", 5000)  # forces several chunks... and the FFT path
    rng = np.random.default_rng(11)
    cond, ft = _random_case(rng, n_events=300)
    ref, _ = compute_regressor(cond, "glover", ft)
    _close(compute_regressor_fast(cond, "glover", ft)[0], ref)
    monkeypatch.setattr(_hrf, "_SPARSE_MAX_PRODUCTS", 10**9)
    clear_cache()
    _close(compute_regressor_fast(cond, "glover", ft)[0], ref)


def test_exact_zeros_stay_zero():
    # before the first event and long after a single event nilearn gives exact zeros
    ft = np.linspace(0, 299 * 0.8, 300)
    cond = np.array([[100.0], [10.0], [1.0]])
    ref, _ = compute_regressor(cond, "glover", ft)
    got, _ = compute_regressor_fast(cond, "glover", ft)
    assert np.array_equal(ref == 0, got == 0)
    _close(got, ref)


def test_demo_like_block_design_and_modulation():
    t_r, n = 0.8, 520
    ft = np.linspace(0, (n - 1) * t_r, n)
    on = np.arange(10, 400, 37.0)
    cond = np.vstack([on, np.full(on.size, 27.0), np.linspace(0.2, 1.7, on.size)])
    for model in MODELS:
        ref, _ = compute_regressor(cond, model, ft)
        _close(compute_regressor_fast(cond, model, ft)[0], ref, rtol=1e-10)


def test_early_onset_warns_like_nilearn():
    ft = np.linspace(0, 99 * 2.0, 100)
    cond = np.array([[-40.0, 10.0], [5.0, 5.0], [1.0, 1.0]])
    with pytest.warns(UserWarning, match="earlier than"):
        ref, _ = compute_regressor(cond, "glover", ft)
    for _ in range(2):  # second call is memoised and still warns
        with pytest.warns(UserWarning, match="earlier than"):
            got, _ = compute_regressor_fast(cond, "glover", ft)
        _close(got, ref)


def test_memo_returns_independent_copies():
    ft = np.linspace(0, 99 * 2.0, 100)
    cond = np.array([[10.0, 50.0], [5.0, 5.0], [1.0, 1.0]])
    a, _ = compute_regressor_fast(cond, "glover", ft)
    a[:] = 0
    b, _ = compute_regressor_fast(cond, "glover", ft)
    ref, _ = compute_regressor(cond, "glover", ft)
    _close(b, ref)


def test_custom_models_fall_back_to_nilearn():
    ft = np.linspace(0, 99 * 2.0, 100)
    cond = np.array([[10.0, 50.0], [5.0, 5.0], [1.0, 1.0]])

    def my_hrf(t_r, oversampling):
        return np.hanning(int(10 * oversampling / t_r))

    ref, rn = compute_regressor(cond, my_hrf, ft, con_id="a")
    got, gn = compute_regressor_fast(cond, my_hrf, ft, con_id="a")
    assert gn == rn
    np.testing.assert_array_equal(got, ref)
    with pytest.raises(ValueError):
        compute_regressor_fast(cond, "not-a-model", ft)


def test_conv_at_window_gather_equals_masked_reference():
    """_conv_at's windowed gather equals the all-edges mask/where formulation (only the summation order of
    the non-zero terms differs: equal to 1e-14 of the largest value)."""
    from nbdiag.design.hrf import _conv_at, _kernels

    def reference(k, delta, hr, kernels):
        pos = np.flatnonzero(delta)
        dv = delta[pos]
        outs = []
        for _, H in kernels:
            L = H.size
            out = np.zeros(k.size)
            first = k - (L - 1)
            old = first >= 0
            out[old] = hr[first[old]] * H[-1]
            outs.append(out)
        if pos.size:
            m = k[:, None] - pos[None, :]
            for (_, H), out in zip(kernels, outs):
                L = H.size
                inwin = (m >= 0) & (m < L - 1)
                out += np.where(inwin, H[np.where(inwin, m, 0)], 0.0) @ dv
        return outs

    rng = np.random.default_rng(11)
    for model in ("glover", "spm + derivative + dispersion"):
        kernels = _kernels(model, 2.0, 50, None)
        mixed = kernels + ((np.ones(3), np.cumsum(np.ones(3))),)   # kernels of different lengths
        for ks in (kernels, mixed):
            n = 6000
            delta = np.zeros(n)
            delta[rng.integers(0, n, 40)] = rng.normal(size=40)
            hr = np.cumsum(delta)
            k = np.sort(rng.integers(0, n, 300))
            pos = np.flatnonzero(delta)
            for got, want in zip(_conv_at(k, pos, delta[pos], ks), reference(k, delta, hr, ks)):
                assert np.any(want != 0)
                np.testing.assert_allclose(got, want, rtol=0, atol=1e-14 * np.abs(want).max())
                assert np.array_equal(got == 0, want == 0)  # exact zeros stay exact


@pytest.mark.parametrize("base", ["glover", "spm"])
@pytest.mark.parametrize("extra", [" + derivative", " + derivative + dispersion"])
def test_derivative_model_reuses_the_plain_regressor_exactly(base, extra, monkeypatch):
    """A derivative model after the plain model on the same events reuses its canonical column:
    bit for bit what a cold call computes, and nilearn's numbers."""
    n_kernels = []
    original = _hrf._regressors_at_frames
    monkeypatch.setattr(_hrf, "_regressors_at_frames",
                        lambda pos, dv, fths, ft, kernels, shift: n_kernels.append(len(kernels))
                        or original(pos, dv, fths, ft, kernels, shift))
    cond, ft = _random_case(np.random.default_rng(7), n_events=25)
    clear_cache()
    cold, names_cold = compute_regressor_fast(cond, base + extra, ft, con_id="a")
    clear_cache()
    compute_regressor_fast(cond, base, ft, con_id="b")  # the design's call (another name)
    assert _hrf._CANONICAL
    warm, names_warm = compute_regressor_fast(cond, base + extra, ft, con_id="a")
    assert n_kernels == [extra.count("+") + 1, 1, extra.count("+")]  # the warm call convolves one kernel fewer
    np.testing.assert_array_equal(warm, cold)
    assert names_warm == names_cold
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref, _ = compute_regressor(cond, base + extra, ft, con_id="a")
    _close(warm, ref)
    clear_cache()
    assert not _hrf._CANONICAL


def test_memoised_interpolation_gives_the_cold_numbers():
    """The interpolation plan reused across regressors of a run changes nothing (cold vs warm, FIR shift too)."""
    cond, ft = _random_case(np.random.default_rng(11), n_events=12)
    for model, delays in (("glover", None), ("fir", [0, 1, 2])):
        clear_cache()
        cold, _ = compute_regressor_fast(cond, model, ft, fir_delays=delays)
        assert _hrf._INTERP
        _hrf._memo.clear()  # the result memo only: the plan stays
        warm, _ = compute_regressor_fast(cond, model, ft, fir_delays=delays)
        np.testing.assert_array_equal(warm, cold)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref, _ = compute_regressor(cond, model, ft, fir_delays=delays)
        _close(warm, ref)


def test_frame_step_is_nilearns_tr_and_refuses_non_finite_times():
    ft = np.array([0.0, 0.8, 1.6, 2.5])
    assert _hrf._frame_step(ft) == float(np.min(np.diff(ft)))
    assert np.isnan(_hrf._frame_step(np.array([0.0, np.nan, 1.6])))
    cond = np.array([[1.0], [1.0], [1.0]])
    assert _hrf._fast_inputs(cond, "glover", np.array([0.0, np.inf, 2.0]), "c", 50, None, -24) is None
    assert _hrf._fast_inputs(cond, "glover", np.array([0.0, 0.0, 2.0]), "c", 50, None, -24) is None  # no step
    assert _hrf._fast_inputs(cond, "glover", ft, "c", 50, None, -24) is not None


def test_derivative_model_reuses_the_plain_models_sampling_and_still_warns(monkeypatch):
    """A derivative model after the plain one samples the events once (the canonical entry keeps the
    sampling), gives the cold numbers, and still gives nilearn's early-onset warning on every call."""
    calls = []
    original = _hrf._sample_deltas
    monkeypatch.setattr(_hrf, "_sample_deltas", lambda *a: calls.append(1) or original(*a))
    cond, ft = _random_case(np.random.default_rng(11), n_events=20)
    cond = np.array(cond, dtype=float)
    cond[0, 0] = ft[0] - 30.0  # earlier than frame_times[0] + min_onset (-24 s): nilearn warns
    clear_cache()
    with pytest.warns(UserWarning, match="earlier"):
        cold, _ = compute_regressor_fast(cond, "glover + derivative + dispersion", ft)
    clear_cache()
    calls.clear()
    with pytest.warns(UserWarning, match="earlier"):
        compute_regressor_fast(cond, "glover", ft)
    with pytest.warns(UserWarning, match="earlier"):
        warm, _ = compute_regressor_fast(cond, "glover + derivative + dispersion", ft)
    assert calls == [1]  # the plain model's call only
    np.testing.assert_array_equal(warm, cold)
    clear_cache()
