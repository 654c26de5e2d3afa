"""Contrast weights: parity with nilearn's OLS fit and baseline composition."""

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from nilearn.glm.first_level import FirstLevelModel, make_first_level_design_matrix
from nilearn.glm.regression import OLSModel

from nbdiag.diagnostics.weights import (
    baseline_composition,
    composition_findings,
    contrast_variance,
    contrast_weights,
)
from nbdiag.core.thresholds import Thresholds


def _design(n=120, t_r=2.0):
    ev = pd.DataFrame({"onset": [10, 70, 130, 190], "duration": [20] * 4,
                       "trial_type": ["a", "b", "a", "b"]})
    ft = np.arange(n) * t_r
    return make_first_level_design_matrix(ft, ev, hrf_model="glover", drift_model="cosine", high_pass=0.01)


def _fit_nilearn(design, y):
    """Fit FirstLevelModel on a 2x2x2 image whose voxels all hold ``y``."""
    data = np.tile(y, (2, 2, 2, 1)).astype(float)
    img = nib.Nifti1Image(data, np.eye(4))
    mask = nib.Nifti1Image(np.ones((2, 2, 2), dtype=np.int8), np.eye(4))
    model = FirstLevelModel(mask_img=mask, signal_scaling=False, noise_model="ols", minimize_memory=False)
    model.fit(img, design_matrices=[design])
    return model


def test_weights_reproduce_nilearn_contrast_exactly():
    design = _design()
    rng = np.random.default_rng(0)
    beta = rng.normal(size=design.shape[1])
    y = design.to_numpy() @ beta + 100
    m = np.exp(-np.arange(len(design)) / 5.0)  # unmodelled settling signal
    model0 = _fit_nilearn(design, y)
    model1 = _fit_nilearn(design, y + m)
    for expr, c in {"a": {"a": 1.0}, "a - b": {"a": 1.0, "b": -1.0}}.items():
        w = contrast_weights(design, c)
        e0 = model0.compute_contrast(expr, output_type="effect_size").get_fdata()[0, 0, 0]
        e1 = model1.compute_contrast(expr, output_type="effect_size").get_fdata()[0, 0, 0]
        np.testing.assert_allclose(w @ y, e0, rtol=1e-6)
        np.testing.assert_allclose(e1 - e0, w @ m, rtol=1e-6, atol=1e-10)
        # variance matches nilearn's normalized covariance
        vec = np.array([c.get(col, 0.0) for col in design.columns])
        ols = OLSModel(design.to_numpy())
        np.testing.assert_allclose(contrast_variance(design, c), vec @ ols.normalized_cov_beta @ vec, rtol=1e-10)


def test_composition_shares_and_edges():
    w = np.array([-1.0, -1.0, 2.0, 0.0, -2.0, 1.0, 0.0, 0.0, 0.0, 1.0])
    classes = ["nonsteady", "run_edge", "condition:a", "fixation", "unmodeled_event",
               "condition:a", "fixation", "fixation", "fixation", "condition:a"]
    comp = baseline_composition(w, classes, n_edge=1)
    assert comp["negative"]["nonsteady"] == pytest.approx(0.25)
    assert comp["negative"]["unmodeled_event"] == pytest.approx(0.5)
    assert comp["positive"]["condition:a"] == pytest.approx(1.0)
    assert comp["edge_share"] == pytest.approx(0.25)
    codes = {f.code: f.severity for f in composition_findings("a", comp, Thresholds(), ["INSTRUCTION"])}
    assert codes == {"baseline_unmodeled_events": "fail"}


def test_bad_vector_length_names_parameter():
    with pytest.raises(ValueError, match="one weight per design column"):
        contrast_weights(_design(), [1.0, 0.0])


def test_cached_pinv_is_scipy_pinv_bit_for_bit():
    """One DesignAlgebra per design (shared with estimability): same bits as scipy.linalg.pinv."""
    import scipy.linalg as spl

    from nbdiag.diagnostics._linalg import DesignAlgebra

    rng = np.random.default_rng(3)
    designs = [_design().to_numpy(), np.asfortranarray(_design().to_numpy()), _design().to_numpy()[::3]]
    for i in range(40):
        X = rng.standard_normal((int(rng.integers(4, 200)), int(rng.integers(1, 16))))
        if i % 3 == 0 and X.shape[1] > 2:
            X[:, -1] = X[:, 0] - 2 * X[:, 1]          # rank deficient
        designs.append(X)
    designs.append(np.zeros((10, 3)))
    for X in designs:
        P = spl.pinv(X)
        alg = DesignAlgebra.of(X)
        for _ in range(2):                            # computed, then kept on the object
            assert np.array_equal(alg.pinv, P)
        c = rng.standard_normal(X.shape[1])
        assert np.array_equal(contrast_weights(X, c), P.T @ c)
        assert np.array_equal(contrast_weights(X, c, algebra=alg), P.T @ c)
        w = P.T @ c
        assert contrast_variance(X, c) == float(w @ w)
        assert contrast_variance(X, c, algebra=alg) == float(w @ w)
        gram = float(c @ (P @ P.T) @ c)               # nilearn's normalized_cov_beta product
        assert contrast_variance(X, c) == pytest.approx(gram, rel=1e-9, abs=1e-12 * max(1.0, abs(gram)))
    with pytest.raises(ValueError):
        DesignAlgebra.of(np.ones((3, 3))).pinv.__setitem__((0, 0), 1.0)   # shared arrays are read-only
    with pytest.raises(ValueError, match="another design"):
        contrast_weights(np.ones((3, 2)), [1, 0], algebra=DesignAlgebra.of(np.zeros((3, 2))))
    w = contrast_weights(designs[0], np.ones(designs[0].shape[1]))
    w[0] = 1.0                                        # ...but results handed out are not


def test_weights_arguments_are_checked_and_dict_contrasts_name_columns():
    import scipy.linalg as spl

    from nbdiag.diagnostics.weights import baseline_composition, pinv_design

    design = _design()
    with pytest.raises(ValueError, match="2-D"):
        contrast_weights(np.ones(5), [1.0])
    with pytest.raises(TypeError, match="needs design as a DataFrame"):
        contrast_weights(design.to_numpy(), {"a": 1.0})
    with pytest.raises(ValueError, match="not in the design"):
        contrast_weights(design, {"nope": 1.0})
    col = design.columns[0]
    vec = np.array([1.0 if c == col else 0.0 for c in design.columns])
    np.testing.assert_array_equal(contrast_weights(design, {col: 1.0}), contrast_weights(design, vec))
    P = pinv_design(design)
    assert np.array_equal(P, spl.pinv(design.to_numpy()))
    P[0, 0] = 1.0  # a writable copy, the shared factorisation is untouched
    with pytest.raises(ValueError, match="one entry per weight"):
        baseline_composition(np.ones(4), ["fixation"] * 3)
