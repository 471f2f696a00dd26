"""Adam with the TF1 reference's *global-step* bias correction (METHOD.md 2.10, 6.5).

TF1 keeps one pair of beta-power accumulators for every variable of an optimiser, advanced
by every update of every phase. A parameter first trained late (the prototypes in phase 2)
therefore gets almost no bias correction, and its first steps are several times larger
than with PyTorch's per-parameter Adam. ``bias_correction="global"`` reproduces that;
``"per_parameter"`` is ordinary Adam. The update is TF's form,
``p -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)``.
"""

from __future__ import annotations

import math

import torch

__all__ = ["GlobalStepAdam"]


class GlobalStepAdam(torch.optim.Optimizer):
    """One Adam for every phase, with global or per-parameter bias correction.

    Parameters
    ----------
    params : iterable of Parameter
        All parameters of the model. Parameters whose ``grad`` is None are left alone, so a
        phase trains exactly the parameters its loss reaches.
    lr : float
        Base learning rate; the training loop sets ``param_groups[0]["lr"]`` every step.
    betas, eps : as in Adam.
    bias_correction : {"global", "per_parameter"}
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 bias_correction: str = "global") -> None:
        if bias_correction not in ("global", "per_parameter"):
            raise ValueError(f"bias_correction must be 'global' or 'per_parameter', got {bias_correction!r}")
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps))
        self.bias_correction = bias_correction

    @torch.no_grad()
    def step(self, global_step: int, closure=None):  # type: ignore[override]
        """Apply one update.

        Parameters
        ----------
        global_step : int
            Number of optimiser updates *before* this one, over all phases; the global bias
            correction uses ``t = global_step + 1``.
        """
        for group in self.param_groups:
            b1, b2 = group["betas"]
            lr, eps = group["lr"], group["eps"]
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads, ms, vs, steps = [], [], [], []
            for p in params:
                st = self.state[p]
                if not st:
                    st["step"] = 0
                    st["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    st["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                st["step"] += 1
                grads.append(p.grad)
                ms.append(st["exp_avg"])
                vs.append(st["exp_avg_sq"])
                steps.append(st["step"])
            torch._foreach_lerp_(ms, grads, 1 - b1)
            torch._foreach_mul_(vs, b2)
            torch._foreach_addcmul_(vs, grads, grads, value=1 - b2)
            denom = torch._foreach_sqrt(vs)
            torch._foreach_add_(denom, eps)
            if self.bias_correction == "global":
                t = global_step + 1
                lr_t = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
                torch._foreach_addcdiv_(params, ms, denom, value=-lr_t)
            else:
                for p, m, dn, t in zip(params, ms, denom, steps):
                    lr_t = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
                    p.addcdiv_(m, dn, value=-lr_t)
        return None
