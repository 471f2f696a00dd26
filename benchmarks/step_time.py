"""Seconds per training step of the fully connected DPSOM at the reference sizes, per phase.

The model is ``make_config("dpsom", "paper", input_kind="image")``: 784 inputs, encoder
500-500-2000, a full-covariance posterior with latent size 100 (a 2000 x 5150 output layer),
an 8 x 8 toroidal map and batches of 300. The data are random values in [0, 1] (the step
time does not depend on their content). For every device (the CPU, and CUDA when present) and
precision (float32, and bf16 mixed precision under autocast) the script runs a short schedule
through the real trainer and prints the median seconds per step of each phase:

* ``pretrain``  VAE only (forward + backward + Adam);
* ``som_init``  encoder forward without gradients, Kohonen loss on the prototypes;
* ``joint``     everything; the first step of each epoch also refreshes the target
  distribution over the whole training set, so it is left out of the median and shown as
  ``target refresh`` instead.

In the same run it measures the machine's own matrix-multiply throughput (a 300 x 2000 @
2000 x 5150 product, the size of the posterior layer) in float32, with every float32 kernel
this PyTorch offers on the device, and in bf16, and turns the model's
forward + backward FLOPs into a lower bound for a float32 step. ``--profile`` adds a breakdown
of one joint step into its parts, and the Adam update by separate tensor operations instead
of the fused kernel for comparison.

The machine may be shared: every figure is a median over several steps and repeats, the
load average before and after is printed, and ``min`` shows the least disturbed step.
It prints figures; it asserts nothing.

Usage::

    python benchmarks/step_time.py                      # every device, float32 and bf16
    python benchmarks/step_time.py --device cpu --precision float32 --profile
    python benchmarks/step_time.py --reference-linear   # float32 layers through torch's default GEMM
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._machine import load_average  # noqa: E402
from core import losses as L  # noqa: E402
from core import nets  # noqa: E402
from core.config import make_config  # noqa: E402
from core.model import DPSOM  # noqa: E402
from core.optim import GlobalStepAdam  # noqa: E402
from core.training import precision_context  # noqa: E402

N_FEATURES = 784
#: Seconds per step of the original TensorFlow code on this project's 2-core machines.
REFERENCE_TF = {"pretrain": 0.28, "som_init": 0.064, "joint": 0.30}
GEMM = (300, 2000, 5150)


# ---------------------------------------------------------------------------- throughput
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


#: The clock of every measurement: wall-clock seconds, or the process's CPU seconds
#: (``--clock cpu``; with one thread on a busy machine that is the time the work itself took).
CLOCK = time.perf_counter


def _median_seconds(fn, device: torch.device, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        t = CLOCK()
        fn()
        _sync(device)
        times.append(CLOCK() - t)
    return statistics.median(times)


def gemm_throughput(device: torch.device, repeats: int = 9) -> dict[str, float]:
    """GFLOP/s of a ``300 x 2000 @ 2000 x 5150`` product for each available kernel.

    Keys: ``float32`` (torch's default GEMM), ``float32 onednn`` (CPU only, when this PyTorch
    has oneDNN), ``bf16``.
    """
    m, k, n = GEMM
    flop = 2.0 * m * k * n
    gen = torch.Generator(device=device).manual_seed(0)
    a = torch.rand(m, k, generator=gen, device=device)
    w = torch.rand(n, k, generator=gen, device=device)
    out = {"float32": flop / _median_seconds(lambda: a @ w.T, device, repeats) / 1e9}
    onednn = nets.onednn_linear_available() if hasattr(nets, "onednn_linear_available") else False
    if device.type == "cpu" and onednn:
        lp = torch.ops.mkldnn._linear_pointwise
        out["float32 onednn"] = flop / _median_seconds(lambda: lp(a, w, None, "none", [], ""), device, repeats) / 1e9
    ab, wb = a.bfloat16(), w.bfloat16()
    out["bf16"] = flop / _median_seconds(lambda: ab @ wb.T, device, repeats) / 1e9
    return out


def model_flops(net: torch.nn.Module) -> dict[str, float]:
    """Matrix-multiply FLOPs of one step of each phase at batch 300.

    Forward: ``2 B in out`` per linear layer. Backward: the same again for the weight
    gradients, and again for the input gradients of every layer but the first encoder
    layer (the data need no gradient).
    """
    b = 300

    def macs(module):
        return [m.in_features * m.out_features for m in module.modules() if isinstance(m, torch.nn.Linear)]

    enc, dec = macs(net.encoder), macs(net.decoder)
    fwd = 2.0 * b * (sum(enc) + sum(dec))
    bwd = 2.0 * b * (sum(enc) + sum(dec)) + 2.0 * b * (sum(enc) + sum(dec) - enc[0])
    return {"pretrain": fwd + bwd, "joint": fwd + bwd, "som_init": 2.0 * b * sum(enc)}


# ---------------------------------------------------------------------------- step times
def reference_config(device: str, precision: str, epochs: int):
    return make_config("dpsom", "paper", input_kind="image", **{
        "train.device": device, "train.precision": precision,
        "train.epochs_pretrain": epochs, "train.som_init_epochs": (epochs,), "train.som_init_lrs": (0.9,),
        "train.epochs_joint": epochs, "train.snapshot_every": 10**9,
    })


def time_phases(device: str, precision: str, rows: int, epochs: int, seed: int = 0) -> dict[str, list[float]]:
    """Seconds of every optimiser step, by phase, over a short schedule on random data.

    The first two steps of each phase (warm-up) are dropped; the first joint step of every
    epoch is returned separately under ``"joint_first"``.
    """
    x = np.random.default_rng(seed).random((rows, N_FEATURES), dtype=np.float32)
    est = DPSOM(config=reference_config(device, precision, epochs))
    per_epoch = rows // 300
    times: dict[str, list[float]] = {}
    seen: dict[str, int] = {}
    t0 = CLOCK()
    for p in est.iter_fit(x):
        dt = CLOCK() - t0
        i = seen.get(p.phase, 0)
        seen[p.phase] = i + 1
        if p.phase == "joint" and i % per_epoch == 0:
            times.setdefault("joint_first", []).append(dt)
        elif i >= 2:
            times.setdefault(p.phase, []).append(dt)
        t0 = CLOCK()
    return times


# ---------------------------------------------------------------------------- profile
def profile_joint_step(device: torch.device, precision: str, repeats: int) -> list[tuple[str, float]]:
    """Median seconds of each part of a joint step, each run on its own (forward + backward)."""
    cfg = reference_config(device.type, precision, 1)
    torch.manual_seed(0)
    net = nets.DPSOMNet(N_FEATURES, cfg.grid.n_nodes, cfg.network, "bernoulli").to(device)
    ac = precision_context(precision, device)
    b, d, nu = 300, cfg.network.latent_dim, cfg.network.nu
    x = torch.rand(b, N_FEATURES, device=device)
    mask = torch.ones_like(x, dtype=torch.bool)
    adj = torch.as_tensor(cfg.grid.adjacency(), dtype=torch.float32, device=device)
    head = net.encoder.head
    h_last = torch.rand(b, cfg.network.hidden[-1], device=device, requires_grad=True)
    with torch.no_grad(), ac():
        raw = head.linear(h_last).float()
    raw.requires_grad_(True)
    post = head(h_last)
    mean = post.mean.detach().requires_grad_(True)
    tril = post.scale_tril.detach().requires_grad_(True)
    z = post.rsample().detach().requires_grad_(True)
    logits = torch.randn(b, N_FEATURES, device=device, requires_grad=True)
    g = L.target_distribution(L.soft_assignment(z.detach(), net.prototypes.detach(), nu))

    def backward(t):
        t.backward(torch.ones_like(t)) if t.dim() else t.backward()

    def body():
        with ac():
            out = net.encoder.body(x)
            rec = net.decoder.out(net.decoder.body(z))
        (out.float().sum() + rec.float().sum()).backward()

    def posterior_layer():
        with ac():
            out = head.linear(h_last)
        backward(out.float().sum())

    def tril_build():
        if hasattr(head, "posterior_from_output"):
            p = head.posterior_from_output(raw)
        else:  # the head before it was split into layer and construction
            mean_, r = raw[:, :d], raw[:, d:]
            packed = torch.where(head._is_diag, F.softplus(r) + head.std_floor, r)
            t = raw.new_zeros(b, d, d)
            t[:, head._rows, head._cols] = packed
            p = nets.Posterior(mean_, scale_tril=t)
        backward(p.scale_tril.sum() + p.mean.sum())

    def sample():
        backward(nets.Posterior(mean, scale_tril=tril).rsample().sum())

    def kl():
        backward(L.kl_full_to_isotropic(mean, tril, 1.0).sum())

    def recon():
        backward(L.bernoulli_nll(logits, x, mask).mean())

    def som_terms():
        a = L.soft_assignment(z, net.prototypes, nu)
        a_nb = L.soft_assignment(z.detach(), net.prototypes, nu)
        backward(20 * L.clustering_kl(g, a) + 0.4 * L.som_loss(a, a_nb, adj))

    # One full backward gives every parameter a gradient for the optimiser parts.
    net.zero_grad()
    with ac():
        enc_out = net.encoder(x)
    zz = enc_out.rsample()
    with ac():
        rec = net.decoder(zz)
    (L.bernoulli_nll(rec, x).mean() + L.kl_full_to_isotropic(enc_out.mean, enc_out.scale_tril, 1.0).mean()
     + L.soft_assignment(zz, net.prototypes, nu).sum()).backward()
    opt = GlobalStepAdam(net.parameters(), lr=1e-3)
    # The same update by separate tensor operations, for comparison (older GlobalStepAdam: none).
    try:
        plain = GlobalStepAdam(net.parameters(), lr=1e-3, fused=False)
    except TypeError:
        plain = None
    grads = [p.grad for p in net.parameters() if p.grad is not None]
    from core import training as T

    def grad_check():
        if hasattr(T, "_sum_of_squares"):
            T._sum_of_squares(grads).item()
        else:
            torch.stack([gr.float().pow(2).sum() for gr in grads]).sum().item()

    parts = [
        ("posterior layer 2000x5150 (fwd+bwd)", posterior_layer),
        ("other 7 linear layers + LeakyReLU + BN", body),
        ("scale_tril from the layer output", tril_build),
        ("sample z = mean + L eps", sample),
        ("KL, full covariance", kl),
        ("Bernoulli NLL", recon),
        ("soft assignments, CAH and SOM losses", som_terms),
        ("Adam update (13.8 M parameters)", lambda: opt.step(global_step=5000)),
        ("finite-gradient check", grad_check),
    ]
    if plain is not None:
        parts.append(("(Adam by separate operations, not summed)", lambda: plain.step(global_step=5000)))
    saved = {p: p.grad for p in net.parameters()}
    optimiser_parts = {"Adam update (13.8 M parameters)", "finite-gradient check",
                       "(Adam by separate operations, not summed)"}
    from contextlib import nullcontext
    reuse = getattr(T, "_reuse_freed_memory", nullcontext)() if device.type == "cpu" else nullcontext()
    out = []
    with reuse:  # the trainer's own allocation policy
        for name, fn in parts:
            def run(fn=fn, keep=name in optimiser_parts):
                for t in (h_last, raw, mean, tril, z, logits):
                    t.grad = None
                for p in net.parameters():  # fresh gradients, as after zero_grad(set_to_none=True)
                    p.grad = saved[p] if keep else None
                fn()
            out.append((name, _median_seconds(run, device, repeats)))
    return out


def torch_profile(device: str, precision: str, rows: int, n_steps: int = 4, top: int = 20) -> str:
    """torch.profiler's table of the most expensive operators over a few joint steps."""
    from torch.profiler import ProfilerActivity, profile

    x = np.random.default_rng(0).random((rows, N_FEATURES), dtype=np.float32)
    est = DPSOM(config=reference_config(device, precision, 1 + n_steps // max(1, rows // 300)))
    it = est.iter_fit(x)
    for p in it:
        if p.phase == "joint":
            break
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.startswith("cuda") else [])
    with profile(activities=acts) as prof:
        for i, _ in enumerate(it, start=1):
            if i >= n_steps:
                break
    it.close()
    key = "self_cuda_time_total" if device.startswith("cuda") else "self_cpu_time_total"
    return prof.key_averages().table(sort_by=key, row_limit=top)


# ---------------------------------------------------------------------------- main
def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="all", help="cpu, cuda or all (the CPU plus CUDA when present)")
    ap.add_argument("--precision", default="float32,bf16", help="comma-separated: float32, bf16")
    ap.add_argument("--rows", type=int, default=3000, help="rows of random data (rows/300 steps per epoch)")
    ap.add_argument("--epochs", type=int, default=2, help="epochs of each phase per repeat")
    ap.add_argument("--repeats", type=int, default=2, help="independent repeats of the short schedule")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="torch CPU threads")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="wall-clock seconds, or CPU seconds of this process (meaningful with --threads 1)")
    ap.add_argument("--profile", action="store_true", help="break one joint step down into its parts")
    ap.add_argument("--torch-profile", action="store_true", help="also print torch.profiler's operator table")
    ap.add_argument("--reference-linear", action="store_true",
                    help="run float32 layers through torch's default GEMM instead of the oneDNN kernels")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    # The step profile below calls the network directly, so it takes the training loop's
    # choice of CPU linear kernel here, for the rest of this process.
    nets.fast_cpu_linear(not args.reference_linear).__enter__()
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    if args.device != "all":
        devices = [args.device]
    if any(d.startswith("cuda") for d in devices) and not torch.cuda.is_available():
        raise SystemExit("CUDA was requested but this PyTorch sees no CUDA GPU; use --device cpu or all")
    precisions = [p.strip() for p in args.precision.split(",") if p.strip()]
    fast = nets.fast_cpu_linear_active()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, {args.clock} clock, "
          f"float32 CPU layers via {'oneDNN' if fast else 'the default GEMM'}; load average {load_average('/')}")

    flops = model_flops(nets.DPSOMNet(N_FEATURES, 64, reference_config("cpu", "float32", 1).network, "bernoulli"))
    print("model GFLOP per step: " + ", ".join(f"{k} {v / 1e9:.2f}" for k, v in flops.items()))
    rows = []
    global CLOCK
    for dev in devices:
        device = torch.device(dev)
        # CPU seconds say nothing about GPU work: GPUs are always timed by the wall clock.
        CLOCK = time.perf_counter if (dev != "cpu" or args.clock == "wall") else time.process_time
        for prec in precisions:
            gemm_before = gemm_throughput(device)
            steps: dict[str, list[float]] = {}
            load_before = load_average('/')
            for r in range(args.repeats):
                for k, v in time_phases(dev, prec, args.rows, args.epochs, seed=r).items():
                    steps.setdefault(k, []).extend(v)
            gemm_after = gemm_throughput(device)
            fp32 = statistics.median([max(v for k, v in g.items() if k.startswith("float32"))
                                      for g in (gemm_before, gemm_after)])
            fp32_default = statistics.median([g["float32"] for g in (gemm_before, gemm_after)])
            bf16 = statistics.median([g["bf16"] for g in (gemm_before, gemm_after)])
            print(f"\n{dev} {prec}: GEMM {GEMM[0]}x{GEMM[1]} @ {GEMM[1]}x{GEMM[2]} GFLOP/s "
                  + "; ".join(f"{k} {gemm_before[k]:.0f} -> {gemm_after[k]:.0f}" for k in gemm_before)
                  + f"  (load {load_before} -> {load_average('/')})")
            for phase in ("pretrain", "som_init", "joint"):
                v = steps.get(phase, [])
                if not v:
                    continue
                med = statistics.median(v)
                bound = flops[phase] / (fp32 * 1e9)
                bound_default = flops[phase] / (fp32_default * 1e9)
                rows.append((dev, prec, phase, med, min(v), len(v), bound, bound_default, REFERENCE_TF[phase]))
            if steps.get("joint_first") and steps.get("joint"):
                refresh = statistics.median(steps["joint_first"]) - statistics.median(steps["joint"])
                print(f"  target refresh over {args.rows} rows: {refresh:.3f} s "
                      f"(about {refresh * 51000 / args.rows:.1f} s per epoch on 51,000 rows)")
            print(f"  best float32 GEMM {fp32:.0f} GFLOP/s (default {fp32_default:.0f}), bf16 GEMM {bf16:.0f} GFLOP/s "
                  "(median of before/after)")

    print("\nseconds per step: median and least disturbed step. bound = the model's float32 FLOPs at the best "
          "float32 GEMM rate; x bound = median / bound; x dflt = median / (FLOPs at the default GEMM's rate); "
          "TF/this = original TensorFlow code's step time / median")
    head = f"{'device':7}{'precision':10}{'phase':10}{'median':>8}{'min':>8}{'steps':>6}" \
           f"{'bound':>8}{'x bound':>8}{'x dflt':>8}{'TF ref':>8}{'TF/this':>8}"
    print(head)
    print("-" * len(head))
    for dev, prec, phase, med, mn, n, bound, bound_default, ref in rows:
        print(f"{dev:7}{prec:10}{phase:10}{med:8.3f}{mn:8.3f}{n:6d}{bound:8.3f}{med / bound:8.2f}"
              f"{med / bound_default:8.2f}{ref:8.3f}{ref / med:8.2f}")
    print(f"load average at the end: {load_average('/')}")

    if args.profile or args.torch_profile:
        for dev in devices:
            device = torch.device(dev)
            CLOCK = time.perf_counter if (dev != "cpu" or args.clock == "wall") else time.process_time
            for prec in precisions:
                if args.profile:
                    parts = profile_joint_step(device, prec, repeats=7)
                    total = sum(s for name, s in parts if not name.startswith("("))
                    print(f"\nparts of one joint step, {dev} {prec} (each timed alone; load {load_average('/')})")
                    for name, s in parts:
                        share = "" if name.startswith("(") else f" {100 * s / total:5.1f} %"
                        print(f"  {name:42}{s:8.4f} s{share}")
                    print(f"  {'sum of the parts':42}{total:8.4f} s")
                if args.torch_profile:
                    print(f"\ntorch.profiler, 4 joint steps, {dev} {prec}")
                    print(torch_profile(dev, prec, args.rows))


if __name__ == "__main__":
    main()
