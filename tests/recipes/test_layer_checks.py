"""The recipes that take a list of layers (laai, monitor, condition) check it with one function
(recipes/checks.check_layers): the same refusals and messages, before any forward pass."""

import pytest

from steerfast.errors import PlanError
from steerfast.recipes import condition, laai, monitor
from steerfast.recipes.checks import check_layers
from steerfast.testing import tiny_model, tiny_tokenizer

PAIRS = [("good day", "bad day"), ("nice", "awful"), ("great", "poor"), ("fine", "grim"), ("ok", "no")]
RECIPES = {
    "LAAI": lambda m, t, layers: laai(m, t, [("abc ->", " x")], layers=layers, progress=False),
    "monitor": lambda m, t, layers: monitor(m, t, PAIRS, layers=layers),
    "condition": lambda m, t, layers: condition(m, t, ["apple", "bread"], ["1234", "5678"], layers=layers),
}


def test_check_layers():
    assert check_layers(2, 3, "x") == [2]
    assert check_layers((2, 0, 2), 3, "x") == [2, 0, 2]  # order and repeats are the caller's
    with pytest.raises(PlanError, match="x needs at least one layer"):
        check_layers([], 3, "x")
    for bad in ([3], [-1], [True], [1.0], ["0"]):
        with pytest.raises(PlanError, match=r"out of range; the model has 3 layers \(0\.\.2\)"):
            check_layers(bad, 3, "x")


@pytest.mark.parametrize("what", sorted(RECIPES))
def test_the_recipes_refuse_bad_layers_alike(what):
    model, tok = tiny_model("llama", seed=0), tiny_tokenizer()  # 3 layers
    fit = RECIPES[what]
    with pytest.raises(PlanError, match=f"^{what} needs at least one layer$"):
        fit(model, tok, [])
    for bad in ([7], [1, True]):
        with pytest.raises(PlanError, match=r"out of range; the model has 3 layers \(0\.\.2\)$"):
            fit(model, tok, bad)
