"""Global-step Adam (METHOD.md section 7, item 7)."""

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
