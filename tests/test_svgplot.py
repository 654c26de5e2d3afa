"""SVG figure helpers: number formatting, ticks, stacked bars, empty and degenerate inputs."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from nbdiag.report import svgplot as sp

NS = "{http://www.w3.org/2000/svg}"


def _parse(svg: str) -> ET.Element:
    return ET.fromstring(svg.replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1))


@pytest.mark.parametrize("value, expected", [
    ("abc", "n/a"), (None, "n/a"), (float("inf"), "n/a"), (float("nan"), "n/a"), (0.0, "0"),
    (42, "42"), (np.int64(7), "7"), (12345.0, "1.23e+04"), (0.000123, "1.23e-04"),
    (1.5, "1.50"), (2_000_000, "2.00e+06"),
])
def test_fmt_value(value, expected):
    assert sp.fmt_value(value) == expected


def test_ticks_and_labels():
    assert sp._ticks(0, 1) == [0, 0.25, 0.5, 0.75, 1.0]
    assert sp._ticks(3, 3) == [3] and sp._ticks(0, math.inf) == [0]
    assert sp._tick_label(0.5, pct=True) == "50 %"
    assert sp._tick_label(0.0001) == "1.0e-04" and sp._tick_label(0) == "0" and sp._tick_label(2.5) == "2.5"
    assert sp._num(True) is None and sp._num("x") is None and sp._num(float("nan")) is None
    assert sp._num("2.5") is None and sp._num(2.5) == 2.5   # text is never read as a number


def test_hbars_none_value_and_thresholds():
    root = _parse(sp.hbars({"a": None, "b": 2.0, "c": 6.0, "d": 11.0}, "VIF", warn=5, fail=10))
    titles = [t.text for t in root.iter(f"{NS}title")]
    assert titles == ["a: n/a (n/a)", "b: 2.00 (below warn)", "c: 6.00 (warn)", "d: 11.0 (fail)"]


def test_empty_figures_are_valid_svg():
    for svg in (sp.design_image(np.zeros((0, 0)), [], label="empty"),
                sp.weights_figure([], {}, None, [], {}, label="empty")):
        root = _parse(svg)
        assert root.get("aria-label") == "empty" and list(root.iter(f"{NS}image")) == []
