"""Contrast parsing: vectors equal nilearn's, defaults, kinds, invalid contrasts."""

import numpy as np
import pandas as pd
import pytest
from nilearn.glm.contrasts import expression_to_contrast_vector
from nilearn.glm.first_level import make_first_level_design_matrix

from nback_scenarios import roles_by_name
from nbdiag.design.contrasts import contrast_kind, default_contrasts, parse_contrasts

EVENTS = pd.DataFrame({
    "onset": [10.0, 50.0, 90.0, 130.0],
    "duration": [20.0, 20.0, 20.0, 20.0],
    "trial_type": ["zero_back", "two_back", "zero_back", "two_back"],
})
FT = np.arange(100) * 2.0


def _roles(design):
    return roles_by_name(design.columns, [c for c in design.columns if c.startswith("conf")])


def test_vectors_match_nilearn_and_kinds():
    X = make_first_level_design_matrix(FT, EVENTS, hrf_model="glover")
    roles = _roles(X)
    exprs = {"zb": "zero_back", "diff": "two_back - zero_back", "sum": "two_back + zero_back",
             "half": "0.5*two_back - 0.5*zero_back"}
    cs = parse_contrasts(exprs, X, roles)
    assert cs.findings == ()
    for name, expr in exprs.items():
        np.testing.assert_array_equal(cs.vectors[name], expression_to_contrast_vector(expr, list(X.columns)))
    assert cs.kinds == {"zb": "single", "diff": "differential", "sum": "other", "half": "differential"}
    # a weight on the constant makes it "other"
    assert contrast_kind(expression_to_contrast_vector("zero_back - constant", list(X.columns)), list(X.columns), roles) == "other"
    rec = cs.to_dict()["diff"]
    assert rec["vector"]["two_back"] == 1.0 and rec["vector"]["zero_back"] == -1.0
    assert rec["vector"]["constant"] == 0.0 and rec["kind"] == "differential"


def test_sequence_input_names_by_expression():
    X = make_first_level_design_matrix(FT, EVENTS, hrf_model="glover")
    cs = parse_contrasts(["zero_back", "two_back - zero_back"], X, _roles(X))
    assert list(cs.vectors) == ["zero_back", "two_back - zero_back"]
    assert cs.expressions["two_back - zero_back"] == "two_back - zero_back"


def test_invalid_contrast_is_a_finding_and_others_still_work():
    X = make_first_level_design_matrix(FT, EVENTS, hrf_model="glover")
    cs = parse_contrasts({"bad": "one_back - zero_back", "good": "two_back"}, X, _roles(X))
    assert list(cs.vectors) == ["good"] and cs.expressions["bad"] == "one_back - zero_back"
    assert "bad" not in cs.kinds and set(cs.to_dict()) == {"good"}
    (f,) = cs.findings
    assert f.code == "contrast_invalid" and f.severity == "error" and f.contrast == "bad"
    for col in X.columns:
        assert col in f.message
    assert "one_back" in f.message


def test_bad_contrasts_type_names_parameter():
    X = make_first_level_design_matrix(FT, EVENTS, hrf_model="glover")
    with pytest.raises(TypeError, match="contrasts must be"):
        parse_contrasts(42, X, _roles(X))


def test_defaults_exclude_derivatives_and_rtdur():
    X = make_first_level_design_matrix(FT, EVENTS, hrf_model="glover + derivative + dispersion")
    X.insert(0, "RTDur", np.linspace(0, 1, len(X)))
    roles = _roles(X)
    assert roles["RTDur"] == "task" and roles["zero_back_derivative"] == "task"
    d = default_contrasts(roles)
    assert d == {"two_back": "two_back", "zero_back": "zero_back",
                 "two_back - zero_back": "two_back - zero_back"}
    cs = parse_contrasts(None, X, roles)
    assert cs.kinds == {"two_back": "single", "zero_back": "single", "two_back - zero_back": "differential"}
    # a condition with its derivative is still one condition
    v = expression_to_contrast_vector("zero_back + zero_back_derivative", list(X.columns))
    assert contrast_kind(v, list(X.columns), roles) == "single"


def test_defaults_group_fir_delays_by_condition():
    X = make_first_level_design_matrix(FT, EVENTS, hrf_model="fir", fir_delays=[0, 1, 2])
    roles = _roles(X)
    cs = parse_contrasts(None, X, roles)
    assert set(cs.vectors) == {"two_back", "zero_back", "two_back - zero_back"}
    cols = list(X.columns)
    expected = np.zeros(len(cols))
    for k in range(3):
        expected[cols.index(f"zero_back_delay_{k}")] = 1.0
    np.testing.assert_array_equal(cs.vectors["zero_back"], expected)
    assert cs.kinds["zero_back"] == "single"
    assert cs.kinds["two_back - zero_back"] == "differential"
    assert cs.vectors["two_back - zero_back"].sum() == 0


def test_defaults_work_for_trial_types_that_are_not_identifiers():
    ev = EVENTS.replace({"zero_back": "0BACK", "two_back": "2BACK"})
    X = make_first_level_design_matrix(FT, ev, hrf_model="glover")
    cs = parse_contrasts(None, X, _roles(X))
    assert cs.findings == ()
    cols = list(X.columns)
    v = cs.vectors["2BACK - 0BACK"] if "2BACK - 0BACK" in cs.vectors else -cs.vectors["0BACK - 2BACK"]
    assert v[cols.index("2BACK")] == 1 and v[cols.index("0BACK")] == -1 and np.abs(v).sum() == 2
    assert cs.kinds["0BACK"] == "single"


def test_a_weight_vector_of_the_wrong_length_is_refused_by_name():
    X = make_first_level_design_matrix(FT, EVENTS, hrf_model="glover")
    cs = parse_contrasts({"short": [1.0, -1.0]}, X, _roles(X))
    assert "short" not in cs.vectors
    (finding,) = cs.findings
    assert f"the vector has 2 weights, the design has {X.shape[1]} columns" in finding.message
    assert cs.expressions["short"] == "[1.0, -1.0]"
