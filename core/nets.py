"""Encoders, decoders, the T-DPSOM predictor and the prototype map as ``nn.Module`` objects.

Layer order, initialisers and the reference's inert batch norm follow METHOD.md 2.2, 3.2 and
6.1. Shapes in comments: ``B`` rows, ``D`` features, ``d`` latent size, ``K`` nodes.
"""

from __future__ import annotations

import functools
import math
import threading
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import NetworkConfig

__all__ = [
    "Linear",
    "fast_cpu_linear",
    "fast_cpu_linear_active",
    "onednn_linear_available",
    "AffineBN",
    "Posterior",
    "MLPEncoder",
    "MLPDecoder",
    "ConvEncoder",
    "ConvDecoder",
    "HardSigmoidLSTM",
    "Predictor",
    "DPSOMNet",
    "TDPSOMNet",
    "count_parameters",
]


# ------------------------------------------------------------------ float32 linear layers on the CPU
@functools.lru_cache(maxsize=1)
def _onednn_linear():
    """oneDNN's dense-tensor linear kernel, or None where this PyTorch build lacks it.

    The kernel is a private operator, so it is only trusted after it reproduces
    ``F.linear`` on a small problem (including transposed views, as the backward uses them);
    any other signature or result in a future PyTorch falls back to the default path. Probed
    on first use (the first training run), never at import.
    """
    try:
        if not torch.backends.mkldnn.is_available():
            return None
        op = torch.ops.mkldnn._linear_pointwise
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(8, 5, generator=gen)
        w = torch.randn(3, 5, generator=gen)
        b = torch.randn(3, generator=gen)
        ok = torch.allclose(op(x, w, b, "none", [], ""), F.linear(x, w, b), atol=1e-5)
        ok = ok and torch.allclose(op(x.t().contiguous().t(), w.t().contiguous().t(), None, "none", [], ""),
                                   F.linear(x, w), atol=1e-5)
        return op if ok else None
    except Exception:  # noqa: BLE001 - any failure of a private operator means "do not use it"
        return None


# Whether Linear layers called on this thread take the oneDNN path (see fast_cpu_linear).
_linear_choice = threading.local()

# Below this many multiply-adds a call's fixed cost outweighs the faster kernel.
_MIN_FAST_MACS = 1 << 20

# Distinct batch sizes one layer runs through oneDNN (see Linear._few_shapes): a fixed batch,
# a shorter last batch and a few inference chunk sizes fit.
_MAX_FAST_SHAPES = 8


def onednn_linear_available() -> bool:
    """Whether this PyTorch build offers the oneDNN linear kernel used by :class:`Linear`."""
    return _onednn_linear() is not None


def fast_cpu_linear_active() -> bool:
    """Whether :class:`Linear` layers called on this thread now use oneDNN."""
    return bool(getattr(_linear_choice, "on", False))


@contextmanager
def fast_cpu_linear(enabled: bool = True, *, keep_outer: bool = False):
    """Within the block, float32 CPU :class:`Linear` layers on this thread use oneDNN.

    The training loop enters it (``keep_outer=True``) for the duration of a run; outside a
    run every layer takes torch's default GEMM. Where the kernel is missing the block changes
    nothing. The choice is per thread, so training on one thread leaves other threads alone.

    Parameters
    ----------
    enabled : bool
        False routes every layer through the default GEMM within the block (the results agree
        to float32 rounding), e.g. to measure what oneDNN gains.
    keep_outer : bool
        Keep the choice of an enclosing block when there is one.
    """
    before = getattr(_linear_choice, "on", None)
    if not (keep_outer and before is not None):
        _linear_choice.on = bool(enabled) and onednn_linear_available()
    try:
        yield
    finally:
        _linear_choice.on = before


