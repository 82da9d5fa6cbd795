"""The MLP: its shape follows the strategy's architecture; batched probabilities are sound."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
np = pytest.importorskip("numpy")

from ktrdr.errors import ValidationError  # noqa: E402
from ktrdr.neural import BUY, CLASS_NAMES, HOLD, NUM_CLASSES, SELL  # noqa: E402
from ktrdr.neural.mlp import build_mlp, predict_proba  # noqa: E402
from ktrdr.strategy.schema import Architecture  # noqa: E402


def test_class_map_is_the_original_one() -> None:
    assert (BUY, HOLD, SELL, NUM_CLASSES) == (0, 1, 2, 3)
    assert CLASS_NAMES == ("BUY", "HOLD", "SELL")


def test_layers_follow_the_architecture() -> None:
    net = build_mlp(7, Architecture(hidden_layers=[16, 8], activation="tanh", dropout=0.1))
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(7, 16), (16, 8), (8, 3)]
    assert sum(isinstance(m, torch.nn.Tanh) for m in net) == 2
    assert sum(isinstance(m, torch.nn.Dropout) for m in net) == 2
    no_dropout = build_mlp(7, Architecture(hidden_layers=[4], activation="leaky_relu", dropout=0.0))
    assert not any(isinstance(m, torch.nn.Dropout) for m in no_dropout)


def test_probabilities_sum_to_one_and_match_row_by_row() -> None:
    torch.manual_seed(0)
    net = build_mlp(5, Architecture(hidden_layers=[8], dropout=0.5))
    x = np.random.default_rng(1).normal(size=(50, 5))
    batch = predict_proba(net, x)
    assert batch.shape == (50, 3)
    np.testing.assert_allclose(batch.sum(axis=1), 1.0, rtol=1e-5)
    # eval mode: dropout is off, so one row alone gives the same answer as in the batch
    np.testing.assert_allclose(predict_proba(net, x[7:8])[0], batch[7], rtol=1e-5)


def test_bad_shapes_are_refused() -> None:
    with pytest.raises(ValidationError):
        build_mlp(0)
    with pytest.raises(ValidationError):
        predict_proba(build_mlp(3), np.zeros(3))
