"""The training loop: phases, one global-step Adam, target refreshes, devices, divergence guard.

:class:`Trainer` runs the schedule of METHOD.md (2.10 for DPSOM, 3.4 for T-DPSOM) on a
``DPSOMNet`` or ``TDPSOMNet``:

1. ``pretrain``   VAE only (encoder, decoder), loss ``L_elbo``;
2. ``som_init``   prototypes only, Kohonen-style ``L_init`` in stages of decreasing rate;
3. ``joint``      everything, ``L_DPSOM`` (T-DPSOM: ``L_T`` then one extra step on ``L_pred``),
                  with the target distribution refreshed at the start of every epoch;
4. ``prediction`` (T-DPSOM) the LSTM predictor alone, ``L_pred``.

It is a generator of :class:`~core.progress.TrainProgress` and can be stopped after any
step and resumed exactly: its whole state (position in the schedule, optimiser moments,
random generators, the epoch's permutation and target distribution) is a plain tree of
numpy arrays and scalars, see :meth:`Trainer.state_dict`.
"""

from __future__ import annotations

import ctypes
import math
import os
import sys
import threading
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from . import losses as L
from .config import Config
from .distributed import Cluster
from .errors import TrainingDiverged
from .grid import SOMGrid
from .nets import DPSOMNet, Posterior, TDPSOMNet, fast_cpu_linear
from .optim import GlobalStepAdam
from .progress import TrainProgress

__all__ = ["TrainData", "Trainer", "select_device", "available_devices", "gpu_note", "EncodedBatch", "encode_rows",
           "elbo_terms", "precision_context",
           "batches_per_epoch", "phase_epochs", "schedule_steps", "rank_batch_size", "reopened_position",
           "rescheduled_state"]


