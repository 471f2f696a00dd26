"""The oneDNN path of float32 CPU linear layers: probed lazily, on only while training runs,
and a correct fallback where PyTorch lacks the private operator. Importing the engine has no
such side effect."""

import subprocess
import sys
import types

import numpy as np
import pytest
import torch

from core import nets
from core.config import make_config
from core.model import DPSOM


def _config():
    return make_config("dpsom", "quick", **{
        "grid.height": 3, "grid.width": 3, "network.hidden": (256, 256), "network.latent_dim": 4,
        "train.epochs_pretrain": 1, "train.som_init_epochs": (1,), "train.som_init_lrs": (0.1,),
        "train.epochs_joint": 1, "train.batch_size": 64, "train.seed": 1, "train.deterministic": True})


def _data():
    return np.random.default_rng(0).normal(size=(256, 12)).astype(np.float32)


def _train(config) -> np.ndarray:
    est = DPSOM(config=config)
    for _ in est.iter_fit(_data()):
        pass
    return est.prototypes_


def _layer_and_grads(layer, x):
    x = x.clone().requires_grad_(True)
    layer.zero_grad()
    y = layer(x)
    (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
    return y.detach(), x.grad, layer.weight.grad.clone(), layer.bias.grad.clone(), y.grad_fn


@pytest.fixture
def no_onednn(monkeypatch):
    """This PyTorch build as if it had no oneDNN linear operator."""
    monkeypatch.setattr(torch.ops, "mkldnn", types.SimpleNamespace())
    nets._onednn_linear.cache_clear()
    yield
    monkeypatch.undo()
    nets._onednn_linear.cache_clear()


def test_importing_the_engine_probes_nothing_and_loads_no_analysis_library():
    # The command line and the app start faster without scikit-learn and SciPy (seconds on a
    # busy machine); they load with the first analysis that needs them.
    code = ("import sys, core.cli, core.explore, core.workflow, core.nets as n; "
            "print(n._onednn_linear.cache_info().misses, n.fast_cpu_linear_active(), "
            "'sklearn' in sys.modules, 'scipy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=str(__import__("pathlib").Path(nets.__file__).parent.parent))
    assert out.stdout.split() == ["0", "False", "False", "False"]


def test_missing_operator_falls_back_to_the_default_product(no_onednn):
    assert not nets.onednn_linear_available()
    torch.manual_seed(0)
    layer = nets.Linear(256, 256)
    x = torch.randn(64, 256)
    with nets.fast_cpu_linear():
        assert not nets.fast_cpu_linear_active()
        y, gx, gw, gb, fn = _layer_and_grads(layer, x)
    plain = torch.nn.Linear(256, 256)
    plain.load_state_dict(layer.state_dict())
    expected = _layer_and_grads(plain, x)
    assert "OneDNN" not in type(fn).__name__
    for a, b in zip((y, gx, gw, gb), expected[:4]):
        assert torch.equal(a, b)


def test_training_without_the_operator_equals_training_on_the_default_product():
    with nets.fast_cpu_linear(False):
        reference = _train(_config())
    saved = torch.ops.mkldnn
    try:
        torch.ops.mkldnn = types.SimpleNamespace()
        nets._onednn_linear.cache_clear()
        fallback = _train(_config())
    finally:
        torch.ops.mkldnn = saved
        nets._onednn_linear.cache_clear()
    assert np.array_equal(fallback, reference)
    if nets.onednn_linear_available():  # with the kernel: the same run up to float32 rounding
        np.testing.assert_allclose(_train(_config()), reference, rtol=1e-3, atol=1e-3)


@pytest.mark.skipif(not nets.onednn_linear_available(), reason="this PyTorch build has no oneDNN linear kernel")
def test_onednn_only_inside_a_block_and_it_agrees_with_the_default_product():
    torch.manual_seed(0)
    layer = nets.Linear(256, 256)
    x = torch.randn(64, 256)
    outside = _layer_and_grads(layer, x)
    with nets.fast_cpu_linear():
        inside = _layer_and_grads(layer, x)
    assert "OneDNN" not in type(outside[4]).__name__ and "OneDNN" in type(inside[4]).__name__
    for a, b in zip(inside[:4], outside[:4]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-4)


@pytest.mark.skipif(not nets.onednn_linear_available(), reason="this PyTorch build has no oneDNN linear kernel")
def test_the_training_loop_switches_it_on_for_its_run_only():
    est = DPSOM(config=_config())
    gen = est.iter_fit(_data())
    next(gen)
    assert nets.fast_cpu_linear_active()
    gen.close()
    assert not nets.fast_cpu_linear_active()
    with nets.fast_cpu_linear(False):  # an enclosing choice is kept
        gen = est.iter_fit(_data())
        next(gen)
        assert not nets.fast_cpu_linear_active()
        gen.close()
