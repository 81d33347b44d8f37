"""Networks that turn positional features into location embeddings: SIREN, MLP, FCNet, linear.

``build_network(name, dim_in, ...)`` builds one by the names of the original SatCLIP code
(``siren``, ``mlp``, ``fcnet``, ``linear``). The SIREN keeps the parameter names of the released
checkpoints (``layers.<i>.weight``/``bias``, ``last_layer.weight``/``bias``), so their location
networks load without renaming.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["SirenLayer", "Siren", "MLP", "FCNet", "NETWORKS", "build_network"]

# SIREN constants (Sitzmann et al., NeurIPS 2020; the released SatCLIP models,
# ``satclip/location_encoder.py`` of microsoft/satclip@1ead106):
W0_INITIAL = 30.0  # frequency of the first layer
W0 = 1.0  # frequency of the later layers
SIREN_C = 6.0  # init U(-sqrt(c / d_in) / w0, +sqrt(c / d_in) / w0) for all but the first layer
DROPOUT = 0.5  # the original applies F.dropout's default p = 0.5 to every hidden pre-activation


def _check(dim_in: int, dim_hidden: int, dim_out: int, num_layers: int, dropout: float, min_layers: int) -> None:
    for name, value in (("dim_in", dim_in), ("dim_hidden", dim_hidden), ("dim_out", dim_out)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if num_layers < min_layers:
        raise ValueError(f"num_hidden_layers must be >= {min_layers}, got {num_layers}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")


class SirenLayer(nn.Module):
    """``sin(w0 * dropout(x W^T + b))``, or the affine map alone for the last layer.

    Init: first layer U(-1/d_in, 1/d_in); others U(-sqrt(c/d_in)/w0, +sqrt(c/d_in)/w0), weights
    and biases alike (as in the released models).
    """

    def __init__(self, dim_in: int, dim_out: int, w0: float = W0, is_first: bool = False,
                 dropout: float = 0.0, activation: bool = True, c: float = SIREN_C) -> None:
        super().__init__()
        self.w0 = w0
        self.dropout = dropout
        self.activation = activation
        bound = 1.0 / dim_in if is_first else math.sqrt(c / dim_in) / w0
        self.weight = nn.Parameter(torch.empty(dim_out, dim_in).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(dim_out).uniform_(-bound, bound))

    def forward(self, x: Tensor) -> Tensor:
        """(N, dim_in) -> (N, dim_out) ``sin(w0 * dropout(x W^T + b))``; no sine if not ``activation``."""
        out = F.linear(x, self.weight, self.bias)  # (N, dim_out)
        if self.dropout > 0.0 and self.training:
            out = F.dropout(out, self.dropout, training=True)
        if not self.activation:
            return out
        if torch.is_grad_enabled() and out.requires_grad:
            return torch.sin(self.w0 * out)
        return out.mul_(self.w0).sin_()  # inference: no extra (N, dim_out) buffers

    def extra_repr(self) -> str:
        """The ``repr`` line of the layer: dim_in, dim_out, w0, dropout, activation."""
        return (f"dim_in={self.weight.shape[1]}, dim_out={self.weight.shape[0]}, w0={self.w0}, "
                f"dropout={self.dropout}, activation={self.activation}")


class Siren(nn.Module):
    """SIREN: ``num_layers`` sine layers of width ``dim_hidden`` and a linear last layer."""

    def __init__(self, dim_in: int, dim_hidden: int = 512, dim_out: int = 256, num_layers: int = 2,
                 w0: float = W0, w0_initial: float = W0_INITIAL, dropout: float = DROPOUT) -> None:
        super().__init__()
        _check(dim_in, dim_hidden, dim_out, num_layers, dropout, min_layers=1)
        self.layers = nn.ModuleList(
            SirenLayer(dim_in if i == 0 else dim_hidden, dim_hidden, w0=w0_initial if i == 0 else w0,
                       is_first=i == 0, dropout=dropout)
            for i in range(num_layers)
        )
        self.last_layer = SirenLayer(dim_hidden, dim_out, w0=w0, activation=False)

    def forward(self, x: Tensor) -> Tensor:
        """(N, dim_in) -> (N, dim_out)."""
        for layer in self.layers:
            x = layer(x)
        return self.last_layer(x)


class MLP(nn.Module):
    """Linear + ReLU input layer, ``num_layers`` hidden Linear + ReLU layers, linear output.

    Each hidden layer has its own weights (the original repeats one layer object, so its hidden
    layers share weights). Dropout, when positive, follows every hidden ReLU.
    """

    def __init__(self, dim_in: int, dim_hidden: int = 512, dim_out: int = 256, num_layers: int = 2,
                 dropout: float = 0.0) -> None:
        super().__init__()
        _check(dim_in, dim_hidden, dim_out, num_layers, dropout, min_layers=0)
        layers: list[nn.Module] = [nn.Linear(dim_in, dim_hidden), nn.ReLU()]
        for _ in range(num_layers):
            layers += [nn.Linear(dim_hidden, dim_hidden), nn.ReLU()]
            if dropout > 0.0:
                layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(dim_hidden, dim_out))
        self.features = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """(N, dim_in) -> (N, dim_out)."""
        return self.features(x)


class ResidualBlock(nn.Module):
    """x + ReLU(W2 dropout(ReLU(W1 x))) (Mac Aodha et al., ICCV 2019)."""

    def __init__(self, dim: int, dropout: float = DROPOUT) -> None:
        super().__init__()
        self.w1 = nn.Linear(dim, dim)
        self.w2 = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return x + F.relu(self.w2(self.dropout(F.relu(self.w1(x)))))


class FCNet(nn.Module):
    """FCNet of Mac Aodha et al. (ICCV 2019): Linear + ReLU, residual blocks, bias-free output.

    ``num_layers`` is the number of residual blocks (the paper and the original code use 4).
    """

    def __init__(self, dim_in: int, dim_hidden: int = 256, dim_out: int = 256, num_layers: int = 4,
                 dropout: float = DROPOUT) -> None:
        super().__init__()
        _check(dim_in, dim_hidden, dim_out, num_layers, dropout, min_layers=0)
        self.feats = nn.Sequential(nn.Linear(dim_in, dim_hidden), nn.ReLU(),
                                   *(ResidualBlock(dim_hidden, dropout) for _ in range(num_layers)))
        self.class_emb = nn.Linear(dim_hidden, dim_out, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        """(N, dim_in) -> (N, dim_out)."""
        return self.class_emb(self.feats(x))


def _linear(dim_in: int, *, dim_out: int = 256, **_: object) -> nn.Module:
    return nn.Linear(dim_in, dim_out)


def _siren(dim_in: int, *, dim_hidden: int = 512, dim_out: int = 256, num_layers: int = 2,
           dropout: float = DROPOUT, w0: float = W0, w0_initial: float = W0_INITIAL, **_: object) -> nn.Module:
    return Siren(dim_in, dim_hidden, dim_out, num_layers, w0=w0, w0_initial=w0_initial, dropout=dropout)


def _mlp(dim_in: int, *, dim_hidden: int = 512, dim_out: int = 256, num_layers: int = 2,
         dropout: float = 0.0, **_: object) -> nn.Module:
    return MLP(dim_in, dim_hidden, dim_out, num_layers, dropout=dropout)


def _fcnet(dim_in: int, *, dim_hidden: int = 256, dim_out: int = 256, num_layers: int = 4,
           dropout: float = DROPOUT, **_: object) -> nn.Module:
    return FCNet(dim_in, dim_hidden, dim_out, num_layers, dropout=dropout)


#: name -> builder(dim_in, *, dim_hidden, dim_out, num_layers, dropout, w0, w0_initial); each
#: builder ignores the keywords it does not use.
NETWORKS: dict[str, Callable[..., nn.Module]] = {
    "siren": _siren,
    "mlp": _mlp,
    "fcnet": _fcnet,
    "linear": _linear,
}


def build_network(name: str, dim_in: int, **params: object) -> nn.Module:
    """Build the network ``name`` (a key of ``NETWORKS``) mapping ``dim_in`` features to embeddings."""
    try:
        builder = NETWORKS[name]
    except KeyError:
        raise ValueError(f"unknown network {name!r}; expected one of {sorted(NETWORKS)}") from None
    return builder(dim_in, **params)
