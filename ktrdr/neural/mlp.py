"""The MLP: ``[Linear -> activation -> Dropout]`` per hidden layer, then ``Linear(3)``.

Output classes are fixed: BUY=0, HOLD=1, SELL=2 (the original system's index map). The network
returns logits; :func:`predict_proba` turns a whole feature matrix into class probabilities in
one forward pass.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ktrdr.errors import ValidationError
from ktrdr.neural.classes import NUM_CLASSES
from ktrdr.strategy.schema import Architecture

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "leaky_relu": nn.LeakyReLU,
}


def build_mlp(input_size: int, architecture: Architecture | None = None) -> nn.Sequential:
    """The classifier for ``input_size`` features, shaped by ``strategy.model.architecture``."""
    if input_size < 1:
        raise ValidationError(f"the network needs at least one input feature, got {input_size}")
    arch = architecture or Architecture()
    layers: list[nn.Module] = []
    width = input_size
    for hidden in arch.hidden_layers:
        layers.append(nn.Linear(width, hidden))
        layers.append(_ACTIVATIONS[arch.activation]())
        if arch.dropout > 0:
            layers.append(nn.Dropout(arch.dropout))
        width = hidden
    layers.append(nn.Linear(width, NUM_CLASSES))
    return nn.Sequential(*layers)


def predict_proba(
    model: nn.Module, features: np.ndarray | Sequence[Sequence[float]], device: str = "cpu"
) -> np.ndarray:
    """Class probabilities (rows sum to 1) for every row of ``features``, in eval mode, no grad."""
    matrix = np.ascontiguousarray(features, dtype=np.float32)
    if matrix.ndim != 2:
        raise ValidationError(f"features must be a 2-D matrix, got shape {matrix.shape}")
    model.eval()
    with torch.inference_mode():
        logits = model(torch.from_numpy(matrix).to(device))
        return torch.softmax(logits, dim=1).cpu().numpy()
