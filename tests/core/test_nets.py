"""Networks, parity layers, gradient routing and parameter counts (METHOD.md 7, items 5, 6, 8)."""

import dataclasses

import pytest
import torch

from core import losses as L
from core.config import make_config
from core.grid import SOMGrid
from core.nets import AffineBN, DPSOMNet, HardSigmoidLSTM, MLPEncoder, TDPSOMNet, count_parameters


def test_reference_parameter_counts_fc():
    cfg = make_config("dpsom", "paper", input_kind="image")
    net = DPSOMNet(784, 64, cfg.network, "bernoulli")
    assert count_parameters(net.encoder) == 11_956_150
    assert count_parameters(net.decoder) == 1_851_784
    assert net.prototypes.numel() == 6_400


def test_reference_parameter_counts_conv():
    cfg = make_config("dpsom", "paper", input_kind="image")
    net_cfg = dataclasses.replace(cfg.network, encoder="conv")
    net = DPSOMNet(784, 64, net_cfg, "bernoulli")
    assert count_parameters(net.encoder) == 64_995_550
    assert count_parameters(net.decoder) == 1_654_977


def test_reference_parameter_count_tdpsom():
    parity = make_config("tdpsom", "paper")
    assert count_parameters(TDPSOMNet(98, 256, parity.network)) == 3_239_196
    # torch.nn.LSTM keeps two bias vectors per gate: +4 x 200 parameters.
    clean = dataclasses.replace(parity.network, lstm_gates="sigmoid")
    assert count_parameters(TDPSOMNet(98, 256, clean)) == 3_239_196 + 800


def test_parity_dropout_is_identity_and_bn_is_affine():
    cfg = make_config("dpsom", "paper")
    enc = MLPEncoder(6, dataclasses.replace(cfg.network, hidden=(5,), latent_dim=2))
    assert not any(isinstance(m, torch.nn.Dropout) for m in enc.modules())
    bn = AffineBN(4)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([1.0, 2.0, -1.0, 0.5]))
        bn.bias.copy_(torch.tensor([0.0, 1.0, 2.0, -3.0]))
    for scale in (1.0, 1000.0):  # any batch statistics: the output never depends on them
        h = torch.randn(7, 4) * scale + 5
        bn.train()
        y_train = bn(h)
        bn.eval()
        assert torch.allclose(y_train, bn(h))
        assert torch.allclose(y_train, bn.weight * h / (1 + 1e-3) ** 0.5 + bn.bias)


def test_clean_batchnorm_and_dropout_are_real():
    cfg = dataclasses.replace(make_config("dpsom", "quick").network, dropout=0.5, bn_mode="batchnorm")
    enc = MLPEncoder(6, cfg)
    assert any(isinstance(m, torch.nn.Dropout) for m in enc.modules())
    assert any(isinstance(m, torch.nn.BatchNorm1d) for m in enc.modules())


def test_glorot_init_and_zero_bias():
    enc = MLPEncoder(100, make_config("dpsom", "paper").network)
    w = enc.body[0].weight
    bound = (6 / (100 + 500)) ** 0.5
    assert w.abs().max() <= bound and w.abs().max() > 0.9 * bound
    assert (enc.body[0].bias == 0).all()


def test_prototypes_truncated_normal():
    net = DPSOMNet(10, 256, make_config("dpsom", "quick").network, "gaussian")
    p = net.prototypes.detach()
    assert p.abs().max() <= 0.1 + 1e-6
    assert 0.03 < p.std() < 0.06


def test_hard_sigmoid_lstm_gates():
    lstm = HardSigmoidLSTM(2, 3)
    with torch.no_grad():
        lstm.weight_ih.zero_()
        lstm.weight_hh.zero_()
        lstm.bias.fill_(10.0)  # every gate saturates at 1 under the hard sigmoid
    out, (h, c) = lstm(torch.zeros(1, 2, 2))
    # step 1: c = 1 * 0 + 1 * tanh(10); step 2: c = c + tanh(10)
    assert torch.allclose(c, torch.full((1, 3), 2 * torch.tanh(torch.tensor(10.0)).item()))
    assert torch.allclose(out[0, -1], torch.tanh(c[0]))


def test_predictor_learns_the_change_or_the_next_embedding():
    cfg = make_config("tdpsom", "quick", **{"network.latent_dim": 3, "network.lstm_dim": 4})
    assert cfg.network.predict_change and not make_config("tdpsom", "quick", parity=True).network.predict_change
    z = torch.randn(2, 5, 3)  # (N, T, d)
    change = TDPSOMNet(4, 9, cfg.network, "gaussian").predictor
    direct = TDPSOMNet(4, 9, dataclasses.replace(cfg.network, predict_change=False), "gaussian").predictor
    direct.load_state_dict(change.state_dict())
    with torch.no_grad():
        change.head[-1].weight.zero_()
        change.head[-1].bias.zero_()
    mean, std, _ = change(z)
    # A head that outputs nothing predicts that every embedding stays where it is.
    assert torch.equal(mean, z)
    assert torch.allclose(std, torch.nn.functional.softplus(torch.zeros(())) + cfg.network.std_floor)
    # Otherwise the two forms differ by exactly the current embedding.
    torch.manual_seed(0)
    with torch.no_grad():
        change.head[-1].weight.normal_()
        direct.load_state_dict(change.state_dict())
    assert torch.allclose(change(z)[0], direct(z)[0] + z, atol=1e-6)
    assert torch.equal(change(z)[1], direct(z)[1])


