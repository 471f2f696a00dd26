"""Every DPSOM / T-DPSOM loss term as a pure function of tensors.

Shapes: ``B`` samples (or real patient steps), ``K`` map nodes, ``d`` latent size,
``D`` features, ``N`` patients, ``T`` time steps, ``M`` neighbours per node.
Equation numbers refer to METHOD.md.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = [
    "EPS",
    "squared_distances",
    "student_t_kernel",
    "soft_assignment",
    "target_distribution",
    "clustering_kl",
    "som_loss",
    "som_init_loss",
    "bernoulli_nll",
    "gaussian_nll",
    "kl_full_to_isotropic",
    "kl_diag_to_isotropic",
    "smoothness_prototype",
    "smoothness_embedding",
    "jump_cost",
    "expected_jump",
    "usage_balance",
    "prediction_nll",
]

#: Keras' default epsilon, kept inside the kernels for parity (METHOD.md 2.4).
EPS = 1e-7


def squared_distances(z: torch.Tensor, prototypes: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances ``(B, K)`` between rows of ``z (B, d)`` and ``prototypes (K, d)``.

    Uses the expanded form, which never builds a ``(B, K, d)`` tensor: a T-DPSOM batch has
    21,600 rows, so the naive difference would need gigabytes.
    """
    zz = (z * z).sum(dim=1, keepdim=True)  # (B, 1)
    mm = (prototypes * prototypes).sum(dim=1)  # (K,)
    return (zz - 2.0 * z @ prototypes.T + mm).clamp_min_(0.0)


def student_t_kernel(sqdist: torch.Tensor, nu: float, eps: float = EPS) -> torch.Tensor:
    """Unnormalised Student-t similarity ``eps + (1 + sqdist / nu) ** (-(nu + 1) / 2)`` (eq. 2.4)."""
    return eps + (1.0 + sqdist / nu).pow(-(nu + 1.0) / 2.0)


def soft_assignment(z: torch.Tensor, prototypes: torch.Tensor, nu: float) -> torch.Tensor:
    """Soft assignment ``a (B, K)`` of latent samples to nodes; rows sum to 1 (eq. 2.4)."""
    kernel = student_t_kernel(squared_distances(z, prototypes), nu)  # (B, K)
    return kernel / kernel.sum(dim=1, keepdim=True)


def target_distribution(a: torch.Tensor, frequencies: torch.Tensor | None = None) -> torch.Tensor:
    """Sharpened target ``g (B, K)`` from assignments ``a (B, K)`` (eq. 2.5).

    Parameters
    ----------
    a : Tensor (B, K)
        Soft assignments.
    frequencies : Tensor (K,), optional
        ``f_k = sum_i a_ik`` over the *whole* training set. Defaults to the sum over ``a``.
    """
    if frequencies is None:
        frequencies = a.sum(dim=0)
    w = a * a / frequencies  # (B, K)
    return w / w.sum(dim=1, keepdim=True)


