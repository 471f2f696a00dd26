"""Global-step Adam (METHOD.md section 7, item 7)."""

import math

import pytest
import torch

from core.optim import GlobalStepAdam


def _move(bias_correction, first_step, n_steps, lr=0.1):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = GlobalStepAdam([p], lr=lr, bias_correction=bias_correction)
    for i in range(n_steps):
        p.grad = torch.full((1,), -1.0)
        opt.step(global_step=first_step + i)
    return p.item()


def test_late_parameter_gets_reference_kicks():
    assert _move("global", 2550, 1) == pytest.approx(0.30, abs=0.01)
    assert _move("global", 2550, 10) == pytest.approx(5.3, abs=0.05)


def test_per_parameter_bias_correction_is_ordinary_adam():
    assert _move("per_parameter", 2550, 1) == pytest.approx(0.1, rel=1e-4)
    assert _move("per_parameter", 2550, 10) == pytest.approx(1.0, rel=1e-3)
    p = torch.nn.Parameter(torch.tensor([0.5, -2.0]))
    q = torch.nn.Parameter(p.detach().clone())
    ours, ref = GlobalStepAdam([p], lr=0.01, bias_correction="per_parameter"), torch.optim.Adam([q], lr=0.01)
    for i in range(20):
        g = torch.tensor([0.3 * (i % 3 - 1), 1.5])
        p.grad, q.grad = g.clone(), g.clone()
        ours.step(global_step=i)
        ref.step()
    assert torch.allclose(p, q, atol=1e-5)


def test_parameters_without_gradient_are_left_alone():
    a, b = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    opt = GlobalStepAdam([a, b], lr=0.1)
    a.grad = torch.ones(2)
    opt.step(global_step=0)
    assert torch.equal(b, torch.ones(2)) and not torch.equal(a, torch.ones(2))
    assert b not in opt.state or not opt.state[b]


# ---------------------------------------------------------------- against a plain reference
def _reference_step(p, g, m, v, lr, betas, eps, t):
    """TF's Adam update written out in float64: the specification the optimiser must meet."""
    b1, b2 = betas
    p, g, m, v = (x.detach().double() for x in (p, g, m, v))
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    p = p - lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t) * m / (v.sqrt() + eps)
    return p, m, v


def _close(actual, expected):
    """Float32 result against the float64 reference, relative to the tensor's magnitude."""
    scale = expected.abs().max().item()
    torch.testing.assert_close(actual.detach().double().cpu(), expected.cpu(), rtol=1e-6, atol=1e-6 * scale)