def _grads(net, loss):
    net.zero_grad(set_to_none=True)
    loss.backward()
    groups = {
        "encoder": list(net.encoder.parameters()),
        "decoder": list(net.decoder.parameters()),
        "prototypes": [net.prototypes],
    }
    if hasattr(net, "predictor"):
        groups["predictor"] = list(net.predictor.parameters())
    return {k: any(p.grad is not None and p.grad.abs().sum() > 0 for p in ps) for k, ps in groups.items()}


@pytest.fixture
def tiny_tdpsom():
    torch.manual_seed(0)
    cfg = make_config("tdpsom", "quick", **{"network.hidden": (8,), "network.latent_dim": 3, "network.lstm_dim": 4})
    net = TDPSOMNet(5, 9, cfg.network)
    with torch.no_grad():
        net.prototypes.normal_()
    return net, cfg


def test_gradient_routing_of_every_term(tiny_tdpsom):
    net, cfg = tiny_tdpsom
    adj = torch.as_tensor(SOMGrid(3, 3).adjacency(), dtype=torch.float32)
    n, t = 2, 4
    x = torch.randn(n * t, 5)
    sm = torch.ones(n, t, dtype=torch.bool)

    def forward():
        post = net.encoder(x)
        z = post.rsample()
        return post, z

    post, z = forward()
    mean, std = net.decoder(z)
    elbo = L.gaussian_nll(mean, std, x).mean() + L.kl_diag_to_isotropic(post.mean, post.std, 1.0).mean()
    assert _grads(net, elbo) == {"encoder": True, "decoder": True, "prototypes": False, "predictor": False}

    post, z = forward()
    a = L.soft_assignment(z, net.prototypes, 10.0)
    cah = L.clustering_kl(L.target_distribution(a).detach(), a)
    assert _grads(net, cah) == {"encoder": True, "decoder": False, "prototypes": True, "predictor": False}

    post, z = forward()
    a = L.soft_assignment(z, net.prototypes, 10.0)
    som = L.som_loss(a, L.soft_assignment(z.detach(), net.prototypes, 10.0), adj)
    assert _grads(net, som) == {"encoder": False, "decoder": False, "prototypes": True, "predictor": False}

    post, z = forward()
    zs = z.view(n, t, -1)
    bmu = L.squared_distances(z.detach(), net.prototypes.detach()).argmin(1).view(n, t)
    smooth = L.smoothness_prototype(zs, net.prototypes, bmu, sm, 10.0)
    assert _grads(net, smooth) == {"encoder": True, "decoder": False, "prototypes": False, "predictor": False}
    post, z = forward()
    smooth_paper = L.smoothness_embedding(z.view(n, t, -1), sm, 10.0)
    assert _grads(net, smooth_paper)["encoder"] and not _grads(net, L.smoothness_embedding(
        forward()[1].view(n, t, -1), sm, 10.0))["prototypes"]

    post, z = forward()
    zs = z.view(n, t, -1)
    pm, ps, _ = net.predictor(zs.detach())
    pred = L.prediction_nll(pm, ps, zs, sm)
    assert _grads(net, pred) == {"encoder": False, "decoder": False, "prototypes": False, "predictor": True}

    post, z = forward()
    init = L.som_init_loss(z, net.prototypes, torch.as_tensor(SOMGrid(3, 3).neighbours),
                           torch.as_tensor(SOMGrid(3, 3).neighbour_mask))
    assert _grads(net, init) == {"encoder": False, "decoder": False, "prototypes": True, "predictor": False}


def test_parameters_without_route_get_exactly_zero_or_none(tiny_tdpsom):
    net, _ = tiny_tdpsom
    x = torch.randn(6, 5)
    z = net.encoder(x).rsample()
    a = L.soft_assignment(z, net.prototypes, 10.0)
    loss = L.som_loss(a, L.soft_assignment(z.detach(), net.prototypes, 10.0),
                      torch.as_tensor(SOMGrid(3, 3).adjacency(), dtype=torch.float32))
    net.zero_grad(set_to_none=False)
    loss.backward()
    for p in net.encoder.parameters():
        assert p.grad is None or torch.count_nonzero(p.grad) == 0


def test_full_covariance_posterior_is_valid():
    cfg = make_config("dpsom", "paper").network
    enc = MLPEncoder(4, dataclasses.replace(cfg, hidden=(6,), latent_dim=3))
    post = enc(torch.randn(5, 4))
    assert post.scale_tril.shape == (5, 3, 3)
    assert torch.all(torch.triu(post.scale_tril, diagonal=1) == 0)
    assert (torch.diagonal(post.scale_tril, dim1=1, dim2=2) > 1e-5).all()
    assert post.rsample().shape == (5, 3)