def _onednn(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    """``x @ w.T + b`` by oneDNN; ``x (n, k)`` and ``w (m, k)`` may be transposed views."""
    return _onednn_linear()(x, w, b, "none", [], "")


class _OneDNNLinearFn(torch.autograd.Function):
    """``y = x W^T + b`` with the forward and both backward products done by oneDNN.

    The backward products are written as linear layers of transposed views, which oneDNN
    reads in place: ``dx = dy W`` is ``linear(dy, W^T)`` and ``dW = dy^T x`` is
    ``linear(dy^T, x^T)``.
    """

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return _onednn(x, weight, bias)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        grad = grad.contiguous()  # e.g. an expanded gradient from a sum
        gx = _onednn(grad, weight.t(), None) if ctx.needs_input_grad[0] else None
        gw = _onednn(grad.t(), x.t(), None) if ctx.needs_input_grad[1] else None
        gb = grad.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return gx, gw, gb


def _autocast_on(device_type: str) -> bool:
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # PyTorch before 2.4 had no device argument
        return torch.is_autocast_cpu_enabled() if device_type == "cpu" else torch.is_autocast_enabled()


class Linear(nn.Linear):
    """``nn.Linear`` whose float32 CPU products use oneDNN rather than torch's default GEMM.

    On CPUs where the default BLAS takes a slow generic path (AMD processors with MKL, for
    one), oneDNN's kernel is about twice as fast in float32 for the layer sizes of this
    model, forward and backward. Same parameters, same initialisation and the same results
    up to float32 rounding. Other devices and dtypes, autocast (whose bf16 products already go
    to oneDNN), inputs that are not 2-D and tiny layers take the ordinary path, and so does
    every call outside a :func:`fast_cpu_linear` block (a training run enters one).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (fast_cpu_linear_active() and x.dim() == 2 and x.shape[1] == self.in_features
                and x.device.type == "cpu" and x.dtype == torch.float32
                and self.weight.dtype == torch.float32
                and x.shape[0] * self.in_features * self.out_features >= _MIN_FAST_MACS
                and not _autocast_on("cpu") and self._few_shapes(x.shape[0])):
            return _OneDNNLinearFn.apply(x.contiguous(), self.weight, self.bias)
        return super().forward(x)

    def _few_shapes(self, rows: int) -> bool:
        """Whether this layer has met few enough batch sizes for oneDNN to keep paying off.

        oneDNN keeps memory for every problem shape it has run; with batches whose row count
        changes every step (T-DPSOM trains on the real steps of each batch of patients) that
        grew a small training from 0.45 to 1.2 GB. Such layers go back to the default GEMM.
        """
        seen = self.__dict__.setdefault("_row_counts", set())
        if rows in seen:
            return True
        if len(seen) >= _MAX_FAST_SHAPES:
            return False
        seen.add(rows)
        return True


# ------------------------------------------------------------------ layers
class AffineBN(nn.Module):
    """The reference's batch norm as it actually ran: ``y = gamma * h / sqrt(1 + 1e-3) + beta``.

    Keras layers called without a training flag used their never-updated running statistics
    (mean 0, variance 1), so each BN reduced to this learnable per-unit affine map.
    """

    def __init__(self, n: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.bias = nn.Parameter(torch.zeros(n))
        self._scale = 1.0 / math.sqrt(1.0 + 1e-3)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        # One fused multiply-add over the activations instead of a product and a sum.
        return torch.addcmul(self.bias, h, self.weight * self._scale)


def _norm(mode: str, n: int, images: bool = False) -> nn.Module:
    """The normalisation layer of ``bn_mode`` for ``n`` features, or ``n`` channels of images."""
    if mode == "reference_affine":
        return _AffineBN2d(n) if images else AffineBN(n)
    if mode == "batchnorm":
        # Keras defaults: epsilon 1e-3, momentum 0.99 (PyTorch's momentum is 1 - that).
        return (nn.BatchNorm2d if images else nn.BatchNorm1d)(n, eps=1e-3, momentum=0.01)
    return nn.Identity()


def _glorot(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


@dataclass
class Posterior:
    """A Gaussian posterior over the latent space for a batch.

    Attributes
    ----------
    mean : Tensor (B, d)
    std : Tensor (B, d) or None
        Diagonal standard deviations (``posterior="diag"``).
    scale_tril : Tensor (B, d, d) or None
        Lower-triangular scale with positive diagonal (``posterior="full"``); cov = L L^T.
    """

    mean: torch.Tensor
    std: torch.Tensor | None = None
    scale_tril: torch.Tensor | None = None

    def rsample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """One reparameterised sample ``(B, d)``."""
        eps = torch.randn(self.mean.shape, generator=generator, device=self.mean.device, dtype=self.mean.dtype)
        if self.scale_tril is not None:
            # L eps as a broadcast product summed over columns: on the CPU the batched
            # matrix-vector product's backward loops over the batch and is slower.
            return self.mean + (self.scale_tril * eps.unsqueeze(1)).sum(dim=2)
        return self.mean + self.std * eps


class _FullPosteriorFromOutput(torch.autograd.Function):
    """Mean ``(B, d)`` and lower-triangular scale ``(B, d, d)`` from the head's output ``(B, d + d(d+1)/2)``.

    The output holds the mean, then the lower triangle packed row by row. Packed entry ``k``
    goes to flat position ``flat[k]`` of the ``d * d`` matrix; the diagonal (packed
    positions ``diag_pos``) passes through ``softplus + floor``. The values and gradients are
    exactly those of writing this with slices, ``index_copy`` and ``softplus``, but the
    triangle is placed by a scatter along one axis (several times faster on the CPU than
    ``index_copy``), and the backward writes the gradient of the whole output once instead
    of a zero-padded tensor per slice that autograd then adds up.
    """

    @staticmethod
    def forward(ctx, out, flat, diag_pos, d, std_floor):
        b = out.shape[0]
        raw = out[:, d:]
        pre = raw.index_select(1, diag_pos)  # (B, d) diagonal before the softplus
        tril = out.new_zeros(b, d * d).scatter_(1, flat.expand(b, -1), raw)
        tril[:, :: d + 1] = F.softplus(pre) + std_floor  # flat positions i * (d + 1): the diagonal
        ctx.save_for_backward(pre, flat, diag_pos)
        ctx.d = d
        return out[:, :d].clone(), tril.view(b, d, d)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g_mean, g_tril):
        pre, flat, diag_pos = ctx.saved_tensors
        d, b = ctx.d, pre.shape[0]
        # Unused outputs arrive as zeros (autograd materialises them), never as None.
        g = g_tril.reshape(b, d * d)
        # Gathered into a tensor of its own: index_select into a strided slice of the result
        # takes a path twice as slow, more than the copy by cat below costs.
        g_packed = g.index_select(1, flat)
        # Contiguous, as autograd would pass it: a strided input takes a non-vectorised exp
        # that can round differently.
        g_diag = torch.ops.aten.softplus_backward(g[:, :: d + 1].contiguous(), pre, 1, 20)
        g_packed.index_copy_(1, diag_pos, g_diag)
        return torch.cat([g_mean, g_packed], dim=1), None, None, None, None


class _PosteriorHead(nn.Module):
    """Linear head to a full-covariance (d + d(d+1)/2 outputs) or diagonal (2d) Gaussian."""

    def __init__(self, in_dim: int, latent_dim: int, kind: str, std_floor: float) -> None:
        super().__init__()
        self.kind, self.d, self.std_floor = kind, latent_dim, std_floor
        n_out = latent_dim + latent_dim * (latent_dim + 1) // 2 if kind == "full" else 2 * latent_dim
        self.linear = Linear(in_dim, n_out)
        if kind == "full":
            # Packed order is row-major over the lower triangle (torch.tril_indices).
            rows, cols = torch.tril_indices(latent_dim, latent_dim)
            self.register_buffer("_flat", rows * latent_dim + cols, persistent=False)  # (d(d+1)/2,)
            self.register_buffer("_diag", torch.nonzero(rows == cols).squeeze(1), persistent=False)  # (d,)

    def forward(self, h: torch.Tensor) -> Posterior:
        return self.posterior_from_output(self.linear(h).float())  # float32 even under autocast

    def posterior_from_output(self, out: torch.Tensor) -> Posterior:
        """The posterior from the layer's raw output ``out (B, n_out)``."""
        if self.kind == "diag":
            mean, raw = out[:, : self.d], out[:, self.d:]
            return Posterior(mean, std=F.softplus(raw) + self.std_floor)
        # Diagonal entries pass through softplus (+ floor); off-diagonal ones stay free.
        mean, tril = _FullPosteriorFromOutput.apply(out, self._flat, self._diag, self.d, self.std_floor)
        return Posterior(mean, scale_tril=tril)


class MLPEncoder(nn.Module):
    """``D -> [Dense -> LeakyReLU -> Dropout -> Norm] x len(hidden) -> Gaussian posterior``."""

    def __init__(self, in_dim: int, cfg: NetworkConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        prev = in_dim
        for width in cfg.hidden:
            layers += [Linear(prev, width), nn.LeakyReLU(cfg.leaky_slope)]
            if cfg.dropout > 0:
                layers.append(nn.Dropout(cfg.dropout))
            layers.append(_norm(cfg.bn_mode, width))
            prev = width
        self.body = nn.Sequential(*layers)
        self.head = _PosteriorHead(prev, cfg.latent_dim, cfg.posterior, cfg.std_floor)
        _glorot(self)

    def forward(self, x: torch.Tensor) -> Posterior:  # x: (B, D)
        return self.head(self.body(x))


class MLPDecoder(nn.Module):
    """``d -> [Dense -> LeakyReLU -> Norm] x len(hidden) -> D logits, or D means + D stds``.

    Bernoulli output returns logits ``(B, D)``; Gaussian output returns ``(mean, std)``.
    """

    def __init__(self, out_dim: int, cfg: NetworkConfig, likelihood: str) -> None:
        super().__init__()
        self.likelihood, self.out_dim = likelihood, out_dim
        self.leaky_logits = cfg.leaky_logits and likelihood == "bernoulli"
        self.slope, self.std_floor = cfg.leaky_slope, cfg.std_floor
        layers: list[nn.Module] = []
        prev = cfg.latent_dim
        for width in reversed(cfg.hidden):
            layers += [Linear(prev, width), nn.LeakyReLU(cfg.leaky_slope), _norm(cfg.bn_mode, width)]
            prev = width
        self.body = nn.Sequential(*layers)
        self.out = Linear(prev, out_dim * (2 if likelihood == "gaussian" else 1))
        _glorot(self)

    def forward(self, z: torch.Tensor):  # z: (B, d)
        out = self.out(self.body(z)).float()
        if self.likelihood == "bernoulli":
            return F.leaky_relu(out, self.slope) if self.leaky_logits else out
        mean, raw = out[:, : self.out_dim], out[:, self.out_dim:]
        return mean, F.softplus(raw) + max(self.std_floor, 1e-6)


class ConvEncoder(nn.Module):
    """Convolutional encoder for square single-channel images with a side divisible by 4.

    ``x - 0.5 -> Conv32 -> BN -> Pool -> Conv64 -> BN -> Pool -> Conv128 -> BN -> Conv256 -> BN
    -> flatten -> posterior`` (METHOD.md 2.2, convolutional variant; 3x3 convs, LeakyReLU).
    """

    def __init__(self, in_dim: int, cfg: NetworkConfig) -> None:
        super().__init__()
        side = int(round(math.sqrt(in_dim)))
        if side * side != in_dim or side % 4:
            raise ValueError(
                f"the convolutional encoder needs square images with a side divisible by 4; "
                f"{in_dim} features is not such an image (use encoder='mlp')"
            )
        self.side = side
        slope = cfg.leaky_slope

        def block(cin, cout):
            return [nn.Conv2d(cin, cout, 3, padding=1), nn.LeakyReLU(slope), _norm(cfg.bn_mode, cout, images=True)]

        self.body = nn.Sequential(
            *block(1, 32), nn.MaxPool2d(2), *block(32, 64), nn.MaxPool2d(2), *block(64, 128), *block(128, 256),
            nn.Flatten(),
        )
        self.head = _PosteriorHead(256 * (side // 4) ** 2, cfg.latent_dim, cfg.posterior, cfg.std_floor)
        _glorot(self)

    def forward(self, x: torch.Tensor) -> Posterior:  # x: (B, side*side)
        img = x.view(-1, 1, self.side, self.side) - 0.5
        return self.head(self.body(img))


class ConvDecoder(nn.Module):
    """Mirror of :class:`ConvEncoder` producing Bernoulli logits ``(B, side*side)``."""

    def __init__(self, out_dim: int, cfg: NetworkConfig) -> None:
        super().__init__()
        side = int(round(math.sqrt(out_dim)))
        self.q = side // 4
        slope = cfg.leaky_slope
        self.likelihood = "bernoulli"
        self.dense = nn.Sequential(Linear(cfg.latent_dim, 256 * self.q * self.q), nn.LeakyReLU(slope))
        self.body = nn.Sequential(
            nn.ConvTranspose2d(256, 128, 3, padding=1), nn.LeakyReLU(slope), _norm(cfg.bn_mode, 128, images=True),
            nn.ConvTranspose2d(128, 64, 3, padding=1), nn.LeakyReLU(slope), _norm(cfg.bn_mode, 64, images=True),
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.ConvTranspose2d(64, 32, 3, padding=1), nn.LeakyReLU(slope), _norm(cfg.bn_mode, 32, images=True),
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(32, 1, 3, padding=1),
        )
        _glorot(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # z: (B, d)
        h = self.dense(z).view(-1, 256, self.q, self.q)
        return self.body(h).flatten(1).float()


class _AffineBN2d(AffineBN):
    def forward(self, h: torch.Tensor) -> torch.Tensor:  # h: (B, C, H, W)
        return h * (self.weight * self._scale)[None, :, None, None] + self.bias[None, :, None, None]


class HardSigmoidLSTM(nn.Module):
    """Single-layer LSTM with Keras-v1 defaults: hard-sigmoid gates ``clip(0.2 x + 0.5, 0, 1)``,
    one bias vector per gate (forget bias starts at 1), Glorot input and orthogonal recurrent
    weights. Used by the parity preset; the clean preset uses ``torch.nn.LSTM``.
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden_size, hidden_size))
        self.bias = nn.Parameter(torch.zeros(4 * hidden_size))
        nn.init.xavier_uniform_(self.weight_ih)
        for i in range(4):
            nn.init.orthogonal_(self.weight_hh.data[i * hidden_size:(i + 1) * hidden_size])
        self.bias.data[hidden_size:2 * hidden_size] = 1.0  # gate order i, f, g, o

    def forward(self, x: torch.Tensor, state=None):
        """``x (N, T, d_in)`` -> outputs ``(N, T, H)`` and the final ``(h, c)``, each ``(N, H)``."""
        n = x.shape[0]
        if state is None:
            h = x.new_zeros(n, self.hidden_size)
            c = x.new_zeros(n, self.hidden_size)
        else:
            h, c = state
        # The input projection of every step at once; only the recurrence loops over time.
        gates_x = x @ self.weight_ih.T + self.bias  # (N, T, 4H)
        outs = []
        # unbind() instead of gates_x[:, step]: the backward of indexing allocates a zero tensor
        # the size of all of gates_x for every step, which made the loop quadratic in T.
        for gx in gates_x.unbind(dim=1):
            gates = gx + h @ self.weight_hh.T
            i, f, g, o = gates.chunk(4, dim=1)
            i, f, o = (torch.clamp(0.2 * v + 0.5, 0.0, 1.0) for v in (i, f, o))
            c = f * c + i * torch.tanh(g)
            h = o * torch.tanh(c)
            outs.append(h)
        return torch.stack(outs, dim=1), (h, c)


class Predictor(nn.Module):
    """LSTM over detached latent sequences, then ``Dense -> LeakyReLU -> Dense(2d)``.

    The output at step ``t`` is a diagonal Gaussian over ``z_{t+1}`` (METHOD.md 3.2). With
    ``cfg.predict_change`` the first ``d`` outputs are the change ``z_{t+1} - z_t`` and the
    input is added back, so the untrained predictor already says "the state stays".
    """

    def __init__(self, cfg: NetworkConfig) -> None:
        super().__init__()
        d, hdim = cfg.latent_dim, cfg.lstm_dim
        self.d, self.std_floor = d, max(cfg.std_floor, 1e-6)
        self.predict_change = cfg.predict_change
        if cfg.lstm_gates == "hard_sigmoid":
            self.lstm = HardSigmoidLSTM(d, hdim)
        else:
            self.lstm = nn.LSTM(d, hdim, batch_first=True)
            nn.init.xavier_uniform_(self.lstm.weight_ih_l0)
            for i in range(4):
                nn.init.orthogonal_(self.lstm.weight_hh_l0.data[i * hdim:(i + 1) * hdim])
            nn.init.zeros_(self.lstm.bias_ih_l0)
            nn.init.zeros_(self.lstm.bias_hh_l0)
            self.lstm.bias_ih_l0.data[hdim:2 * hdim] = 1.0
        self.head = nn.Sequential(nn.Linear(hdim, hdim), nn.LeakyReLU(cfg.leaky_slope), nn.Linear(hdim, 2 * d))
        _glorot(self.head)

    def forward(self, z: torch.Tensor, state=None):
        """``z (N, T, d)`` -> ``mean (N, T, d)``, ``std (N, T, d)``, final LSTM state."""
        out, state = self.lstm(z, state)
        p = self.head(out).float()
        mean = p[..., : self.d] + z.float() if self.predict_change else p[..., : self.d]
        return mean, F.softplus(p[..., self.d:]) + self.std_floor, state


class DPSOMNet(nn.Module):
    """Encoder, decoder and the ``(K, d)`` prototype map of DPSOM.

    Parameters
    ----------
    n_features : int
        Input size ``D``.
    n_nodes : int
        Number of prototypes ``K``.
    cfg : NetworkConfig
    likelihood : {"bernoulli", "gaussian"}
    """

    def __init__(self, n_features: int, n_nodes: int, cfg: NetworkConfig, likelihood: str) -> None:
        super().__init__()
        self.likelihood = likelihood
        if cfg.encoder == "conv":
            if likelihood != "bernoulli":
                raise ValueError("the convolutional model is for images in [0, 1] (Bernoulli likelihood)")
            self.encoder: nn.Module = ConvEncoder(n_features, cfg)
            self.decoder: nn.Module = ConvDecoder(n_features, cfg)
        else:
            self.encoder = MLPEncoder(n_features, cfg)
            self.decoder = MLPDecoder(n_features, cfg, likelihood)
        # Truncated normal, std 0.05, redrawn beyond 2 std (METHOD.md 2.2).
        self.prototypes = nn.Parameter(nn.init.trunc_normal_(torch.empty(n_nodes, cfg.latent_dim), 0.0, 0.05, -0.1, 0.1))

    def vae_parameters(self) -> list[nn.Parameter]:
        return list(self.encoder.parameters()) + list(self.decoder.parameters())


class TDPSOMNet(DPSOMNet):
    """:class:`DPSOMNet` plus the LSTM :class:`Predictor` of T-DPSOM."""

    def __init__(self, n_features: int, n_nodes: int, cfg: NetworkConfig, likelihood: str = "gaussian") -> None:
        super().__init__(n_features, n_nodes, cfg, likelihood)
        self.predictor = Predictor(cfg)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters (batch-norm running statistics are buffers, not counted)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
