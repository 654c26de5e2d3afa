"""compute_regressor_fast hands unusual inputs to nilearn: same result or same error as nilearn's own call."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from nilearn.glm.first_level import compute_regressor

from nbdiag.design.hrf import clear_cache, compute_regressor_fast

COND = np.array([[4.0, 20.0], [2.0, 2.0], [1.0, 1.0]])
FT = np.arange(30) * 2.0


def _outcome(func, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            reg, names = func(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - compared with nilearn's
            return type(exc), None, None
    return None, np.asarray(reg), list(names)


@pytest.mark.parametrize("args, kwargs", [
    ((COND, "glover", FT[:1]), {}),                               # one frame: no TR
    ((np.array([[4.0], [2.0], [np.nan]]), "glover", FT), {}),     # non-finite amplitude
    ((COND, "glover", FT[::-1]), {}),                             # decreasing frame times: TR <= 0
    ((COND, "glover", FT), {"oversampling": 0}),
    ((COND, "fir", FT), {"fir_delays": []}),
    ((COND, "glover", FT), {"con_id": 3}),
    ((COND, "glover", FT), {"oversampling": "many"}),
    ((COND, "spm", np.r_[FT, 1e4]), {}),                          # a frame far past the grid
])
def test_unusual_inputs_match_nilearn(args, kwargs):
    clear_cache()
    ours = _outcome(compute_regressor_fast, *args, **kwargs)
    ref = _outcome(compute_regressor, *args, **kwargs)
    assert ours[0] == ref[0]
    if ref[0] is None:
        np.testing.assert_allclose(ours[1], ref[1], rtol=1e-10, atol=1e-12)
        assert ours[2] == ref[2]


def test_cached_call_warns_again_for_early_onsets():
    clear_cache()
    cond = np.array([[-30.0, 10.0], [1.0, 1.0], [1.0, 1.0]])
    for _ in range(2):  # second call is served from the cache and must warn like nilearn
        with pytest.warns(UserWarning, match="Some stimulus onsets are earlier than -24.0"):
            compute_regressor_fast(cond, "glover", FT)
