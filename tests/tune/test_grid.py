"""The grid: defaults scale with depth, bad layers and strengths are refused by name."""

import pytest

from steerfast.errors import PlanError
from steerfast.tune import make_grid


def test_default_grid():
    g = make_grid(30)
    assert g.layers == (6, 9, 12) and g.strengths == (2.0, 4.0, 6.0, 8.0)
    assert len(g.cells()) == 12 and g.cells()[0] == (6, 2.0)
    assert make_grid(18).layers == (4, 5, 7)  # Gemma 3 270M
    assert make_grid(3).layers == (1,)  # tiny models: in range, never layer 0


def test_given_grid_sorted_unique():
    g = make_grid(10, [5, 2, 5], [4, 1])
    assert g.layers == (2, 5) and g.strengths == (1.0, 4.0)


@pytest.mark.parametrize(
    "layers,strengths,needle",
    [
        ([10], [1], "layer 10"),
        ([-1], [1], "layer -1"),
        (["2"], [1], "layer '2'"),
        ([], [1], "at least one"),
        ([1], [0], "strength 0"),
        ([1], [float("inf")], "strength inf"),
        ([1], "4", "strengths must be a list"),
    ],
)
def test_bad_grid(layers, strengths, needle):
    with pytest.raises(PlanError, match=needle):
        make_grid(10, layers, strengths)