def _has_grad(j, i):
    # Parameter 2 starts late (like the prototypes), parameter 3 skips every third step.
    return not ((j == 2 and i < 40) or (j == 3 and i % 3 == 0))


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("bias_correction", ["global", "per_parameter"])
@pytest.mark.parametrize("betas", [(0.9, 0.999), (0.5, 0.9999999)])
@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device"))])
def test_update_matches_reference_over_many_steps(bias_correction, fused, betas, device):
    gen = torch.Generator().manual_seed(0)
    shapes = [(37,), (40, 30), (1,), (5, 3), (3, 4)]
    params = [torch.nn.Parameter(torch.randn(s, generator=gen).to(device)) for s in shapes]
    # A non-contiguous parameter: the fused kernel cannot take it.
    params[4] = torch.nn.Parameter(torch.randn(4, 3, generator=gen).to(device).t())
    opt = GlobalStepAdam(params, lr=0.1, betas=betas, bias_correction=bias_correction, fused=fused)
    steps = [0] * len(params)
    first = 700
    for i in range(100):
        lr = 0.1 * 0.9 ** (i // 20)
        opt.param_groups[0]["lr"] = lr
        expected, untouched = {}, {}
        for j, p in enumerate(params):
            st = opt.state.get(p) or {}
            if not _has_grad(j, i):
                p.grad = None
                untouched[j] = [p.detach().clone()] + [st[k].clone() for k in ("exp_avg", "exp_avg_sq") if k in st]
                continue
            # Gradients from 1e-7 (where eps matters) to 1.
            scale = 10.0 ** -int(torch.randint(0, 8, (), generator=gen))
            p.grad = (torch.randn(p.shape, generator=gen) * scale).to(device)
            m = st.get("exp_avg", torch.zeros_like(p))
            v = st.get("exp_avg_sq", torch.zeros_like(p))
            steps[j] += 1
            t = first + i + 1 if bias_correction == "global" else steps[j]
            expected[j] = _reference_step(p, p.grad, m, v, lr, betas, 1e-8, t)
        opt.step(global_step=first + i)
        for j, (rp, rm, rv) in expected.items():
            st = opt.state[params[j]]
            assert st["step"] == steps[j]
            _close(params[j], rp)
            _close(st["exp_avg"], rm)
            _close(st["exp_avg_sq"], rv)
        for j, saved in untouched.items():
            st = opt.state.get(params[j]) or {}
            now = [params[j]] + [st[k] for k in ("exp_avg", "exp_avg_sq") if k in st]
            assert len(now) == len(saved) and all(torch.equal(a, b) for a, b in zip(now, saved))
            assert st.get("step", 0) == steps[j]
    assert not params[4].is_contiguous()


@pytest.mark.parametrize("bias_correction", ["global", "per_parameter"])
def test_fused_and_plain_paths_agree_over_a_run(bias_correction):
    gen = torch.Generator().manual_seed(1)
    init = [torch.randn(s, generator=gen) for s in [(64, 50), (50,), (8, 10)]]
    runs = []
    for fused in (True, False):
        ps = [torch.nn.Parameter(x.clone()) for x in init]
        opt = GlobalStepAdam(ps, lr=1e-2, bias_correction=bias_correction, fused=fused)
        g = torch.Generator().manual_seed(2)
        for i in range(100):
            for j, p in enumerate(ps):
                p.grad = torch.randn(p.shape, generator=g) if (j != 2 or i >= 30) else None
            opt.step(global_step=200 + i)
        runs.append(ps)
    for a, b, x in zip(*runs, init):
        assert not torch.equal(a, x)
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6 * b.abs().max().item())


_TORCH = tuple(int(x) for x in torch.__version__.split(".")[:2])


@pytest.mark.skipif(_TORCH < (2, 4), reason="PyTorch has no fused Adam kernel for the CPU before 2.4")
def test_one_fused_call_updates_all_cpu_parameters(monkeypatch):
    calls = []
    real = torch._fused_adam_

    def counting(params, *args, **kwargs):
        calls.append(len(params))
        return real(params, *args, **kwargs)

    monkeypatch.setattr(torch, "_fused_adam_", counting)
    ps = [torch.nn.Parameter(torch.ones(n)) for n in (3, 40, 7)]
    opt = GlobalStepAdam(ps, lr=0.1)
    for p in ps[:2]:
        p.grad = torch.ones_like(p)
    opt.step(global_step=10)
    assert calls[-1] == 2  # one call for both parameters with a gradient
    assert torch.equal(ps[2], torch.ones(7))


def test_state_restored_from_numpy_continues_exactly():
    # The trainer saves step, exp_avg and exp_avg_sq as numpy and restores them into a new optimiser.
    gen = torch.Generator().manual_seed(5)
    a = [torch.nn.Parameter(torch.randn(s, generator=gen)) for s in [(30, 20), (20,)]]
    opt_a = GlobalStepAdam(a, lr=1e-2)
    grads = [[torch.randn(p.shape, generator=gen) for p in a] for _ in range(20)]
    for i in range(10):
        for p, g in zip(a, grads[i]):
            p.grad = g.clone()
        opt_a.step(global_step=i)
    b = [torch.nn.Parameter(p.detach().clone()) for p in a]
    opt_b = GlobalStepAdam(b, lr=1e-2)
    for pa, pb in zip(a, b):
        st = opt_a.state[pa]
        opt_b.state[pb] = {"step": int(st["step"]),
                           "exp_avg": torch.as_tensor(st["exp_avg"].numpy()).clone(),
                           "exp_avg_sq": torch.as_tensor(st["exp_avg_sq"].numpy()).clone()}
    for i in range(10, 20):
        for pa, pb, g in zip(a, b, grads[i]):
            pa.grad, pb.grad = g.clone(), g.clone()
        opt_a.step(global_step=i)
        opt_b.step(global_step=i)
    assert all(torch.equal(pa, pb) for pa, pb in zip(a, b))
