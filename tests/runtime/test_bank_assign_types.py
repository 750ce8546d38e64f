"""bank.assign takes one int slot per row: floats, bools and 2-D input are refused, and the
bank never keeps the caller's tensor."""

import pytest
import torch

import steerfast
from steerfast.errors import SteeringError
from steerfast.testing import tiny_model


@pytest.mark.parametrize(
    "bad", [[0.5, 1.0], [[0, 1]], [True, False], True, torch.tensor([0.0, 1.0]), torch.tensor([[0], [1]])]
)
def test_assign_refuses_non_int_or_not_1d(bad):
    with steerfast.SteeringBank(tiny_model("llama", num_hidden_layers=1), slots=2) as bank:
        with pytest.raises(SteeringError, match="1-D"):
            bank.assign(bad)


def test_assign_copies_the_callers_tensor():
    with steerfast.SteeringBank(tiny_model("llama", num_hidden_layers=1), slots=2) as bank:
        mine = torch.tensor([0, -1])
        bank.assign(mine)
        bank.assign(torch.tensor([1, 1]))
        assert mine.tolist() == [0, -1]
        bank.assign(torch.tensor([0, 1], dtype=torch.int32))
