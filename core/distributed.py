"""Training across several processes: one per device, on one machine or many, under ``torchrun``.

A :class:`Cluster` is the trainer's view of its process group. Every rank trains on its own
contiguous shard of the cohort; gradients are averaged by PyTorch's
``DistributedDataParallel``; the few quantities that must see the whole cohort (the target
distribution's cluster frequencies, the starting prototypes, the reported loss terms) are
reduced across ranks here. Rank 0 alone writes projects and logs.

The single-process case is the same object with ``world_size == 1``, whose collectives are
no-ops, so the training code has one path.

Launch (see docs/distributed.md)::

    torchrun --nproc-per-node 2 -m core.cli train cohort.h5 --out project.h5 --distributed

``torchrun`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT``; :func:`Cluster.from_env` reads them.
"""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass

import torch

__all__ = ["Cluster", "launched_by_torchrun", "shard_bounds", "GroupBatchNorm1d", "GroupBatchNorm2d"]

_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def launched_by_torchrun() -> bool:
    """True when this process was started by ``torchrun`` (its environment variables are set)."""
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"))


def shard_bounds(n: int, rank: int, world_size: int) -> tuple[int, int]:
    """Contiguous ``[start, stop)`` of ``n`` items owned by ``rank``; shard sizes differ by at most one.

    Contiguous shards keep each process's reads of an on-disk cohort sequential.
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is outside a world of {world_size} processes")
    base, extra = divmod(n, world_size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


@dataclass
class Cluster:
    """The process group a trainer runs in.

    Attributes
    ----------
    rank, world_size, local_rank : int
    device : torch.device
        This process's device (``cuda:LOCAL_RANK`` under NCCL).
    backend : str or None
        ``"nccl"``, ``"gloo"``, or None for a single process.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device | None = None
    backend: str | None = None
    _owns_group: bool = False

    # ------------------------------------------------------------------ construction
    @classmethod
    def single(cls, device: torch.device | None = None) -> "Cluster":
        """One process, no communication."""
        return cls(device=device)

    @classmethod
    def from_env(cls, device: str = "auto", *, timeout_s: float = 1800.0) -> "Cluster":
        """Join the process group ``torchrun`` describes in the environment.

        Parameters
        ----------
        device : str
            ``auto`` takes GPU ``LOCAL_RANK`` when CUDA is available (NCCL) and the CPU
            otherwise (gloo); ``cpu`` forces gloo on the CPU; ``cuda`` forces NCCL.
        timeout_s : float
            How long a collective may wait for a slow or lost peer before failing.

        Raises
        ------
        ValueError
            Not started by ``torchrun``, or the device asked for is not there.
        """
        import torch.distributed as dist

        if not launched_by_torchrun():
            raise ValueError("distributed training must be started by torchrun, e.g. "
                             "'torchrun --nproc-per-node 2 -m core.cli train DATA --out P.h5 --distributed'")
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        local = int(os.environ.get("LOCAL_RANK", rank))
        want = (device or "auto").lower()
        if want == "mps":
            raise ValueError("distributed training runs on CUDA GPUs or CPUs, not on Apple's MPS")
        use_cuda = torch.cuda.is_available() if want == "auto" else want.startswith("cuda")
        if use_cuda:
            if not torch.cuda.is_available():
                raise ValueError(f"device {device!r} was requested but no CUDA GPU is visible; use --device cpu")
            if local >= torch.cuda.device_count():
                raise ValueError(f"process {local} on this machine has no GPU of its own "
                                 f"({torch.cuda.device_count()} visible); start one process per GPU")
            dev = torch.device("cuda", local)
            torch.cuda.set_device(dev)
            backend = "nccl"
        else:
            dev, backend = torch.device("cpu"), "gloo"
        owns = False
        if not dist.is_initialized():
            dist.init_process_group(backend=backend, timeout=_dt.timedelta(seconds=timeout_s))
            owns = True
        return cls(rank=rank, world_size=world, local_rank=local, device=dev, backend=backend, _owns_group=owns)

    # ------------------------------------------------------------------ queries
    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes projects, logs and the terminal output."""
        return self.rank == 0

    def shard(self, n: int) -> tuple[int, int]:
        """This rank's ``[start, stop)`` of ``n`` rows or patients."""
        return shard_bounds(n, self.rank, self.world_size)

    # ------------------------------------------------------------------ collectives
    def _comm(self, t: torch.Tensor) -> torch.Tensor:
        # gloo works on CPU tensors, NCCL on CUDA tensors.
        return t.to(self.device) if self.backend == "nccl" else t.cpu()

    def all_sum(self, t: torch.Tensor) -> torch.Tensor:
        """Elementwise sum over ranks (a new tensor on ``t``'s device; ``t`` itself when alone)."""
        if not self.distributed:
            return t
        import torch.distributed as dist

        buf = self._comm(t.detach()).clone()
        dist.all_reduce(buf, op=dist.ReduceOp.SUM)
        return buf.to(t.device)

    def all_min(self, value: int) -> int:
        """Smallest ``value`` over ranks."""
        if not self.distributed:
            return int(value)
        import torch.distributed as dist

        buf = self._comm(torch.tensor([int(value)], dtype=torch.int64))
        dist.all_reduce(buf, op=dist.ReduceOp.MIN)
        return int(buf.item())

    def broadcast(self, t: torch.Tensor, src: int = 0) -> torch.Tensor:
        """Rank ``src``'s copy of ``t`` on every rank (returned; ``t`` is left as it is)."""
        if not self.distributed:
            return t
        import torch.distributed as dist

        buf = self._comm(t.detach()).contiguous().clone()
        dist.broadcast(buf, src=src)
        return buf.to(t.device)

    def all_gather_rows(self, t: torch.Tensor) -> torch.Tensor:
        """Concatenate every rank's ``t (n_r, ...)`` in rank order (``n_r`` may differ)."""
        if not self.distributed:
            return t
        import torch.distributed as dist

        local = self._comm(t.detach()).contiguous()
        sizes = self.gather_objects(int(local.shape[0]))
        top = max(sizes)
        padded = local.new_zeros((top, *local.shape[1:]))
        padded[: local.shape[0]] = local
        parts = [torch.empty_like(padded) for _ in range(self.world_size)]
        dist.all_gather(parts, padded)
        return torch.cat([p[:s] for p, s in zip(parts, sizes)]).to(t.device)

    def gather_objects(self, obj) -> list:
        """Every rank's ``obj`` (picklable, small), in rank order, on every rank."""
        if not self.distributed:
            return [obj]
        import torch.distributed as dist

        out: list = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def agree(self, flag: bool) -> bool:
        """Rank 0's ``flag`` on every rank: for decisions that must be taken together (saving)."""
        if not self.distributed:
            return bool(flag)
        return bool(self.broadcast(torch.tensor([1 if flag else 0], dtype=torch.int64)).item())

    def barrier(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            dist.barrier()

    # ------------------------------------------------------------------ modules
    def wrap(self, module: torch.nn.Module) -> torch.nn.Module:
        """``module`` under DistributedDataParallel (gradients averaged over ranks), or as is.

        Each training phase trains a different part of the network (the VAE, then only the
        prototypes, ...), so parameters a step does not reach are expected.
        """
        if not self.distributed:
            return module
        from torch.nn.parallel import DistributedDataParallel

        _swap_classes(module, _GROUP_BATCH_NORM)
        ids = [self.device.index] if self.device is not None and self.device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids, find_unused_parameters=True)

    def unwrap(self, module: torch.nn.Module) -> torch.nn.Module:
        """Undo :meth:`wrap`: the inner module, with plain batch norm again."""
        inner = getattr(module, "module", module) if self.distributed else module
        _swap_classes(inner, {group: plain for plain, group in _GROUP_BATCH_NORM.items()})
        return inner

    def close(self) -> None:
        """Leave the process group (only if this object created it)."""
        if self._owns_group:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()
            self._owns_group = False


