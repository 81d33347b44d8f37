"""SIREN, MLP, FCNet and linear networks."""

import math

import pytest
import torch
from torch import nn

from satclip.encoders.nets import MLP, FCNet, Siren, build_network


@pytest.mark.parametrize(("L", "params"), [(10, 445_696), (40, 1_213_696)])
def test_siren_has_the_released_parameter_count(L, params):
    # the released models (Hugging Face microsoft/SatCLIP-*-L10 / -L40 checkpoints): 445,696 parameters at L = 10, 1,213,696 at L = 40 (2 x 512, 256 out)
    net = Siren(L * L, 512, 256, 2)
    assert sum(p.numel() for p in net.parameters()) == params


def test_siren_keeps_the_released_parameter_names():
    keys = set(Siren(16, 8, 4, 2).state_dict())
    assert keys == {"layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias",
                    "last_layer.weight", "last_layer.bias"}


def test_siren_init_bounds():
    torch.manual_seed(0)
    net = Siren(100, 512, 256, 3, w0=1.0, w0_initial=30.0)
    first, hidden = net.layers[0], net.layers[1]
    assert first.weight.abs().max() <= 1 / 100 and first.weight.abs().max() > 0.9 / 100
    bound = math.sqrt(6 / 512)
    assert hidden.weight.abs().max() <= bound and hidden.weight.abs().max() > 0.9 * bound
    assert net.last_layer.weight.abs().max() <= bound and first.w0 == 30.0 and hidden.w0 == 1.0


def test_siren_forward_matches_definition_and_inference_path():
    torch.manual_seed(1)
    net = Siren(9, 16, 5, 2, dropout=0.5).eval()
    x = torch.randn(7, 9)
    h = torch.sin(30.0 * (x @ net.layers[0].weight.T + net.layers[0].bias))
    h = torch.sin(1.0 * (h @ net.layers[1].weight.T + net.layers[1].bias))
    expected = h @ net.last_layer.weight.T + net.last_layer.bias
    torch.testing.assert_close(net(x), expected)
    with torch.inference_mode():
        torch.testing.assert_close(net(x), expected)  # in-place activation path


def test_siren_dropout_only_in_training():
    torch.manual_seed(2)
    net = Siren(4, 64, 3, 2, dropout=0.5)
    x = torch.randn(32, 4)
    net.train()
    assert not torch.allclose(net(x), net(x))
    net.eval()
    torch.testing.assert_close(net(x), net(x))
    no_drop = Siren(4, 64, 3, 2, dropout=0.0).train()
    torch.testing.assert_close(no_drop(x), no_drop.eval()(x))


def test_siren_trains():
    torch.manual_seed(3)
    net = Siren(4, 32, 2, 2)
    loss = net(torch.randn(8, 4)).square().sum()
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


def test_mlp_layers_have_their_own_weights():
    net = MLP(6, 8, 3, num_layers=3)
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 5
    assert len({m.weight.data_ptr() for m in linears}) == 5
    assert net(torch.randn(2, 6)).shape == (2, 3)
    assert any(isinstance(m, nn.Dropout) for m in MLP(6, 8, 3, 2, dropout=0.2).modules())


def test_fcnet_structure():
    net = FCNet(6, 8, 3, num_layers=4)
    assert net.class_emb.bias is None
    assert len(list(net.children())) == 2
    assert len([m for m in net.feats if m.__class__.__name__ == "ResidualBlock"]) == 4
    assert net.eval()(torch.randn(5, 6)).shape == (5, 3)


def test_build_network_by_name():
    assert isinstance(build_network("linear", 5, dim_out=7), nn.Linear)
    for name in ("siren", "mlp", "fcnet"):
        assert build_network(name, 5, dim_hidden=8, dim_out=3, num_layers=1).eval()(torch.zeros(2, 5)).shape == (2, 3)
    with pytest.raises(ValueError, match="unknown network"):
        build_network("transformer", 5)
    with pytest.raises(ValueError, match="dropout"):
        Siren(5, 8, 3, 2, dropout=1.0)
    with pytest.raises(ValueError, match="num_hidden_layers"):
        Siren(5, 8, 3, 0)
