"""Adam with the TF1 reference's *global-step* bias correction (METHOD.md 2.10, 6.5).

TF1 keeps one pair of beta-power accumulators for every variable of an optimiser, advanced
by every update of every phase. A parameter first trained late (the prototypes in phase 2)
therefore gets almost no bias correction, and its first steps are several times larger
than with PyTorch's per-parameter Adam. ``bias_correction="global"`` reproduces that;
``"per_parameter"`` is ordinary Adam. The update is TF's form,
``p -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)``.

Speed: the update is memory-bound (the reference model has 13.8 M parameters, read and
written several times per step). Where PyTorch has a fused Adam kernel for the device, one
pass per parameter does everything. That kernel applies PyTorch's own bias correction from a
step count; it is given a step count so large that both of its corrections are exactly 1,
and the bias correction of the formula above goes into the learning rate instead. The kernel
then computes ``p -= lr_t * m / (sqrt(v) + eps)``, with ``eps`` exactly where TF puts it.
"""

from __future__ import annotations

import math

import torch

__all__ = ["GlobalStepAdam"]

# For the usual betas, beta ** 2**24 underflows to 0, so the fused kernel's own bias
# corrections 1 - beta ** step are exactly 1 in float32 and float64 (see _neutral).
# 2**24 is exact in the float32 step tensor that the CUDA kernel reads.
_NEUTRAL_STEP = float(2 ** 24)
_FUSED_DTYPES = (torch.float32, torch.float64)
#: (device, dtype) -> whether the fused kernel reproduced the plain update there.
_fused_verified: dict[tuple[torch.device, torch.dtype], bool] = {}


def _lr_t(lr: float, b1: float, b2: float, t: int) -> float:
    """The learning rate with TF's bias correction folded in, for the ``t``-th update."""
    return lr * math.sqrt(1.0 - b2 ** t) / (1.0 - b1 ** t)


def _neutral(beta: float) -> bool:
    """Whether ``1 - beta ** _NEUTRAL_STEP`` rounds to exactly 1 in float32 (and so in float64).

    True for every beta up to about ``1 - 2e-6``.
    """
    return 0.0 <= beta < 1.0 and beta ** _NEUTRAL_STEP < 2.0 ** -25


def _plain_update(params, grads, ms, vs, lr_t: float, b1: float, b2: float, eps: float) -> None:
    """The update with separate tensor operations, one parameter at a time.

    Used where no fused kernel exists; one temporary of one parameter's size at a time.
    """
    for p, g, m, v in zip(params, grads, ms, vs):
        m.lerp_(g, 1.0 - b1)
        v.mul_(b2).addcmul_(g, g, value=1.0 - b2)
        p.addcdiv_(m, v.sqrt().add_(eps), value=-lr_t)


def _fused_update(params, grads, ms, vs, step: torch.Tensor, lr_t: float, b1: float, b2: float,
                  eps: float) -> None:
    """The same update in one pass per parameter by PyTorch's fused Adam kernel."""
    torch._fused_adam_(params, grads, ms, vs, [], [step] * len(params), lr=lr_t, beta1=b1, beta2=b2,
                       weight_decay=0.0, eps=eps, amsgrad=False, maximize=False)


def _fused_works(device: torch.device, dtype: torch.dtype) -> bool:
    """Whether the fused kernel exists for ``device`` and ``dtype`` and reproduces the plain update.

    The kernel is a private operator (on the CPU only since PyTorch 2.4), so it is trusted only
    after it matches :func:`_plain_update` on a small problem, once per device and dtype.
    """
    key = (device, dtype)
    if key not in _fused_verified:
        ok = False
        if dtype in _FUSED_DTYPES and hasattr(torch, "_fused_adam_"):
            try:
                gen = torch.Generator().manual_seed(0)
                # 37 entries: the vectorised body and the scalar tail of the kernel.
                p, g, m = (torch.randn(37, generator=gen, dtype=dtype) for _ in range(3))
                v = torch.rand(37, generator=gen, dtype=dtype) * 1e-3
                v[0] = g[0] = m[0] = 0.0  # an entry that has never had a gradient
                a = [t.to(device) for t in (p, g, m, v)]
                b = [t.clone() for t in a]
                _plain_update(*([t] for t in a), 0.01, 0.9, 0.999, 1e-8)
                step = torch.tensor(_NEUTRAL_STEP, dtype=torch.float32, device=device)
                _fused_update(*([t] for t in b), step, 0.01, 0.9, 0.999, 1e-8)
                ok = all(torch.allclose(x, y, rtol=1e-5, atol=0.0) for x, y in zip(a, b))
            except Exception:  # noqa: BLE001 - any failure of a private operator means "do not use it"
                ok = False
        _fused_verified[key] = ok
    return _fused_verified[key]