# ---------------------------------------------------------------------- batch norm over ranks
class _GroupBatchNorm:
    """Batch norm whose training statistics cover the whole global batch, on any backend.

    With each rank normalising its own share of the batch, two processes would train a
    different model from one process with the same global batch (measured on a 10-feature
    table: ELBO 85 vs 61 after the same steps). PyTorch's ``SyncBatchNorm`` does this on GPUs
    only; here the per-channel sums travel through an autograd-aware all-reduce, which gloo
    runs on CPUs too. The class is swapped in on the existing module, so parameters, buffers
    and saved state keep their names; evaluation, and training outside a process group, are
    plain batch norm.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        dims = [0] + list(range(2, x.dim()))  # every dimension but the channel
        shape = [1, -1] + [1] * (x.dim() - 2)
        xf = x.float()
        count = torch.tensor([xf.numel() / xf.shape[1]], dtype=torch.float32, device=x.device)
        local = torch.cat([xf.sum(dims), (xf * xf).sum(dims), count])  # (2C + 1,)
        # An autograd-aware sum: each rank's loss depends on every rank's statistics, so the
        # gradient reaching one rank's sums is again the sum over ranks.
        from torch.distributed.nn.functional import all_reduce

        total = all_reduce(local.cpu() if _gloo() else local).to(x.device)
        c = xf.shape[1]
        n = total[-1]
        mean = total[:c] / n
        var = (total[c:2 * c] / n - mean * mean).clamp_min(0.0)
        if self.track_running_stats:
            with torch.no_grad():
                m = self.momentum if self.momentum is not None else 0.1
                self.running_mean.mul_(1 - m).add_(m * mean.detach())
                self.running_var.mul_(1 - m).add_(m * var.detach() * n / (n - 1).clamp_min(1))
                self.num_batches_tracked.add_(1)
        y = (xf - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)


def _gloo() -> bool:
    import torch.distributed as dist

    return dist.get_backend() == "gloo"


class GroupBatchNorm1d(_GroupBatchNorm, torch.nn.BatchNorm1d):
    """:class:`torch.nn.BatchNorm1d` with statistics over all ranks while training (see ``_GroupBatchNorm``)."""


class GroupBatchNorm2d(_GroupBatchNorm, torch.nn.BatchNorm2d):
    """:class:`torch.nn.BatchNorm2d` with statistics over all ranks while training (see ``_GroupBatchNorm``)."""


#: Plain batch norm -> its version over the group; same parameters, buffers and state names.
_GROUP_BATCH_NORM = {torch.nn.BatchNorm1d: GroupBatchNorm1d, torch.nn.BatchNorm2d: GroupBatchNorm2d}


def _swap_classes(module: torch.nn.Module, mapping: dict) -> None:
    """Give every submodule whose exact class is a key of ``mapping`` the mapped class, in place."""
    for m in module.modules():
        if type(m) in mapping:
            m.__class__ = mapping[type(m)]