def select_device(name: str = "auto") -> torch.device:
    """Resolve ``"auto" | "cpu" | "cuda" | "cuda:N" | "mps"`` to an available ``torch.device``.

    ``auto`` prefers CUDA, then Apple's MPS, then the CPU. Asking for a device that is not
    there raises ``ValueError`` with a plain explanation.
    """
    name = (name or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            why = "this PyTorch was built without CUDA" if torch.version.cuda is None else "no NVIDIA GPU is visible"
            raise ValueError(f"device {name!r} was requested but {why}; use --device cpu or auto")
        return torch.device(name)
    if name == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError("device 'mps' was requested but Apple's Metal backend is not available; use cpu")
        return torch.device("mps")
    if name == "cpu":
        return torch.device("cpu")
    raise ValueError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps")


def gpu_note() -> str | None:
    """A plain sentence on why training will run on the processor, or None when a GPU is usable."""
    if torch.cuda.is_available():
        return None
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return None
    if torch.version.cuda is None:
        return ("No graphics card is used: this installation's PyTorch was built for the processor "
                "only, so training runs on the CPU.")
    return (f"No graphics card is used: PyTorch supports CUDA {torch.version.cuda} but sees no NVIDIA GPU "
            "(is the driver installed?), so training runs on the CPU.")


def available_devices() -> list[dict]:
    """Devices a person can pick: always the CPU, plus each CUDA GPU (name, memory) and MPS.

    The CPU entry carries a ``"note"`` (see :func:`gpu_note`) when no GPU can be used.
    """
    devices = [{"name": "cpu", "label": f"CPU ({os.cpu_count() or 1} cores)", "memory_bytes": 0}]
    note = gpu_note()
    if note:
        devices[0]["note"] = note
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            devices.append({
                "name": f"cuda:{i}",
                "label": f"{props.name} ({props.total_memory / 2**30:.0f} GB)",
                "memory_bytes": int(props.total_memory),
            })
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        devices.append({"name": "mps", "label": "Apple GPU (Metal)", "memory_bytes": 0})
    return devices


@dataclass
class TrainData:
    """Model-space training tensors.

    Attributes
    ----------
    x : Tensor
        ``(n, D)`` for tables, ``(N, T, D)`` for series; float32 without NaN.
    mask : Tensor (bool), same shape
        True where the value was observed; only those enter the likelihood.
    step_mask : Tensor (bool) ``(N, T)`` or None
        Series only: True on real (non-padding) steps.
    """

    x: torch.Tensor
    mask: torch.Tensor
    step_mask: torch.Tensor | None = None

    @property
    def temporal(self) -> bool:
        return self.step_mask is not None

    @property
    def n_samples(self) -> int:
        return int(self.x.shape[0])

    def rows(self, idx: torch.Tensor):
        """Real rows of samples ``idx``: ``x (B, D)``, ``mask (B, D)`` and, for series, ``step_mask (b, T)``.

        For series ``idx`` names patients and the rows are their real steps in (patient, time)
        order. An on-disk cohort shard (:class:`core.io.cohort_h5.CohortShard`) answers the same.
        """
        x, m = self.x[idx], self.mask[idx]
        if self.step_mask is None:
            return x, m, None
        sm = self.step_mask[idx]  # (b, T)
        return x[sm], m[sm], sm

    def epoch_order(self, generator: torch.Generator, shuffle: bool) -> torch.Tensor:
        """The order of samples in one epoch: a random permutation, or ``arange`` unshuffled."""
        n = self.n_samples
        return torch.randperm(n, generator=generator) if shuffle else torch.arange(n)

    def new_store(self, tail_shape: tuple, dtype=torch.float32) -> torch.Tensor:
        """A zeroed ``(n, *tail_shape)`` CPU array for per-sample state such as the target distribution."""
        return torch.zeros((self.n_samples, *tail_shape), dtype=dtype)


@dataclass
class EncodedBatch:
    """Forward pass of one batch of rows (all ``(B, ...)``; ``B`` real rows)."""

    posterior: Posterior
    z: torch.Tensor


def encode_rows(net: DPSOMNet, x: torch.Tensor, *, sample: bool, generator: torch.Generator | None,
                autocast) -> EncodedBatch:
    """Encode rows ``x (B, D)`` and draw one reparameterised sample (or take the mean)."""
    with autocast():
        post = net.encoder(x)
    z = post.rsample(generator) if sample else post.mean
    return EncodedBatch(post, z)


def precision_context(precision: str, device: torch.device):
    """A context-manager factory for the configured precision (bf16 autocast or nothing)."""
    if precision == "bf16":
        return lambda: torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return nullcontext


def elbo_terms(net: DPSOMNet, enc: EncodedBatch, x: torch.Tensor, m: torch.Tensor, kl_weight: float,
               prior_sd: float, autocast=nullcontext) -> dict:
    """Mean reconstruction NLL and weighted KL of a batch of rows (eq. 2.8).

    Returns ``{"recon": scalar, "kl": scalar}``; the ELBO loss is their sum.
    """
    with autocast():
        out = net.decoder(enc.z)
    if net.likelihood == "bernoulli":
        nll = L.bernoulli_nll(out, x, m)
    else:
        nll = L.gaussian_nll(out[0], out[1], x, m)
    post = enc.posterior
    if post.scale_tril is not None:
        kl = L.kl_full_to_isotropic(post.mean, post.scale_tril, prior_sd)
    else:
        kl = L.kl_diag_to_isotropic(post.mean, post.std, prior_sd)
    return {"recon": nll.mean(), "kl": kl_weight * kl.mean()}


def batches_per_epoch(n_samples: int, batch_size: int, drop_last: bool) -> int:
    """Minibatches in one epoch over ``n_samples`` (samples or patients)."""
    b = max(1, min(batch_size, n_samples))
    if drop_last:
        return max(1, n_samples // b)
    full, rest = divmod(n_samples, b)
    # A trailing batch of one sample would break batch norm; it joins the previous batch.
    return full + (1 if rest > 1 or full == 0 else 0)


def phase_epochs(config: Config) -> list[tuple[str, int]]:
    """The phases ``config`` runs, in order, with their epoch counts (empty phases left out)."""
    t = config.train
    phases = [("pretrain", t.epochs_pretrain), ("som_init", sum(t.som_init_epochs)), ("joint", t.epochs_joint)]
    if config.model == "tdpsom":
        phases.append(("prediction", t.epochs_pred))
    return [(name, n) for name, n in phases if n > 0]


def rank_batch_size(batch_size: int, n_samples: int, world_size: int = 1) -> int:
    """Samples per batch on each of ``world_size`` processes.

    ``batch_size`` is the global batch: every optimiser step sees about as many samples
    whether it runs in one process or in several.
    """
    return max(1, min(batch_size, n_samples) // max(1, world_size))


def schedule_steps(config: Config, n_samples: int, world_size: int = 1) -> int:
    """Optimiser steps the whole schedule takes on ``n_samples`` (``max_steps`` respected).

    With ``world_size`` processes each takes a shard of ``n_samples`` and a share of the batch.
    """
    t = config.train
    smallest_shard = n_samples // max(1, world_size)
    per_epoch = batches_per_epoch(smallest_shard, rank_batch_size(t.batch_size, n_samples, world_size), t.drop_last)
    return _steps_for(config, per_epoch)


def _steps_for(config: Config, per_epoch: int) -> int:
    t = config.train
    temporal = config.model == "tdpsom"
    # T-DPSOM's joint phase takes two optimiser steps per batch (full objective, then L_pred).
    epochs = sum(n * (2 if temporal and name == "joint" else 1) for name, n in phase_epochs(config))
    total = per_epoch * epochs
    return total if t.max_steps is None else min(total, int(t.max_steps))


#: Latent codes k-means starts from at most (gathered over all ranks); enough to place 16x16
#: centres well while keeping the start independent of the cohort's size.
_KMEANS_SAMPLE = 200_000

#: Most rows (patient steps for series) one piece of a pass over the whole training set holds:
#: the target refresh and the prototype start then need memory for this many rows, not for
#: the whole cohort.
_PASS_ROWS = 65_536


#: Passes of the prototype refinement while its neighbourhood narrows, then at its final width.
_REFINE_PASSES = 20
_REFINE_HOLD = 10


class _Objective(torch.nn.Module):
    """One module whose forward computes a training step's loss terms.

    DistributedDataParallel synchronises gradients for the backward pass of whatever its
    wrapped module's forward returned; the trainer computes its terms from several parts of
    the network (encoder, decoder, prototypes, predictor), so it wraps this instead. Returns
    ``{"terms": {name: scalar}, "total": scalar, "z_seq": (b, T, d) or None}``.
    """

    def __init__(self, net: torch.nn.Module, forward) -> None:
        super().__init__()
        self.net = net
        self._compute = forward

    def forward(self, kind: str, idx: torch.Tensor, z_seq: torch.Tensor | None = None) -> dict:
        return self._compute(kind, idx, z_seq)


class _Phase:
    def __init__(self, name: str, n_epochs: int, lrs: list[float], params: list[torch.nn.Parameter]):
        self.name, self.n_epochs, self.lrs, self.params = name, n_epochs, lrs, params


_ADVICE = {
    "recon": "check the input for extreme values, or lower the learning rate",
    "kl": "lower the learning rate or the latent size",
    "elbo": "check the input for extreme values, or lower the learning rate",
    "cah": "lower the clustering weight (gamma) or the learning rate",
    "som": "lower the SOM weight (beta) or the learning rate",
    "smooth": "lower the smoothness weight (kappa)",
    "pred": "lower the prediction weight (eta) or the learning rate",
    "jump": "lower the jump weight or the learning rate",
    "balance": "lower the balance weight or the learning rate",
    "init": "lower the SOM-initialisation learning rates",
    "gradients": "lower the learning rate, or choose the clean preset (it bounds the variances)",
}


class Trainer:
    """Run (and resume) the training schedule of a DPSOM or T-DPSOM network.

    Parameters
    ----------
    net : DPSOMNet or TDPSOMNet
        Already on ``device``.
    config : Config
    data : TrainData or CohortShard
        Already on ``device``; in a process group, this process's shard.
    device : torch.device
    cluster : Cluster, optional
        The process group (:mod:`core.distributed`); default one process. Every rank builds
        its trainer with the same network initialisation, config and seed.
    """

    def __init__(self, net: DPSOMNet, config: Config, data: TrainData, device: torch.device,
                 cluster: Cluster | None = None) -> None:
        self.net, self.cfg, self.data, self.device = net, config, data, device
        self.cluster = cluster if cluster is not None else Cluster.single(device)
        self.temporal = isinstance(net, TDPSOMNet)
        grid: SOMGrid = config.grid
        self.grid = grid
        self._neighbours = torch.as_tensor(grid.neighbours, device=device)
        self._neighbour_mask = torch.as_tensor(grid.neighbour_mask, device=device)
        self._adjacency = torch.as_tensor(grid.adjacency(), dtype=torch.float32, device=device)
        self._jump_cost = L.jump_cost(torch.as_tensor(grid.distances(), device=device))
        t = config.train
        self.optimizer = GlobalStepAdam(
            net.parameters(), lr=t.lr, bias_correction="global" if t.adam == "global_step" else "per_parameter"
        )
        self.phases = self._build_phases()
        world = self.cluster.world_size
        n_local = data.n_samples
        self.n_total = int(self.cluster.all_sum(torch.tensor([n_local], dtype=torch.int64)).item())
        self.batch_size = rank_batch_size(t.batch_size, self.n_total, world)
        # Every rank must take the same number of steps per epoch (collectives pair up step by
        # step), so the count follows the smallest shard; the last batch takes the remainder.
        self._n_batches = batches_per_epoch(self.cluster.all_min(n_local), self.batch_size, t.drop_last)
        if t.seed is not None:
            seed = t.seed
        else:
            seed = int(self.cluster.broadcast(torch.tensor([np.random.SeedSequence().entropy % (2**31)])).item())
        self.seed = seed
        # Ranks shuffle their shards and draw posterior samples independently; rank 0 draws
        # exactly what a single process would.
        rank_seed = seed + 1_000_003 * self.cluster.rank
        self.cpu_gen = torch.Generator().manual_seed(rank_seed)
        self.dev_gen = torch.Generator(device=device).manual_seed(rank_seed + 1)
        self._objective = self.cluster.wrap(_Objective(net, self._forward))
        # Position in the schedule: the next step to run is batch `batch` of epoch `epoch` of phase `phase`.
        self.phase, self.epoch, self.batch = 0, 0, 0
        self.global_step = 0
        self.perm: torch.Tensor | None = None
        self.target: torch.Tensor | None = None
        self.history: list[dict] = []
        self._epoch_sums: dict[str, float] = {}
        self._epoch_count = 0
        self.elapsed_total = 0.0
        self._precision_ctx = precision_context(t.precision, device)

    def leave_group(self) -> None:
        """Stop training as part of a process group: unwrap DistributedDataParallel and go on alone.

        Called before the group is destroyed, so that no DDP reducer outlives the group it
        talks through (its destructor would otherwise abort the process at exit).
        """
        if self.cluster.distributed:
            self._objective = self.cluster.unwrap(self._objective)
            self.cluster = Cluster.single(self.device)

    # ------------------------------------------------------------------ schedule
    def _build_phases(self) -> list[_Phase]:
        t, net = self.cfg.train, self.net
        init_lrs = [lr for n, lr in zip(t.som_init_epochs, t.som_init_lrs) for _ in range(n)]
        plan = {
            "pretrain": ([t.lr_pretrain] * t.epochs_pretrain, net.vae_parameters()),
            "som_init": (init_lrs, [net.prototypes]),
            "joint": ([t.lr] * t.epochs_joint, list(net.parameters())),
            "prediction": ([t.lr] * t.epochs_pred, list(net.predictor.parameters()) if self.temporal else []),
        }
        return [_Phase(name, n, *plan[name]) for name, n in phase_epochs(self.cfg)]

    def reschedule(self, config: Config) -> None:
        """Go on training under ``config``'s schedule: a longer joint phase, another step limit.

        The position stays where it is, unless the run has already left the joint phase and
        ``config`` asks for more joint epochs than it trained: then it goes back to the start
        of the first joint epoch not yet run (a finished run is reopened). Network weights,
        optimiser moments, random generators and history are kept.

        Parameters
        ----------
        config : Config
            The run's configuration with the new schedule (same network and grid).
        """
        self.cfg = config
        self.phases = self._build_phases()
        position = reopened_position(self.state_position(), self.history, config)
        if position is not None:
            self.phase, self.epoch, self.batch = position["phase"], position["epoch"], position["batch"]
            self.perm = self.target = None

    def state_position(self) -> dict:
        """Where the schedule stands: the next step is batch ``batch`` of epoch ``epoch`` of
        phase ``phase``; ``global_step`` steps have run."""
        return {"phase": self.phase, "epoch": self.epoch, "batch": self.batch, "global_step": self.global_step}

    @property
    def batches_per_epoch(self) -> int:
        return self._n_batches

    def _batch_index(self, b: int) -> torch.Tensor:
        n, size = self.data.n_samples, self.batch_size
        start = b * size
        stop = n if (b == self.batches_per_epoch - 1 and not self.cfg.train.drop_last) else min(n, start + size)
        return self.perm[start:stop]

    @property
    def total_steps(self) -> int:
        return _steps_for(self.cfg, self._n_batches)

    @property
    def finished(self) -> bool:
        return self.phase >= len(self.phases) or self.global_step >= self.total_steps

    # ------------------------------------------------------------------ running
    def run(self) -> Iterator[TrainProgress]:
        """Continue the schedule from where it stands, yielding after every optimiser step."""
        started = time.perf_counter()
        elapsed_before = self.elapsed_total
        snapshot_every = max(1, int(self.cfg.train.snapshot_every))
        try:
            with training_settings(self.device):
                while not self.finished:
                    phase = self.phases[self.phase]
                    if self.batch == 0 and self.perm is None:
                        self._start_epoch(phase)
                    elif self.perm is None or (phase.name == "joint" and self.target is None):
                        self._restore_epoch(phase)
                    idx = self._batch_index(self.batch)
                    lr_phase = phase.lrs[self.epoch]
                    terms, lr = self._step(phase, idx, lr_phase)
                    self.batch += 1
                    last_batch = self.batch >= self.batches_per_epoch
                    self._accumulate(terms)
                    if last_batch:
                        self._close_epoch(phase)
                        if (phase.name == "joint" and self.epoch == phase.n_epochs - 1
                                and self.cfg.train.refine_sigma):
                            self._refine_prototypes(*self.cfg.train.refine_sigma)
                    self.elapsed_total = elapsed_before + time.perf_counter() - started
                    snap = last_batch or self.global_step % snapshot_every == 0 or self.finished
                    progress = TrainProgress(
                        phase=phase.name, phase_index=self.phase, n_phases=len(self.phases),
                        epoch=self.epoch, n_epochs=phase.n_epochs, step=self.global_step,
                        total_steps=self.total_steps, losses=terms, lr=lr,
                        elapsed=self.elapsed_total, end_of_epoch=last_batch,
                        prototypes=self.net.prototypes.detach().cpu().numpy().copy() if snap else None,
                    )
                    if last_batch:
                        self.batch, self.perm, self.target = 0, None, None
                        self.epoch += 1
                        if self.epoch >= phase.n_epochs:
                            self.phase, self.epoch = self.phase + 1, 0
                    # Yield only once the position is final, so a state saved while the consumer
                    # holds this report resumes at the right place.
                    yield progress
        finally:
            self.elapsed_total = elapsed_before + time.perf_counter() - started
            self.net.eval()

    def _start_epoch(self, phase: _Phase) -> None:
        self.perm = self.data.epoch_order(self.cpu_gen, self.cfg.train.shuffle)
        # PCA / k-means starting prototypes are placed before the first phase that trains them
        # (the initialisation stages, or the joint phase when there are no such stages).
        first_proto_phase = next(p.name for p in self.phases if p.name in ("som_init", "joint", "prediction"))
        if (phase.name == first_proto_phase and phase.name != "prediction" and self.epoch == 0
                and self.cfg.train.som_init != "kohonen"):
            self._initialise_prototypes(self.cfg.train.som_init)
        if phase.name == "joint":
            self.target = self.compute_target()

    def _restore_epoch(self, phase: _Phase) -> None:
        """Resuming mid-epoch from a state without this rank's order or target.

        That happens after a distributed run (whose checkpoints leave out the per-rank target
        distribution) or when the number of processes changed: the rest of the epoch gets a
        fresh order and a target computed from the current network.
        """
        if self.perm is None:  # load_state_dict drops an order saved for another shard
            self.perm = self.data.epoch_order(self.cpu_gen, self.cfg.train.shuffle)
        if phase.name == "joint" and self.target is None:
            self.target = self.compute_target()

    def _accumulate(self, terms: dict[str, float]) -> None:
        for k, v in terms.items():
            self._epoch_sums[k] = self._epoch_sums.get(k, 0.0) + v
        self._epoch_count += 1

    def _close_epoch(self, phase: _Phase) -> None:
        row = {"phase": phase.name, "epoch": self.epoch, "step": self.global_step}
        row.update({k: v / max(1, self._epoch_count) for k, v in self._epoch_sums.items()})
        self.history.append(row)
        self._epoch_sums, self._epoch_count = {}, 0

    def _lr(self, lr_phase: float) -> float:
        t = self.cfg.train
        return lr_phase * t.decay_rate ** (self.global_step // t.decay_steps)

    # ------------------------------------------------------------------ one step
    def _step(self, phase: _Phase, idx: torch.Tensor, lr_phase: float) -> tuple[dict, float]:
        # Batch-norm running statistics change during the forward pass; keep a copy so that a
        # diverging step leaves no trace in the model.
        buffers = [b.detach().clone() for b in self.net.buffers()]
        try:
            return self._step_unguarded(phase, idx, lr_phase)
        except TrainingDiverged:
            with torch.no_grad():
                for b, saved in zip(self.net.buffers(), buffers):
                    b.copy_(saved)
            raise

    def _step_unguarded(self, phase: _Phase, idx: torch.Tensor, lr_phase: float) -> tuple[dict, float]:
        self.net.train()
        idx = idx.to(self.device)
        # Through the (possibly DistributedDataParallel-wrapped) objective, so that in a process
        # group the backward pass averages the gradients over ranks.
        out = self._objective(phase.name, idx)
        report, lr = self._apply(phase, out["terms"], out["total"], lr_phase)
        if phase.name == "joint" and self.temporal and self.global_step < self.total_steps:
            # The reference follows every joint step with one step on L_pred alone (METHOD.md 3.4).
            # It is reported with the joint step as "pred_step" rather than as a progress record
            # of its own, so that "total" stays the joint objective.
            extra_out = self._objective("pred_from_latent", idx, out["z_seq"])
            extra, _ = self._apply(phase, extra_out["terms"], extra_out["total"], lr_phase,
                                   params=self.net.predictor.parameters())
            report["pred_step"] = extra["pred"]
        return report, lr

    def _forward(self, kind: str, idx: torch.Tensor, z_seq: torch.Tensor | None = None) -> dict:
        """The loss terms of one step of phase ``kind`` on batch ``idx`` (see :class:`_Objective`)."""
        z_out = None
        if kind == "pretrain":
            terms = self._vae_terms(idx)
            total = terms["elbo"]
        elif kind == "som_init":
            terms = {"init": self._init_term(idx)}
            total = terms["init"]
        elif kind == "joint":
            terms, z_out = self._joint_terms(idx)
            total = sum(terms.values())
        elif kind == "pred_from_latent":
            terms = {"pred": self.cfg.weights.pred * self._pred_from_latent(z_seq, idx)}
            total = terms["pred"]
        else:
            terms = {"pred": self._pred_term(idx)}
            total = terms["pred"]
        return {"terms": terms, "total": total, "z_seq": z_out}

    def _apply(self, phase: _Phase, terms: dict, total: torch.Tensor, lr_phase: float, params=None):
        """Backward, check every term and the gradients for NaN/inf, then step; return floats."""
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        trainable = set(map(id, params if params is not None else phase.params))
        for p in self.net.parameters():
            if id(p) not in trainable:
                p.grad = None
        grads = [p.grad for p in self.net.parameters() if p.grad is not None]
        grad_sq = _sum_of_squares(grads) if grads else total.new_zeros(())
        names = list(terms)
        values = torch.stack([terms[k].detach().float() for k in names] + [total.detach().float(), grad_sq]).cpu()
        # Reported terms are means over ranks; a non-finite value on any rank makes every
        # rank's sum non-finite, so all ranks stop at the same step.
        values = self.cluster.all_sum(values) / self.cluster.world_size
        finite = torch.isfinite(values)
        if not bool(finite.all()):
            bad = next((names[i] for i in range(len(names)) if not finite[i]), "gradients")
            self._diverged(phase, bad)
        lr = self._lr(lr_phase)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.step(global_step=self.global_step)
        self.global_step += 1
        report = {k: float(values[i]) for i, k in enumerate(names)}
        report["total"] = float(values[len(names)])
        return report, lr

    def _diverged(self, phase: _Phase, term: str) -> None:
        what = "the gradients" if term == "gradients" else f"the loss term '{term}'"
        raise TrainingDiverged(
            f"Training stopped in phase '{phase.name}' (epoch {self.epoch + 1}, step {self.global_step + 1}): "
            f"{what} became NaN or infinite. The model keeps its last good state. "
            f"What to try: {_ADVICE.get(term, _ADVICE['gradients'])}.",
            phase=phase.name, term=term, step=self.global_step,
        )

    # ------------------------------------------------------------------ terms
    def _rows(self, idx: torch.Tensor):
        """Real rows of a batch: ``x (B, D)``, ``mask (B, D)`` and, for series, the step mask."""
        return self.data.rows(idx)

    def _elbo(self, enc: EncodedBatch, x: torch.Tensor, m: torch.Tensor, kl_weight: float) -> dict:
        return elbo_terms(self.net, enc, x, m, kl_weight, self.cfg.network.prior_sd, self._precision_ctx)

    def _vae_terms(self, idx: torch.Tensor) -> dict:
        x, m, _ = self._rows(idx)
        enc = encode_rows(self.net, x, sample=True, generator=self.dev_gen, autocast=self._precision_ctx)
        terms = self._elbo(enc, x, m, self.cfg.weights.kl)
        # Weighted as in the joint phase, so that the optimiser's moments carry over between the
        # phases at the scale the joint objective gives this term (Adam is invariant to one
        # common scale of the loss, not to a scale that changes between phases).
        terms["elbo"] = self.cfg.weights.vae * (terms.pop("recon") + terms.pop("kl"))
        return terms

    def _init_term(self, idx: torch.Tensor) -> torch.Tensor:
        x, _, _ = self._rows(idx)
        with torch.no_grad():
            z = encode_rows(self.net, x, sample=True, generator=self.dev_gen, autocast=self._precision_ctx).z
        return L.som_init_loss(z.float(), self.net.prototypes, self._neighbours, self._neighbour_mask)

    def _kl_weight(self) -> float:
        w, warm = self.cfg.weights.kl, self.cfg.train.kl_warmup_epochs
        return w * min(1.0, (self.epoch + 1) / warm) if warm > 0 else w

    def _joint_terms(self, idx: torch.Tensor):
        w, nu = self.cfg.weights, self.cfg.network.nu
        x, m, sm = self._rows(idx)
        enc = encode_rows(self.net, x, sample=True, generator=self.dev_gen, autocast=self._precision_ctx)
        z = enc.z  # (B, d) real rows
        elbo = self._elbo(enc, x, m, self._kl_weight())
        protos = self.net.prototypes
        a = L.soft_assignment(z, protos, nu)  # (B, K)
        a_nb = L.soft_assignment(z.detach(), protos, nu)  # (B, K): SOM loss reaches prototypes only
        g = self.target[idx.cpu()].to(self.device)
        g = g[sm] if sm is not None else g
        terms = {
            "elbo": w.vae * (elbo["recon"] + elbo["kl"]),
            "cah": w.cah * L.clustering_kl(g, a),
            "som": w.som * L.som_loss(a, a_nb, self._adjacency),
        }
        z_seq = None
        if self.temporal:
            z_seq = _unflatten(z, sm)  # (b, T, d), padding stays 0
            if self.cfg.train.smoothness == "prototype":
                bmu = torch.zeros(sm.shape, dtype=torch.long, device=z.device)
                bmu[sm] = L.squared_distances(z.detach(), protos.detach()).argmin(dim=1)
                terms["smooth"] = w.smooth * L.smoothness_prototype(z_seq, protos, bmu, sm, nu)
            else:
                terms["smooth"] = w.smooth * L.smoothness_embedding(z_seq, sm, nu)
            if w.jump > 0:
                # Through a_nb (detached latent): the map learns to put the nodes of consecutive
                # steps next to each other. Through the encoder the term pulled consecutive
                # embeddings together and cost the clusters (ICU seed 1 at weight 1: purity
                # 0.81 -> 0.71, effective nodes 27 -> 21).
                terms["jump"] = w.jump * L.expected_jump(_unflatten(a_nb, sm), sm, self._jump_cost)
            terms["pred"] = w.pred * self._pred_from_latent(z_seq, idx)
        if w.balance > 0:
            terms["balance"] = w.balance * L.usage_balance(a)
        return terms, z_seq

    def _pred_from_latent(self, z_seq: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        sm = self.data.step_mask[idx]
        with self._precision_ctx():
            mean, std, _ = self.net.predictor(z_seq.detach())
        return L.prediction_nll(mean, std, z_seq, sm)

    def _pred_term(self, idx: torch.Tensor) -> torch.Tensor:
        x, _, sm = self._rows(idx)
        with torch.no_grad():
            z = encode_rows(self.net, x, sample=True, generator=self.dev_gen, autocast=self._precision_ctx).z.float()
        z_seq = _unflatten(z, sm)
        return self.cfg.weights.pred * self._pred_from_latent(z_seq, idx)

    # ------------------------------------------------------------------ target & init
    def _chunks(self, pieces: int = 1) -> list[tuple[int, int]]:
        """Contiguous ``[start, stop)`` pieces of this rank's samples for whole-data passes.

        At least ``pieces`` of them, and none with more than ``_PASS_ROWS`` rows (patient steps
        for series), so that a pass over a large cohort needs memory for one piece only.
        """
        n = self.data.n_samples
        per_sample = self.data.step_mask.shape[1] if self.temporal else 1
        size = max(1, min(-(-n // max(1, min(pieces, n))), _PASS_ROWS // per_sample))
        return [(a, min(n, a + size)) for a in range(0, n, size)]

    @torch.no_grad()
    def compute_target(self):
        """Target distribution over the whole training set (METHOD.md 2.5), on the CPU.

        Returns ``(n, K)`` for tables or ``(N, T, K)`` for series (zeros on padding), for this
        rank's samples; the cluster frequencies ``f_k`` are summed over all ranks. Fresh
        posterior samples, in evaluation mode, chunked. The result lives in the data's store:
        in memory for arrays, in a temporary file for an on-disk cohort.
        """
        self.net.eval()
        k = self.grid.n_nodes
        steps = self.data.step_mask.shape[1] if self.temporal else None
        store = self.data.new_store((steps, k) if self.temporal else (k,))
        freq = torch.zeros(k, dtype=torch.float64)
        # Pass 1: soft assignments of every sample and their column sums.
        for a0, a1 in self._chunks(self.cfg.train.target_chunks):
            x, _, sm = self._rows(torch.arange(a0, a1, device=self.device))
            z = encode_rows(self.net, x, sample=True, generator=self.dev_gen, autocast=self._precision_ctx).z
            a = L.soft_assignment(z.float(), self.net.prototypes, self.cfg.network.nu).cpu()  # (rows, K)
            freq += a.sum(dim=0, dtype=torch.float64)
            store[a0:a1] = _unflatten(a, sm)
        freq = self.cluster.all_sum(freq).float()
        # Pass 2: sharpen in place.
        for a0, a1 in self._chunks(self.cfg.train.target_chunks):
            a = store[torch.arange(a0, a1)]
            if self.temporal:
                sm = self.data.step_mask[a0:a1].cpu()
                g = torch.zeros_like(a)
                g[sm] = L.target_distribution(a[sm], freq)
            else:
                g = L.target_distribution(a, freq)
            store[a0:a1] = g
        self.net.train()
        return store

    @torch.no_grad()
    def _initialise_prototypes(self, how: str) -> None:
        """Clean-preset start: prototypes on a PCA plane (or k-means centres) of the latent means.

        The PCA plane comes from the latent mean and covariance summed over all ranks, so it
        needs one pass and no copy of the latent codes; k-means runs on a sample of at most
        ``_KMEANS_SAMPLE`` codes gathered from all ranks. Rank 0's result is used everywhere.
        """
        self.net.eval()
        n_local = self.data.n_samples
        take = max(1, _KMEANS_SAMPLE // self.cluster.world_size)
        keep = None if n_local <= take else torch.randperm(n_local, generator=self.cpu_gen)[:take].sort().values
        total = cross = None
        count = 0
        sample = []
        for a0, a1 in self._chunks():
            x, _, _ = self._rows(torch.arange(a0, a1, device=self.device))
            z = encode_rows(self.net, x, sample=False, generator=None, autocast=self._precision_ctx).z.float()
            if how == "pca":
                z64 = z.double().cpu()
                total = z64.sum(0) if total is None else total + z64.sum(0)
                cross = z64.T @ z64 if cross is None else cross + z64.T @ z64
                count += z64.shape[0]
            elif self.temporal or keep is None:
                sample.append(z.cpu())
            else:
                sel = keep[(keep >= a0) & (keep < a1)] - a0
                sample.append(z.cpu()[sel])
        self.net.train()
        if how == "pca":
            moments = self.cluster.all_sum(torch.cat([total, cross.flatten(), torch.tensor([count], dtype=torch.float64)]))
            d = total.shape[0]
            protos = _pca_plane(moments[:d], moments[d:d + d * d].reshape(d, d), float(moments[-1]), self.grid)
        else:
            z = torch.cat(sample)
            if z.shape[0] > take:  # series: rows are steps, sampled here
                z = z[torch.randperm(z.shape[0], generator=self.cpu_gen)[:take]]
            z = self.cluster.all_gather_rows(z)
            k = self.grid.n_nodes
            if how == "kmeans_grid":
                z64 = z.double()
                plane = _pca_plane(z64.sum(0), z64.T @ z64, float(z64.shape[0]), self.grid)
                # Fewer codes than nodes leave k-means undefined: the plane alone then.
                protos = _place_on_grid(_kmeans(z, k, self.cpu_gen), plane) if z.shape[0] >= k else plane
            else:
                protos = _kmeans(z, k, self.cpu_gen)
        protos = self.cluster.broadcast(protos.float())
        self.net.prototypes.copy_(protos.to(self.net.prototypes.device, self.net.prototypes.dtype))

    @torch.no_grad()
    def _refine_prototypes(self, sigma_start: float, sigma_end: float) -> None:
        """Batch-SOM passes over the latent means after the joint phase (``train.refine_sigma``).

        Each pass assigns every latent mean to its nearest prototype and moves every prototype
        to the mean of the codes assigned to it and to its grid neighbours, weighted by a
        Gaussian of the grid distance whose width narrows geometrically from ``sigma_start``
        to ``sigma_end`` grid steps (:data:`_REFINE_PASSES`), then holds ``sigma_end``
        (:data:`_REFINE_HOLD`). A node with no weight near it keeps its prototype. The rank's
        latent means ``(n_local, d)`` are held for the passes; only the per-node sums and counts
        cross ranks, so every rank ends with the same prototypes.
        """
        self.net.eval()
        codes = []
        for a0, a1 in self._chunks():
            x, _, _ = self._rows(torch.arange(a0, a1, device=self.device))
            codes.append(encode_rows(self.net, x, sample=False, generator=None,
                                     autocast=self._precision_ctx).z.float().cpu())
        self.net.train()
        protos = self.net.prototypes.detach().double().cpu()  # (K, d)
        k, d = protos.shape
        z = torch.cat(codes).double() if codes else torch.zeros(0, d, dtype=torch.float64)  # (n_local, d)
        dist2 = torch.as_tensor(self.grid.distances(), dtype=torch.float64).pow(2)  # (K, K)
        sigmas = np.concatenate([np.geomspace(sigma_start, sigma_end, _REFINE_PASSES),
                                 np.full(_REFINE_HOLD, sigma_end)])
        for sigma in sigmas:
            nodes = torch.cdist(z, protos).argmin(dim=1)  # (n_local,)
            sums = torch.zeros(k, d, dtype=torch.float64).index_add_(0, nodes, z)
            counts = torch.bincount(nodes, minlength=k).double()
            both = self.cluster.all_sum(torch.cat([sums, counts[:, None]], dim=1))
            protos = _neighbourhood_means(both[:, :d], both[:, d], dist2, float(sigma), protos)
        protos = self.cluster.broadcast(protos.float())
        self.net.prototypes.copy_(protos.to(self.net.prototypes.device, self.net.prototypes.dtype))

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        """Everything needed to continue exactly where training stands, as numpy/scalars.

        In a process group this is a collective (every rank must call it at the same step): the
        weights and optimiser moments are the same on every rank, the random generators, epoch
        order and loss sums are per rank and are gathered under ``"ranks"``. The per-rank target
        distribution is left out (it scales with the cohort) and is recomputed on resuming.
        """
        names = {id(p): n for n, p in self.net.named_parameters()}
        opt = {}
        for p, st in self.optimizer.state.items():
            if st:
                opt[names[id(p)]] = {
                    "step": int(st["step"]),
                    "exp_avg": st["exp_avg"].detach().cpu().numpy(),
                    "exp_avg_sq": st["exp_avg_sq"].detach().cpu().numpy(),
                }
        state = {
            "position": self.state_position(),
            "seed": self.seed,
            "elapsed": self.elapsed_total,
            "optimizer": opt,
            "rng": {
                "cpu": self.cpu_gen.get_state().numpy(),
                "device": self.dev_gen.get_state().cpu().numpy(),
                "torch": torch.get_rng_state().numpy(),
            },
            "epoch_sums": dict(self._epoch_sums),
            "epoch_count": self._epoch_count,
        }
        if self.cluster.distributed:
            own = {"rng": state.pop("rng"), "epoch_sums": state.pop("epoch_sums"),
                   "epoch_count": state.pop("epoch_count")}
            if self.perm is not None:
                own["perm"] = self.perm.numpy().astype(np.int64)
            state["world_size"] = self.cluster.world_size
            state["ranks"] = {str(r): part for r, part in enumerate(self.cluster.gather_objects(own))}
            return state
        if self.perm is not None:
            state["perm"] = self.perm.numpy().astype(np.int64)
        if self.target is not None:
            state["target"] = self.target.numpy().astype(np.float32)
        return state

    def load_state_dict(self, state: dict) -> None:
        """Inverse of :meth:`state_dict` (the network weights are restored separately)."""
        pos = state["position"]
        self.phase, self.epoch, self.batch = int(pos["phase"]), int(pos["epoch"]), int(pos["batch"])
        self.global_step = int(pos["global_step"])
        self.seed = int(state.get("seed", self.seed))
        self.elapsed_total = float(state.get("elapsed", 0.0))
        params = dict(self.net.named_parameters())
        self.optimizer.state.clear()
        for name, st in state.get("optimizer", {}).items():
            p = params[name]
            self.optimizer.state[p] = {
                "step": int(st["step"]),
                "exp_avg": torch.as_tensor(np.asarray(st["exp_avg"]), device=p.device).clone(),
                "exp_avg_sq": torch.as_tensor(np.asarray(st["exp_avg_sq"]), device=p.device).clone(),
            }
        ranks = state.get("ranks")
        if ranks:
            # Saved by a process group: this rank's part, or rank 0's position in the stream when
            # the number of processes changed (the order is then redrawn, see _restore_epoch).
            own = ranks.get(str(self.cluster.rank))
            same_world = int(state.get("world_size", 1)) == self.cluster.world_size and own is not None
            state = {**state, **(own if same_world else {k: v for k, v in ranks["0"].items() if k != "perm"})}
            if not same_world:
                state["reseed"] = _reseed(state["rng"], self.cluster.rank)
        rng = state["rng"]
        torch.set_rng_state(torch.as_tensor(np.asarray(rng["torch"], dtype=np.uint8)))
        if "reseed" in state:
            self.cpu_gen.manual_seed(state["reseed"])
            self.dev_gen.manual_seed(state["reseed"] + 1)
        else:
            self.cpu_gen.set_state(torch.as_tensor(np.asarray(rng["cpu"], dtype=np.uint8)))
            self.dev_gen.set_state(torch.as_tensor(np.asarray(rng["device"], dtype=np.uint8)))
        self._epoch_sums = {k: float(v) for k, v in state.get("epoch_sums", {}).items()}
        self._epoch_count = int(state.get("epoch_count", 0))
        self.perm = torch.as_tensor(np.asarray(state["perm"])) if "perm" in state else None
        self.target = torch.as_tensor(np.asarray(state["target"])) if "target" in state else None
        if self.perm is not None and len(self.perm) != self.data.n_samples:
            self.perm = None


def reopened_position(position: dict, history: list[dict], config: Config) -> dict | None:
    """The position a run goes back to when ``config`` asks for more joint epochs than it ran.

    Parameters
    ----------
    position : dict
        ``phase``, ``epoch``, ``batch``, ``global_step`` (as :meth:`Trainer.state_position`).
    history : list of dict
        One row per finished epoch, with its ``phase``.
    config : Config
        The new schedule.

    Returns
    -------
    dict or None
        The start of the first joint epoch not yet run, when the run has already left the
        joint phase and ``config`` asks for more joint epochs than it trained; else None
        (the run goes on from ``position``).
    """
    joint = [name for name, _ in phase_epochs(config)].index("joint")
    done = sum(1 for row in history if row.get("phase") == "joint")
    if int(position.get("phase", 0)) > joint and done < config.train.epochs_joint:
        return {"phase": joint, "epoch": done, "batch": 0, "global_step": int(position.get("global_step", 0))}
    return None


def rescheduled_state(state: dict, config: Config) -> dict:
    """A saved training state (:meth:`Trainer.state_dict` with its history) moved as
    :meth:`Trainer.reschedule` would move a live trainer; ``state`` itself is not changed."""
    position = reopened_position(state.get("position", {}), state.get("history", []), config)
    if position is None:
        return state
    moved = {k: v for k, v in state.items() if k not in ("perm", "target")}
    moved["position"] = position
    if "ranks" in moved:  # saved by a process group: the per-rank epoch orders are void too
        moved["ranks"] = {r: {k: v for k, v in part.items() if k != "perm"} for r, part in moved["ranks"].items()}
    return moved


def _reseed(rng: dict, rank: int) -> int:
    """A seed for ``rank`` when resuming with a different number of processes.

    Derived from rank 0's saved stream so that the resumed run stays repeatable, and offset
    per rank so that ranks do not shuffle and sample alike.
    """
    saved = np.asarray(rng["cpu"], dtype=np.uint8)
    return int(np.random.SeedSequence([int(b) for b in saved[:64]] + [rank]).generate_state(1)[0] % (2**31))


# ------------------------------------------------------------------ settings of a training run
@contextmanager
def training_settings(device: torch.device):
    """What the process does differently while a training run is going on, and only then.

    On the CPU: float32 linear layers use oneDNN where it is faster (:func:`core.nets.fast_cpu_linear`,
    unless an enclosing block chose otherwise), and glibc keeps freed blocks for reuse
    (:func:`_reuse_freed_memory`). Both end with the block; elsewhere it changes nothing.
    """
    if device.type != "cpu":
        yield
        return
    with fast_cpu_linear(keep_outer=True), _reuse_freed_memory():
        yield


# ------------------------------------------------------------------ CPU memory reuse
# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -3, -4
_malloc_lock = threading.Lock()
_malloc_users = 0


def _glibc():
    """The C library when it is glibc and the user has not tuned malloc; else None."""
    if not sys.platform.startswith("linux"):
        return None
    if "GLIBC_TUNABLES" in os.environ or any(k.startswith("MALLOC_") for k in os.environ):
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 - only glibc has it
        libc.mallopt, libc.malloc_trim  # noqa: B018
        return libc
    except (OSError, AttributeError):
        return None


@contextmanager
def _reuse_freed_memory():
    """While CPU training runs, let glibc keep freed blocks for reuse instead of unmapping them.

    glibc serves every block above 32 MB with a fresh mapping and unmaps it on free. The
    reference model frees and re-allocates several such blocks per step (the 41 MB weight
    gradient of the posterior layer, optimiser temporaries), and first touching the new pages
    costs one page fault per 4 kB: about a quarter of a CPU training step. With direct mappings
    off and a high trim threshold the freed blocks are simply reused. On leaving, mappings are
    allowed again, thresholds go back to the values glibc's own tuning settles at in a PyTorch
    process, and free memory is handed back to the system. Process-wide; shared by concurrent
    trainers; a no-op outside Linux/glibc or when malloc was tuned through the environment.
    """
    global _malloc_users
    libc = _glibc()
    if libc is None:
        yield
        return
    with _malloc_lock:
        if _malloc_users == 0:
            libc.mallopt(_M_MMAP_MAX, 0)
            libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)
        _malloc_users += 1
    try:
        yield
    finally:
        with _malloc_lock:
            _malloc_users -= 1
            if _malloc_users == 0:
                libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20)
                libc.mallopt(_M_TRIM_THRESHOLD, 64 << 20)
                libc.mallopt(_M_MMAP_MAX, 65536)
                libc.malloc_trim(0)


def _sum_of_squares(tensors: list[torch.Tensor]) -> torch.Tensor:
    """Sum of the squares of every entry, as a float32 scalar; NaN or inf when any entry is.

    One norm reduction per tensor reads each gradient once and allocates nothing; squaring
    every gradient first would write a copy of all of them (55 MB per step for the reference
    model) just to be summed.
    """
    return torch.stack([torch.linalg.vector_norm(t, dtype=torch.float32) for t in tensors]).pow(2).sum()


def _pca_plane(total: torch.Tensor, cross: torch.Tensor, count: float, grid: SOMGrid) -> torch.Tensor:
    """Prototypes spread over the plane of the two main axes of the latent codes, ±2 std wide.

    Parameters
    ----------
    total : Tensor (d,)
        Sum of the codes (float64).
    cross : Tensor (d, d)
        Sum of their outer products ``z z^T`` (float64).
    count : float
        Number of codes.
    grid : SOMGrid

    Returns
    -------
    Tensor (K, d), float32
    """
    mean = total / count
    cov = (cross - count * torch.outer(mean, mean)) / max(1.0, count - 1)
    evals, evecs = torch.linalg.eigh(cov)  # ascending
    order = torch.argsort(evals, descending=True)[:2]
    axes = evecs[:, order].T  # (<=2, d)
    # An eigenvector's sign is arbitrary; fix it (largest entry positive) so that every
    # process and every platform lays the map out the same way.
    big = axes.abs().argmax(dim=1)
    axes = axes * torch.sign(axes[torch.arange(axes.shape[0]), big])[:, None]
    std = evals[order].clamp_min(0).sqrt()
    if axes.shape[0] == 1:
        axes, std = torch.cat([axes, torch.zeros_like(axes)]), torch.cat([std, std])
    pos = torch.as_tensor(grid.positions(), dtype=torch.float64)  # (K, 2) as (x, y)
    w, h = grid.extent()
    u = (pos[:, 1] / h - 0.5) * 4.0 * std[0]  # rows along the main axis
    v = (pos[:, 0] / w - 0.5) * 4.0 * std[1]
    return (mean + u[:, None] * axes[0] + v[:, None] * axes[1]).float()


def _place_on_grid(centres: torch.Tensor, plane: torch.Tensor) -> torch.Tensor:
    """Centres ``(K, d)`` reordered so that centre ``j`` sits on the node whose PCA-plane point is
    matched to it: the one-to-one matching with the least total squared distance.

    k-means centres quantise the data well but carry no order; matched to the grid's PCA
    plane, neighbours on the grid start out as near one another as the centres allow.
    """
    from scipy.optimize import linear_sum_assignment

    cost = torch.cdist(plane.double(), centres.double()).pow(2).cpu().numpy()  # (K nodes, K centres)
    nodes, picked = linear_sum_assignment(cost)
    out = torch.empty_like(centres)
    out[torch.as_tensor(nodes)] = centres[torch.as_tensor(picked)]
    return out


def _neighbourhood_means(sums: torch.Tensor, counts: torch.Tensor, dist2: torch.Tensor, sigma: float,
                         protos: torch.Tensor) -> torch.Tensor:
    """One batch-SOM update: every node moves to the mean of the codes of all nodes, weighted
    by ``exp(-grid_distance^2 / (2 sigma^2))``.

    ``sums (K, d)`` and ``counts (K,)`` are the codes' sums and numbers per nearest node,
    ``dist2 (K, K)`` the squared grid distances; a node with no weight near it keeps its row
    of ``protos (K, d)``. Returns a new ``(K, d)`` tensor.
    """
    h = torch.exp(-dist2 / (2.0 * sigma ** 2))  # (K, K)
    weight = h @ counts  # (K,)
    out = protos.clone()
    moved = weight > 1e-12
    out[moved] = (h @ sums)[moved] / weight[moved, None]
    return out


def _unflatten(rows: torch.Tensor, step_mask: torch.Tensor | None) -> torch.Tensor:
    """Per-row values ``(B, ...)`` back to per-patient ``(b, T, ...)`` (zeros on padding) for series.

    Differentiable in ``rows``; tables (``step_mask`` None) pass through.
    """
    if step_mask is None:
        return rows
    sm = step_mask.to(rows.device)
    out = rows.new_zeros((*sm.shape, *rows.shape[1:]))
    return out.masked_scatter(sm.reshape(*sm.shape, *[1] * (rows.dim() - 1)), rows)


def _kmeans(z: torch.Tensor, k: int, gen: torch.Generator, iters: int = 50) -> torch.Tensor:
    """scikit-learn's k-means (k-means++ seeding, one run) on ``z (n, d)``; returns ``(k, d)``.

    The seed is drawn from ``gen``, so a resumed or repeated run places the same prototypes.
    """
    from sklearn.cluster import KMeans

    seed = int(torch.randint(2**31 - 1, (1,), generator=gen).item())
    km = KMeans(k, n_init=1, max_iter=iters, random_state=seed).fit(z.detach().cpu().numpy())
    return torch.from_numpy(km.cluster_centers_).to(z.dtype)