class GlobalStepAdam(torch.optim.Optimizer):
    """One Adam for every phase, with global or per-parameter bias correction.

    Parameters
    ----------
    params : iterable of Parameter
        All parameters of the model. Parameters whose ``grad`` is None are left alone, so a
        phase trains exactly the parameters its loss reaches: neither they nor their moments
        or step counts change.
    lr : float
        Base learning rate; the training loop sets ``param_groups[0]["lr"]`` every step.
    betas, eps : as in Adam.
    bias_correction : {"global", "per_parameter"}
        ``"global"`` corrects with the number of updates of the whole optimiser
        (``global_step + 1``), ``"per_parameter"`` with the number of updates of each
        parameter (``state["step"]``).
    fused : bool
        Use PyTorch's fused Adam kernel where it exists for the parameter's device and dtype
        (float32 and float64) and reproduces the plain update; the result is the same to
        rounding. False always uses separate tensor operations.

    Notes
    -----
    State per parameter, as in ``torch.optim.Adam``: ``step`` (int, updates of this
    parameter), ``exp_avg`` and ``exp_avg_sq`` (tensors shaped like the parameter).
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 bias_correction: str = "global", fused: bool = True) -> None:
        if bias_correction not in ("global", "per_parameter"):
            raise ValueError(f"bias_correction must be 'global' or 'per_parameter', got {bias_correction!r}")
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps))
        self.bias_correction = bias_correction
        self.fused = bool(fused)
        self._steps: dict[torch.device, torch.Tensor] = {}

    def _neutral_step(self, device: torch.device) -> torch.Tensor:
        if device not in self._steps:
            self._steps[device] = torch.tensor(_NEUTRAL_STEP, dtype=torch.float32, device=device)
        return self._steps[device]

    @torch.no_grad()
    def step(self, global_step: int, closure=None):  # type: ignore[override]
        """Apply one update to every parameter that has a gradient.

        Parameters
        ----------
        global_step : int
            Number of optimiser updates *before* this one, over all phases; the global bias
            correction uses ``t = global_step + 1``.
        """
        for group in self.param_groups:
            b1, b2 = group["betas"]
            lr, eps = group["lr"], group["eps"]
            fusable = self.fused and _neutral(b1) and _neutral(b2)
            # Parameters sharing a bias-correction step, device, dtype and kernel are updated
            # together: one bucket per device and dtype with the global correction.
            buckets: dict[tuple, tuple[list, list, list, list]] = {}
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                if g.is_sparse:
                    raise RuntimeError("GlobalStepAdam does not support sparse gradients")
                st = self.state[p]
                if not st:
                    st["step"] = 0
                    st["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    st["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                st["step"] += 1
                m, v = st["exp_avg"], st["exp_avg_sq"]
                t = global_step + 1 if self.bias_correction == "global" else st["step"]
                # The fused kernel reads all four tensors as flat contiguous arrays of one dtype
                # (moments restored from a checkpoint are checked too).
                fused = (fusable and all(x.dtype == p.dtype and x.device == p.device and x.shape == p.shape
                                         and x.is_contiguous() for x in (p, g, m, v))
                         and _fused_works(p.device, p.dtype))
                lists = buckets.setdefault((t, p.device, p.dtype, fused), ([], [], [], []))
                for lst, x in zip(lists, (p, g, m, v)):
                    lst.append(x)
            for (t, device, _, fused), lists in buckets.items():
                lr_t = _lr_t(lr, b1, b2, t)
                if fused:
                    _fused_update(*lists, self._neutral_step(device), lr_t, b1, b2, eps)
                else:
                    _plain_update(*lists, lr_t, b1, b2, eps)
        return None
