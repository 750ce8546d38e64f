"""A feature whose dependency is an extra fails naming the extra, not with a bare ImportError."""

import sys

import pytest

from steerfast.errors import SteeringError
from steerfast.optional import MissingExtraError, pyplot, require


def test_a_missing_plotting_dependency_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    with pytest.raises(
        MissingExtraError, match=r"the plot needs matplotlib.*pip install 'steerfast\[plots\]'"
    ):
        pyplot("the plot")
    import torch

    from steerfast.experiments.heatmap import heatmap

    with pytest.raises(SteeringError, match=r"SADI head-score heatmap needs matplotlib.*steerfast\[plots\]"):
        heatmap(torch.rand(2, 4), str(tmp_path / "h.png"))
    assert not (tmp_path / "h.png").exists()


def test_an_installed_extra_imports():
    assert require("json", "none", "x").dumps([1]) == "[1]"
    pytest.importorskip("matplotlib")
    assert pyplot("the plot").get_backend().lower() == "agg"