def clustering_kl(g: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """Clustering-assignment-hardening loss ``mean_i KL(g_i || a_i)`` (eq. 2.6); ``g`` is constant."""
    g = g.detach()
    return (g * (torch.log(g) - torch.log(a))).sum(dim=1).mean()


def som_loss(a_weights: torch.Tensor, a_neighbours: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
    """Soft SOM loss (eq. 2.7).

    ``-(1/B) sum_i sum_k a_ik sum_{e in N(k)} log a~_ie``. The double sum over nodes and their
    neighbours equals ``sum_e (a @ A)_ie log a~_ie`` with the adjacency matrix ``A``, which is
    how it is computed here (one ``(B, K) @ (K, K)`` product instead of a gather).

    Parameters
    ----------
    a_weights : Tensor (B, K)
        Assignments used as weights; detached here (the reference's stop-gradient).
    a_neighbours : Tensor (B, K)
        Assignments computed from a *detached* latent sample, so that this loss moves the
        prototypes only.
    adjacency : Tensor (K, K)
        1.0 where ``e`` is a grid neighbour of ``k`` (row ``k``), else 0.
    """
    neighbour_mass = a_weights.detach() @ adjacency  # (B, K)
    return -(neighbour_mass * torch.log(a_neighbours)).sum(dim=1).mean()


def som_init_loss(z: torch.Tensor, prototypes: torch.Tensor, neighbours: torch.Tensor,
                  neighbour_mask: torch.Tensor) -> torch.Tensor:
    """Kohonen-style initialisation loss with a fixed radius-1 neighbourhood (METHOD.md 2.10).

    ``L = 1/(B d) sum_i |z_i - m_bmu|^2 + 1/((1+M) B d) sum_i sum_{e in {bmu} + N(bmu)} |z_i - m_e|^2``
    with ``M`` neighbours per node (4 on the reference's square grid, hence its factor 1/5).
    The latent is detached: only the prototypes learn.

    Parameters
    ----------
    z : Tensor (B, d)
    prototypes : Tensor (K, d)
    neighbours : LongTensor (K, M), ``-1`` where a flat grid has no neighbour
    neighbour_mask : BoolTensor (K, M)
    """
    z = z.detach()
    b, d = z.shape
    m = neighbours.shape[1]
    dist = squared_distances(z, prototypes)  # (B, K)
    bmu = dist.argmin(dim=1)  # (B,)
    own = (z - prototypes[bmu]).pow(2).sum(dim=1)  # (B,)
    nb = neighbours[bmu].clamp_min(0)  # (B, M)
    nb_dist = (z[:, None, :] - prototypes[nb]).pow(2).sum(dim=2)  # (B, M)
    nb_dist = nb_dist * neighbour_mask[bmu]
    return own.sum() / (b * d) + (own.sum() + nb_dist.sum()) / ((1 + m) * b * d)


def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Per-sample Bernoulli negative log-likelihood ``(B,)`` of ``x`` in [0, 1] (summed over features)."""
    nll = F.binary_cross_entropy_with_logits(logits, x, reduction="none")  # (B, D)
    if mask is not None:
        nll = nll * mask
    return nll.sum(dim=1)


def gaussian_nll(mean: torch.Tensor, std: torch.Tensor, x: torch.Tensor,
                 mask: torch.Tensor | None = None) -> torch.Tensor:
    """Per-sample diagonal-Gaussian negative log-likelihood ``(B,)``; unobserved values ignored.

    Parameters
    ----------
    mean, std, x : Tensor (B, D)
    mask : Tensor (B, D), optional
        1 where ``x`` was observed. Unobserved entries contribute nothing.
    """
    nll = 0.5 * math.log(2 * math.pi) + torch.log(std) + 0.5 * ((x - mean) / std).pow(2)  # (B, D)
    if mask is not None:
        nll = torch.where(mask.bool(), nll, torch.zeros_like(nll))
    return nll.sum(dim=1)


class _TraceAndLogDet(torch.autograd.Function):
    """``tr(L L^T) = |L|_F^2`` and ``ln det(L L^T) = 2 sum ln diag(L)`` per sample, for ``L (B, d, d)``.

    The same forward operations as written out with autograd, but the backward makes one
    pass over ``(B, d, d)``: autograd would write ``g L`` twice for the product, a zero matrix
    with the diagonal for ``diagonal()``, and add the three. The diagonal of the gradient is
    summed in autograd's order, so the gradient is the same to the last bit whenever nothing
    else adds a gradient to ``L`` later in the backward pass (the training step draws its
    sample before the KL, so the sample's gradient comes after); otherwise the same terms
    are added in another order.
    """

    @staticmethod
    def forward(ctx, t):
        ctx.save_for_backward(t)
        trace = (t * t).sum(dim=(1, 2))
        logdet = 2.0 * torch.log(torch.diagonal(t, dim1=1, dim2=2)).sum(dim=1)
        return trace, logdet

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g_trace, g_logdet):
        (t,) = ctx.saved_tensors
        diag = torch.diagonal(t, dim1=1, dim2=2)  # (B, d)
        # Unused outputs arrive as zeros (autograd materialises them), never as None.
        grad = t * (2.0 * g_trace)[:, None, None]  # g L + g L, exactly
        g_ll = diag * g_trace[:, None]  # one g L term on the diagonal
        torch.diagonal(grad, dim1=1, dim2=2).copy_(((g_logdet * 2.0)[:, None] / diag + g_ll) + g_ll)
        return grad


def kl_full_to_isotropic(mean: torch.Tensor, scale_tril: torch.Tensor, prior_sd: float) -> torch.Tensor:
    """``KL(N(mean, L L^T) || N(0, prior_sd^2 I))`` per sample ``(B,)`` (eq. 2.8).

    ``1/2 [tr(S)/s^2 + |mu|^2/s^2 - d + d ln s^2 - ln det S]`` with ``tr(S) = |L|_F^2`` and
    ``ln det S = 2 sum ln diag(L)``.
    """
    d = mean.shape[1]
    var_p = prior_sd ** 2
    trace, logdet = _TraceAndLogDet.apply(scale_tril)
    return 0.5 * (trace / var_p + mean.pow(2).sum(dim=1) / var_p - d + d * math.log(var_p) - logdet)


def kl_diag_to_isotropic(mean: torch.Tensor, std: torch.Tensor, prior_sd: float) -> torch.Tensor:
    """``KL(N(mean, diag std^2) || N(0, prior_sd^2 I))`` per sample ``(B,)``."""
    var_p = prior_sd ** 2
    var = std.pow(2)
    return 0.5 * (var / var_p + mean.pow(2) / var_p - 1.0 + math.log(var_p) - torch.log(var)).sum(dim=1)


def smoothness_prototype(z: torch.Tensor, prototypes: torch.Tensor, bmu: torch.Tensor,
                         step_mask: torch.Tensor, nu: float) -> torch.Tensor:
    """T-DPSOM smoothness as coded by the reference (METHOD.md 3.3 item 3).

    Similarity between ``z_t`` and the *detached* prototype of the previous step's BMU
    (``t = 0`` uses its own BMU), averaged over real steps; only the encoder learns from it.

    Parameters
    ----------
    z : Tensor (N, T, d)
    prototypes : Tensor (K, d)
    bmu : LongTensor (N, T)
    step_mask : BoolTensor (N, T), True on real (non-padding) steps
    """
    prev = torch.cat([bmu[:, :1], bmu[:, :-1]], dim=1)  # (N, T)
    target = prototypes.detach()[prev]  # (N, T, d)
    sim = student_t_kernel((z - target).pow(2).sum(dim=2), nu)  # (N, T)
    w = step_mask.to(sim.dtype)
    return -(sim * w).sum() / w.sum().clamp_min(1.0)


def smoothness_embedding(z: torch.Tensor, step_mask: torch.Tensor, nu: float) -> torch.Tensor:
    """T-DPSOM smoothness as written in the paper: similarity of consecutive embeddings.

    Averaged over pairs of consecutive real steps. ``z (N, T, d)``, ``step_mask (N, T)``.
    """
    pair = step_mask[:, 1:] & step_mask[:, :-1]  # (N, T-1)
    sim = student_t_kernel((z[:, 1:] - z[:, :-1]).pow(2).sum(dim=2), nu)  # (N, T-1)
    w = pair.to(sim.dtype)
    return -(sim * w).sum() / w.sum().clamp_min(1.0)


def jump_cost(distances: torch.Tensor) -> torch.Tensor:
    """Cost ``(K, K)`` of a step between two nodes: grid steps beyond a direct neighbour.

    ``max(0, d(k, l) - 1)`` for grid distances ``d``: staying on a node or moving to a
    neighbour is free, as in the share of smooth steps a user is shown.
    """
    return (distances.to(torch.float32) - 1.0).clamp_min(0.0)


def expected_jump(a_seq: torch.Tensor, step_mask: torch.Tensor, cost: torch.Tensor) -> torch.Tensor:
    """Expected cost of consecutive node moves under the soft assignments (METHOD.md 3.3).

    ``sum_k sum_l a_t(k) a_{t+1}(l) C(k, l)`` averaged over pairs of consecutive real steps:
    the soft version of counting steps that leave a node's neighbourhood. The gradient
    reaches whatever ``a_seq`` was computed from; the trainer gives it assignments of the
    detached latent, so that only the prototypes learn from it.

    Parameters
    ----------
    a_seq : Tensor (N, T, K)
        Soft assignments per patient step (anything on padding; it is masked).
    step_mask : BoolTensor (N, T)
    cost : Tensor (K, K)
        See :func:`jump_cost`.
    """
    pair = step_mask[:, 1:] & step_mask[:, :-1]  # (N, T-1)
    moved = ((a_seq[:, :-1] @ cost) * a_seq[:, 1:]).sum(dim=2)  # (N, T-1)
    w = pair.to(moved.dtype)
    return (moved * w).sum() / w.sum().clamp_min(1.0)


def usage_balance(a: torch.Tensor) -> torch.Tensor:
    """``KL(mean_i a_i || uniform)`` for assignments ``a (B, K)``: zero when nodes are used evenly.

    Keeps a term that sharpens or orders assignments from doing so by emptying nodes.
    """
    p = a.mean(dim=0)  # (K,)
    return (p * torch.log(p * a.shape[1])).sum()


def prediction_nll(pred_mean: torch.Tensor, pred_std: torch.Tensor, z: torch.Tensor,
                   step_mask: torch.Tensor) -> torch.Tensor:
    """LSTM next-embedding loss ``-mean_{i,t} log N(sg(z_{t+1}); mu_t, diag sigma_t^2)`` (METHOD.md 3.3 item 4).

    The target at a patient's last real step is that step's own embedding, as in the
    reference. Inputs and targets are detached, so only the predictor learns.

    Parameters
    ----------
    pred_mean, pred_std : Tensor (N, T, d)
        Predictive distribution emitted at each step for the next one.
    z : Tensor (N, T, d)
        Latent samples.
    step_mask : BoolTensor (N, T)
    """
    z = z.detach()
    nxt = torch.cat([z[:, 1:], z[:, -1:]], dim=1)  # (N, T, d)
    has_next = torch.cat([step_mask[:, 1:], torch.zeros_like(step_mask[:, :1])], dim=1)  # (N, T)
    target = torch.where(has_next[..., None], nxt, z)
    nll = (0.5 * math.log(2 * math.pi) + torch.log(pred_std)
           + 0.5 * ((target - pred_mean) / pred_std).pow(2)).sum(dim=2)  # (N, T)
    w = step_mask.to(nll.dtype)
    return (nll * w).sum() / w.sum().clamp_min(1.0)
