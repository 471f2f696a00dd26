"""Loss terms (METHOD.md section 7, items 2-4) and their maths."""

import math

import pytest
import torch

from core import losses as L
from core.grid import SOMGrid


def test_soft_assignment_rows_sum_to_one_and_include_eps():
    torch.manual_seed(0)
    z, m = torch.randn(7, 3), torch.randn(5, 3)
    a = L.soft_assignment(z, m, nu=10.0)
    assert torch.allclose(a.sum(1), torch.ones(7))
    # Exactly eq. 2.4: kernel = eps + (1 + |z - m|^2 / nu) ^ (-(nu + 1) / 2), normalised.
    d2 = ((z[:, None, :] - m[None]) ** 2).sum(-1)
    k = 1e-7 + (1 + d2 / 10.0) ** (-11 / 2)
    assert torch.allclose(a, k / k.sum(1, keepdim=True), atol=1e-6)


def test_equal_distances_give_uniform_assignment():
    m = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    a = L.soft_assignment(torch.zeros(1, 2), m, nu=1.0)
    assert torch.allclose(a, torch.full((1, 4), 0.25))


def test_closer_prototype_gets_more_weight():
    m = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    far = L.soft_assignment(torch.zeros(1, 2), m, 10.0)[0, 0]
    near = L.soft_assignment(torch.tensor([[1.0, 0.0]]), m, 10.0)[0, 0]
    assert near > far


def test_eps_keeps_far_assignments_positive():
    m = torch.tensor([[0.0], [1e6]])
    a = L.soft_assignment(torch.zeros(1, 1), m, 10.0)
    assert (a > 0).all() and a[0, 1] == pytest.approx(1e-7 / (1 + 1e-7), rel=1e-3)


def _entropy(p):
    return -(p * p.log()).sum(1)


def test_target_distribution_is_sharper_and_normalised():
    torch.manual_seed(1)
    a = torch.softmax(torch.randn(20, 6), dim=1)
    g = L.target_distribution(a)
    assert torch.allclose(g.sum(1), torch.ones(20))
    assert (_entropy(g) < _entropy(a)).all()


def test_uniform_assignment_stays_uniform():
    a = torch.full((5, 4), 0.25)
    assert torch.allclose(L.target_distribution(a), a)


def test_target_uses_whole_set_frequencies():
    torch.manual_seed(3)
    a = torch.softmax(3 * torch.randn(10, 3), 1)
    f = a.sum(0)  # frequencies over the whole set, not the batch
    batch = L.target_distribution(a[:4], f)
    w = a[:4] ** 2 / f
    assert torch.allclose(batch, w / w.sum(1, keepdim=True))
    assert not torch.allclose(batch, L.target_distribution(a[:4]), atol=1e-4)


@pytest.mark.parametrize("k,expected", [(64, 16.636), (256, 22.181)])
def test_som_loss_sanity_value(k, expected):
    side = int(math.isqrt(k))
    grid = SOMGrid(side, side)
    adj = torch.as_tensor(grid.adjacency(), dtype=torch.float32)
    protos = torch.zeros(k, 5)  # all prototypes coincide -> uniform assignments
    z = torch.randn(9, 5)
    a = L.soft_assignment(z, protos, 10.0)
    assert L.som_loss(a, a, adj).item() == pytest.approx(4 * math.log(k), abs=1e-3)
    assert 4 * math.log(k) == pytest.approx(expected, abs=1e-3)


def test_som_loss_matches_explicit_double_sum():
    grid = SOMGrid(3, 4, toroidal=False)
    adj = torch.as_tensor(grid.adjacency(), dtype=torch.float32)
    a = torch.softmax(torch.randn(6, 12), 1)
    b = torch.softmax(torch.randn(6, 12), 1)
    explicit = 0.0
    for i in range(6):
        for k in range(12):
            explicit -= a[i, k] * sum(torch.log(b[i, e]) for e in grid.neighbours_of(k))
    assert L.som_loss(a, b, adj).item() == pytest.approx(explicit.item() / 6, rel=1e-5)


def test_clustering_kl_zero_when_target_equals_assignment():
    a = torch.softmax(torch.randn(8, 5), 1)
    assert L.clustering_kl(a, a).item() == pytest.approx(0.0, abs=1e-7)
    assert L.clustering_kl(L.target_distribution(a), a).item() > 0


def test_kl_full_matches_torch_distributions():
    torch.manual_seed(2)
    d = 4
    mean = torch.randn(3, d)
    tril = torch.tril(torch.randn(3, d, d)) + 2 * torch.eye(d)
    tril.diagonal(dim1=1, dim2=2).abs_()
    q = torch.distributions.MultivariateNormal(mean, scale_tril=tril)
    p = torch.distributions.MultivariateNormal(torch.zeros(d), 1.5 ** 2 * torch.eye(d))
    expected = torch.distributions.kl_divergence(q, p)
    assert torch.allclose(L.kl_full_to_isotropic(mean, tril, 1.5), expected, atol=1e-4)


def test_kl_diag_matches_full_with_diagonal_scale():
    mean, std = torch.randn(5, 3), torch.rand(5, 3) + 0.1
    assert torch.allclose(L.kl_diag_to_isotropic(mean, std, 1.0),
                          L.kl_full_to_isotropic(mean, torch.diag_embed(std), 1.0), atol=1e-5)


def test_gaussian_nll_ignores_unobserved_values():
    mean, std = torch.zeros(2, 3), torch.ones(2, 3)
    x = torch.tensor([[0.0, 1.0, 1e9], [0.0, 0.0, 0.0]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]], dtype=torch.bool)
    nll = L.gaussian_nll(mean, std, x, mask)
    c = 0.5 * math.log(2 * math.pi)
    assert nll[0].item() == pytest.approx(2 * c + 0.5)
    assert nll[1].item() == pytest.approx(3 * c)


def test_bernoulli_nll_is_bce_sum():
    logits, x = torch.tensor([[0.0, 2.0]]), torch.tensor([[0.5, 1.0]])
    assert L.bernoulli_nll(logits, x).item() == pytest.approx(math.log(2) + math.log(1 + math.exp(-2)), rel=1e-6)


def test_smoothness_prototype_uses_previous_bmu():
    protos = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    z = torch.tensor([[[0.0, 0.0], [10.0, 0.0], [10.0, 0.0]]])
    bmu = torch.tensor([[0, 1, 1]])
    sm = torch.ones(1, 3, dtype=torch.bool)
    val = L.smoothness_prototype(z, protos, bmu, sm, nu=1.0)
    k_far = 1e-7 + (1 + 100.0) ** -1.0
    # t=0 compares with its own BMU (distance 0), t=1 with prototype 0 (far), t=2 with prototype 1.
    assert val.item() == pytest.approx(-((1 + 1e-7) + k_far + (1 + 1e-7)) / 3, rel=1e-6)


def test_som_init_loss_value():
    grid = SOMGrid(3, 3)
    protos = torch.zeros(9, 2)
    protos[4] = torch.tensor([1.0, 0.0])
    z = torch.tensor([[1.0, 0.0]])
    nb = torch.as_tensor(grid.neighbours)
    mask = torch.as_tensor(grid.neighbour_mask)
    val = L.som_init_loss(z, protos, nb, mask)
    # BMU is node 4 (distance 0); its 4 neighbours are at distance 1 each; B=1, d=2, M=4.
    assert val.item() == pytest.approx(0 / 2 + (0 + 4 * 1.0) / (5 * 2))
