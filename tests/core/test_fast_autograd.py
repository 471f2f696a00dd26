"""Hand-written backward passes: the full-covariance posterior and its KL.

``nets._FullPosteriorFromOutput`` and ``losses._TraceAndLogDet`` replace
autograd's graph for speed; they must give the same values and gradients as the plain
formulas, to the bit in float32 (training results must not change), and correct
derivatives (gradcheck).
"""

import pytest
import torch
import torch.nn.functional as F

from core import losses as L
from core import nets


def _plain_posterior(out, d, floor):
    """The head's construction written with slices, ``index_copy`` and autograd."""
    rows, cols = torch.tril_indices(d, d)
    diag = torch.nonzero(rows == cols).squeeze(1)
    mean, raw = out[:, :d], out[:, d:]
    packed = raw.index_copy(1, diag, F.softplus(raw.index_select(1, diag)) + floor)
    tril = out.new_zeros(out.shape[0], d * d).index_copy(1, rows * d + cols, packed)
    return mean, tril.view(-1, d, d)


def _plain_trace_logdet(t):
    return (t * t).sum(dim=(1, 2)), 2.0 * torch.log(torch.diagonal(t, dim1=1, dim2=2)).sum(dim=1)


def _grads(fn, x, weights):
    x = x.detach().clone().requires_grad_(True)
    outs = fn(x)
    sum((o * w).sum() for o, w in zip(outs, weights)).backward()
    return [o.detach() for o in outs], x.grad


def test_full_posterior_matches_plain_construction_bitwise():
    d, b, floor = 7, 11, 1e-5
    head = nets._PosteriorHead(3, d, "full", floor)
    gen = torch.Generator().manual_seed(0)
    out = torch.randn(b, d + d * (d + 1) // 2, generator=gen) * 3  # some diagonals past softplus' threshold
    out[0, d] = 25.0
    weights = [torch.randn(b, d, generator=gen), torch.randn(b, d, d, generator=gen)]

    def fast(x):
        p = head.posterior_from_output(x)
        return p.mean, p.scale_tril

    (m1, t1), g1 = _grads(fast, out, weights)
    (m2, t2), g2 = _grads(lambda x: _plain_posterior(x, d, floor), out, weights)
    assert torch.equal(m1, m2) and torch.equal(t1, t2) and torch.equal(g1, g2)
    assert torch.all(torch.triu(t1, diagonal=1) == 0) and (torch.diagonal(t1, dim1=1, dim2=2) > 0).all()


def test_full_posterior_gradient_is_correct():
    d = 4
    head = nets._PosteriorHead(3, d, "full", 1e-5).double()
    out = torch.randn(3, d + d * (d + 1) // 2, dtype=torch.float64, requires_grad=True)

    def fn(x):
        p = head.posterior_from_output(x)
        return p.mean, p.scale_tril

    assert torch.autograd.gradcheck(fn, (out,))


def test_full_posterior_without_gradient():
    head = nets._PosteriorHead(3, 5, "full", 1e-5)
    with torch.no_grad():
        p = head.posterior_from_output(torch.randn(2, 5 + 15))
    assert p.scale_tril.shape == (2, 5, 5) and not p.scale_tril.requires_grad


def test_trace_and_logdet_match_plain_formulas_bitwise():
    gen = torch.Generator().manual_seed(1)
    t = torch.randn(9, 6, 6, generator=gen).tril()
    torch.diagonal(t, dim1=1, dim2=2).abs_().add_(0.05)
    weights = [torch.randn(9, generator=gen), torch.randn(9, generator=gen)]
    (tr1, ld1), g1 = _grads(L._TraceAndLogDet.apply, t, weights)
    (tr2, ld2), g2 = _grads(_plain_trace_logdet, t, weights)
    assert torch.equal(tr1, tr2) and torch.equal(ld1, ld2) and torch.equal(g1, g2)


def test_trace_and_logdet_gradient_is_correct():
    t = torch.randn(3, 4, 4, dtype=torch.float64).tril()
    torch.diagonal(t, dim1=1, dim2=2).abs_().add_(0.1)
    assert torch.autograd.gradcheck(L._TraceAndLogDet.apply, (t.requires_grad_(True),))


@pytest.mark.parametrize("sample_first", [True, False])
def test_kl_and_sample_together_give_the_plain_gradient(monkeypatch, sample_first):
    # The training step's use: one sample and the KL from the same posterior, the sample
    # drawn first. Autograd adds the gradients reaching the scale in the reverse order of
    # their creation, so the other order adds the same terms in another order (rounding).
    d, b = 6, 8
    head = nets._PosteriorHead(3, d, "full", 1e-5)
    gen = torch.Generator().manual_seed(2)
    out = torch.randn(b, d + d * (d + 1) // 2, generator=gen)
    w = torch.randn(b, d, generator=gen)
    grads = []
    for fast in (True, False):
        x = out.clone().requires_grad_(True)
        if fast:
            p = head.posterior_from_output(x)
        else:
            monkeypatch.setattr(L._TraceAndLogDet, "apply", _plain_trace_logdet)
            mean, tril = _plain_posterior(x, d, 1e-5)
            p = nets.Posterior(mean, scale_tril=tril)
        if sample_first:
            z = p.rsample(torch.Generator().manual_seed(3))
        kl = L.kl_full_to_isotropic(p.mean, p.scale_tril, 1.3)
        if not sample_first:
            z = p.rsample(torch.Generator().manual_seed(3))
        ((z * w).sum() + kl.mean()).backward()
        grads.append(x.grad)
    if sample_first:
        assert torch.equal(grads[0], grads[1])
    else:
        torch.testing.assert_close(grads[0], grads[1], rtol=1e-6, atol=1e-6)
