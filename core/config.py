"""Hyperparameters as dataclasses, the ``quick`` and ``paper`` presets, and the parity switches.

Every knob of METHOD.md that changed behaviour between the paper, the reference code and our
clean defaults is a named field here (METHOD.md section 5). ``parity=True`` reproduces the
reference code's behaviour; ``parity=False`` (the default outside the ``paper`` preset) uses
our fixes. A :class:`Config` round-trips through plain JSON so it can live in a project file.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from .grid import SOMGrid

__all__ = [
    "LossWeights",
    "NetworkConfig",
    "TrainConfig",
    "Config",
    "make_config",
    "suggest_series_batch",
    "PRESETS",
    "MODELS",
]

PRESETS = ("quick", "paper")
MODELS = ("dpsom", "tdpsom")


@dataclass
class LossWeights:
    """Weights of the named loss terms (reference names in brackets, METHOD.md section 1).

    Attributes
    ----------
    vae : float
        Whole ELBO term (``theta``).
    kl : float
        KL(posterior || prior) inside the ELBO (``prior``).
    cah : float
        Clustering KL between target and soft assignment (``gamma``).
    som : float
        Soft SOM loss (``beta``).
    smooth : float
        Temporal smoothness, T-DPSOM only (``kappa``).
    pred : float
        LSTM next-embedding likelihood, T-DPSOM only (``eta``).
    jump : float
        Expected grid jump beyond a neighbour between consecutive soft assignments, T-DPSOM
        only; not in the reference (0 there).
    balance : float
        KL of the batch's mean soft assignment to uniform node use; not in the reference.
    """

    vae: float = 1.0
    kl: float = 0.5
    cah: float = 20.0
    som: float = 0.25
    smooth: float = 1.0
    pred: float = 1.0
    jump: float = 0.0
    balance: float = 0.0


@dataclass
class NetworkConfig:
    """Shapes and layer behaviour of the encoder, decoder and (T-DPSOM) predictor.

    Attributes
    ----------
    encoder : {"mlp", "conv"}
        Fully connected, or convolutional for square single-channel images.
    hidden : tuple of int
        Encoder widths; the decoder mirrors them.
    latent_dim : int
        Size ``d`` of the latent space and of every prototype.
    posterior : {"full", "diag"}
        Full-covariance (DPSOM reference) or diagonal Gaussian (T-DPSOM reference, cheaper).
    likelihood : {"auto", "bernoulli", "gaussian"}
        ``auto`` picks Bernoulli when all values lie in [0, 1], else a masked Gaussian.
    bn_mode : {"reference_affine", "batchnorm", "none"}
        ``reference_affine`` reproduces the reference's inert batch norm (a learnable
        per-unit affine map, METHOD.md 2.2); ``batchnorm`` is real batch normalisation.
    dropout : float
        Dropout rate; the reference's dropout never ran, so parity uses 0.
    leaky_slope : float
        LeakyReLU negative slope (TensorFlow's default 0.2, not PyTorch's 0.01).
    leaky_logits : bool
        Pass Bernoulli logits through a LeakyReLU as the reference FC decoder did.
    std_floor : float
        Lower bound added to every softplus standard deviation (0 in parity; stops NaNs).
    nu : float
        Student-t degrees of freedom of the soft assignment (``alpha``).
    prior_sd : float
        Standard deviation of the isotropic Gaussian prior (``prior_var``).
    lstm_dim : int
        LSTM units of the T-DPSOM predictor.
    lstm_gates : {"sigmoid", "hard_sigmoid"}
        Gate activation; the reference used Keras-v1's hard sigmoid.
    predict_change : bool
        The predictor's mean is the current embedding plus a learned change, rather than
        the next embedding itself (the reference). Holding the state is then where the
        predictor starts, not something it has to learn.
    """

    encoder: str = "mlp"
    hidden: tuple[int, ...] = (500, 500, 2000)
    latent_dim: int = 100
    posterior: str = "full"
    likelihood: str = "auto"
    bn_mode: str = "reference_affine"
    dropout: float = 0.0
    leaky_slope: float = 0.2
    leaky_logits: bool = False
    std_floor: float = 1e-4
    nu: float = 10.0
    prior_sd: float = 1.0
    lstm_dim: int = 200
    lstm_gates: str = "sigmoid"
    predict_change: bool = False


@dataclass
class TrainConfig:
    """Schedule, optimiser and run settings.

    Attributes
    ----------
    batch_size : int
        Samples (DPSOM) or patients (T-DPSOM) per minibatch.
    epochs_pretrain : int
        Phase 1, VAE pretraining.
    som_init_epochs, som_init_lrs : tuple
        Phase 2, SOM initialisation: one stage per entry.
    epochs_joint : int
        Phase 3, joint training.
    epochs_pred : int
        Phase 4 (T-DPSOM), prediction fine-tuning of the LSTM.
    lr_pretrain, lr : float
        Learning rates of phase 1 and of phases 3-4.
    decay_steps, decay_rate : int, float
        ``lr * decay_rate ** (global_step // decay_steps)``.
    adam : {"global_step", "per_parameter"}
        Bias correction from one global step shared by every parameter (TF1 reference), or
        PyTorch's per-parameter step.
    som_init : {"kohonen", "pca", "kmeans", "kmeans_grid"}
        Starting prototypes: random (truncated normal, then the Kohonen-style stages), a PCA
        plane through the latent means, k-means on them, or k-means centres placed on the
        grid by matching them to the PCA plane, each followed by the stages.
    shuffle : bool
        Reshuffle the training set every epoch (the reference never did).
    drop_last : bool
        Drop the trailing partial batch (the reference did).
    target_chunks : int
        Chunks of the per-epoch target-distribution pass.
    assign_with : {"sample", "mean"}
        Assign with one posterior sample (reference) or with the posterior mean.
    smoothness : {"prototype", "embedding"}
        T-DPSOM smoothness as coded (previous BMU's prototype) or as in the paper.
    kl_warmup_epochs : int
        Linear KL warm-up over the first joint epochs (0 = off).
    refine_sigma : tuple of float
        ``(start, end)``: after the joint phase, batch-SOM passes move the prototypes over the
        latent means with a Gaussian neighbourhood narrowing from ``start`` to ``end`` grid
        steps; empty (the default): no refinement.
    seed : int or None
        Seed of every random generator; None draws one.
    deterministic : bool
        Ask PyTorch for deterministic algorithms (exactly repeatable on CPU).
    device : str
        "auto", "cpu", "cuda", "cuda:N" or "mps".
    precision : {"float32", "bf16"}
        bf16 runs the networks under autocast (mixed precision); losses stay float32.
    max_steps : int or None
        Stop after this many optimiser steps in total (quick checks and tests).
    snapshot_every : int
        Optimiser steps between prototype copies attached to progress reports.
    """

    batch_size: int = 300
    epochs_pretrain: int = 15
    som_init_epochs: tuple[int, ...] = (5, 5, 5, 5)
    som_init_lrs: tuple[float, ...] = (0.9, 0.3, 0.1, 0.01)
    epochs_joint: int = 300
    epochs_pred: int = 0
    lr_pretrain: float = 1e-3
    lr: float = 1e-3
    decay_steps: int = 1000
    decay_rate: float = 0.99
    adam: str = "global_step"
    som_init: str = "kohonen"
    shuffle: bool = False
    drop_last: bool = True
    target_chunks: int = 10
    assign_with: str = "sample"
    smoothness: str = "prototype"
    kl_warmup_epochs: int = 0
    refine_sigma: tuple[float, ...] = ()
    seed: int | None = 2020
    deterministic: bool = False
    device: str = "auto"
    precision: str = "float32"
    max_steps: int | None = None
    snapshot_every: int = 50


_CHOICES = {
    ("model", None): MODELS,
    ("preset", None): PRESETS,
    ("network", "encoder"): ("mlp", "conv"),
    ("network", "posterior"): ("full", "diag"),
    ("network", "likelihood"): ("auto", "bernoulli", "gaussian"),
    ("network", "bn_mode"): ("reference_affine", "batchnorm", "none"),
    ("network", "lstm_gates"): ("sigmoid", "hard_sigmoid"),
    ("train", "adam"): ("global_step", "per_parameter"),
    ("train", "som_init"): ("kohonen", "pca", "kmeans", "kmeans_grid"),
    ("train", "assign_with"): ("sample", "mean"),
    ("train", "smoothness"): ("prototype", "embedding"),
    ("train", "precision"): ("float32", "bf16"),
}


@dataclass
class Config:
    """Everything needed to rebuild and retrain a model; saved with every project.

    Use :func:`make_config` to start from a preset rather than building one by hand.
    """

    model: str = "dpsom"
    preset: str = "quick"
    parity: bool = False
    grid: SOMGrid = field(default_factory=SOMGrid)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    weights: LossWeights = field(default_factory=LossWeights)
    train: TrainConfig = field(default_factory=TrainConfig)

    def validate(self) -> "Config":
        """Raise ``ValueError`` naming the offending setting; return self."""
        for (section, name), allowed in _CHOICES.items():
            value = getattr(self, section) if name is None else getattr(getattr(self, section), name)
            if value not in allowed:
                key = section if name is None else f"{section}.{name}"
                raise ValueError(f"setting {key} must be one of {', '.join(allowed)}; got {value!r}")
        self.grid.validate()
        n, t = self.network, self.train
        positive = {
            "network.latent_dim": n.latent_dim,
            "train.batch_size": t.batch_size,
            "network.nu": n.nu,
            "network.prior_sd": n.prior_sd,
            "train.decay_steps": t.decay_steps,
            "train.target_chunks": t.target_chunks,
            "network.lstm_dim": n.lstm_dim,
        }
        for key, value in positive.items():
            if not value > 0:
                raise ValueError(f"setting {key} must be positive; got {value}")
        for key in ("epochs_pretrain", "epochs_joint", "epochs_pred", "kl_warmup_epochs"):
            if getattr(t, key) < 0:
                raise ValueError(f"setting train.{key} cannot be negative; got {getattr(t, key)}")
        if t.refine_sigma and (len(t.refine_sigma) != 2 or not all(
                isinstance(s, (int, float)) and not isinstance(s, bool) and s > 0 for s in t.refine_sigma)):
            raise ValueError(f"setting train.refine_sigma needs two positive widths (start, end) or none; "
                             f"got {t.refine_sigma}")
        if len(t.som_init_epochs) != len(t.som_init_lrs):
            raise ValueError("train.som_init_epochs and train.som_init_lrs need the same number of stages")
        if not 0.0 <= n.dropout < 1.0:
            raise ValueError(f"setting network.dropout must be in [0, 1); got {n.dropout}")
        if any(h <= 0 for h in n.hidden) or not n.hidden:
            raise ValueError(f"setting network.hidden needs positive layer widths; got {n.hidden}")
        for key, value in dataclasses.asdict(self.weights).items():
            if value < 0:
                raise ValueError(f"loss weight {key} cannot be negative; got {value}")
        return self

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        """A JSON-compatible dict (tuples become lists)."""
        return {
            "model": self.model,
            "preset": self.preset,
            "parity": self.parity,
            "grid": self.grid.to_dict(),
            "network": dataclasses.asdict(self.network),
            "weights": dataclasses.asdict(self.weights),
            "train": dataclasses.asdict(self.train),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Config":
        """Inverse of :meth:`to_dict`. Missing fields take today's defaults, so older
        project files keep loading; unknown fields are ignored."""
        return cls(
            model=d.get("model", "dpsom"),
            preset=d.get("preset", "quick"),
            parity=bool(d.get("parity", False)),
            grid=SOMGrid.from_dict(d.get("grid", {"height": 8, "width": 8})),
            network=_section(NetworkConfig, d.get("network", {})),
            weights=_section(LossWeights, d.get("weights", {})),
            train=_section(TrainConfig, d.get("train", {})),
        )

    @classmethod
    def from_json(cls, s: str) -> "Config":
        return cls.from_dict(json.loads(s))

    def replace(self, **changes: Any) -> "Config":
        """Copy with top-level fields or dotted ``section.field`` names replaced.

        >>> make_config().replace(**{"train.epochs_joint": 3}).train.epochs_joint
        3
        """
        d = self.to_dict()
        for key, value in changes.items():
            if "." in key:
                section, name = key.split(".", 1)
                if section not in d or not isinstance(d[section], dict) or name not in d[section]:
                    raise KeyError(f"unknown setting {key!r}")
                d[section][name] = value
            else:
                if key not in d:
                    raise KeyError(f"unknown setting {key!r}")
                d[key] = value
        return Config.from_dict(d)


def _section(cls, d: dict[str, Any]):
    names = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in d.items():
        if key not in names:
            continue
        if isinstance(value, list):
            value = tuple(value)
        kwargs[key] = value
    return cls(**kwargs)


def make_config(
    model: str = "dpsom",
    preset: str = "quick",
    *,
    parity: bool | None = None,
    input_kind: str = "table",
    **changes: Any,
) -> Config:
    """Build a validated :class:`Config` from a preset.

    Parameters
    ----------
    model : {"dpsom", "tdpsom"}
        Static DPSOM, or temporal T-DPSOM.
    preset : {"quick", "paper"}
        ``quick``: small networks and short schedules that train in minutes on a laptop CPU.
        ``paper``: the reference sizes and schedule of METHOD.md (sections 2.9-2.10, 3.3-3.4);
        meant for a GPU.
    parity : bool, optional
        Reproduce the reference code's behaviour (METHOD.md section 5). Defaults to True for
        ``paper`` and False for ``quick``.
    input_kind : {"table", "image"}
        ``image`` selects a Bernoulli likelihood and, in ``paper``, the reference MNIST sizes.
    **changes
        Dotted overrides, e.g. ``**{"grid.height": 6, "train.epochs_joint": 10}``, or
        ``grid=SOMGrid(...)``.

    Returns
    -------
    Config
    """
    if model not in MODELS:
        raise ValueError(f"model must be one of {', '.join(MODELS)}; got {model!r}")
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {', '.join(PRESETS)}; got {preset!r}")
    if parity is None:
        parity = preset == "paper"
    cfg = Config(model=model, preset=preset, parity=parity)
    net, w, tr = cfg.network, cfg.weights, cfg.train

    if model == "dpsom":
        cfg.grid = SOMGrid(8, 8, "rect", True)
        w.vae, w.kl, w.cah, w.som = 1.0, 0.5, 20.0, 0.25
        if preset == "paper":
            net.hidden, net.latent_dim, net.posterior = (500, 500, 2000), 100, "full"
            tr.batch_size, tr.epochs_pretrain, tr.epochs_joint = 300, 15, 300
            tr.som_init_epochs, tr.som_init_lrs = (5, 5, 5, 5), (0.9, 0.3, 0.1, 0.01)
            tr.target_chunks = 10
        else:
            net.hidden, net.latent_dim, net.posterior = (256, 256), 16, "diag"
            tr.batch_size, tr.epochs_pretrain, tr.epochs_joint = 128, 30, 40
            tr.som_init_epochs, tr.som_init_lrs = (3, 3), (0.1, 0.01)
            tr.target_chunks = 1
        tr.decay_steps = 1000
        net.likelihood = "bernoulli" if input_kind == "image" else "auto"
    else:
        cfg.grid = SOMGrid(16, 16, "rect", True)
        w.vae, w.kl, w.cah, w.som, w.smooth, w.pred = 1.0, 1e-5, 50.0, 10.0, 1.0, 1.0
        net.posterior, net.likelihood = "diag", "gaussian"
        if preset == "paper":
            net.hidden, net.latent_dim, net.lstm_dim = (500, 500, 2000), 50, 200
            tr.batch_size, tr.epochs_pretrain, tr.epochs_joint, tr.epochs_pred = 300, 50, 100, 50
            tr.som_init_epochs, tr.som_init_lrs = (16, 16, 16), (0.1, 0.01, 0.01)
            tr.target_chunks = 20
        else:
            cfg.grid = SOMGrid(8, 8, "rect", True)
            net.hidden, net.latent_dim, net.lstm_dim = (128, 128), 16, 64
            # 16 patients per batch rather than 32: a step costs about half as much (the LSTM's
            # loop over time dominates small batches), so an epoch costs the same but takes
            # twice the optimiser steps. On the synthetic ICU cohort (300 patients, 4 seeds)
            # this raised NMI with the true state from 0.32-0.36 to 0.35-0.47 and took the
            # 6-step forecast from 0.93-0.99 to 0.89-0.93 of the same-state baseline's error.
            # For larger cohorts, suggest_series_batch keeps about as many steps per epoch
            # (the estimator, the app and the command line use it when no batch is given).
            tr.batch_size, tr.epochs_pretrain, tr.epochs_joint, tr.epochs_pred = 16, 10, 15, 5
            tr.som_init_epochs, tr.som_init_lrs = (3, 3), (0.1, 0.01)
            tr.target_chunks = 1
        tr.decay_steps = 2000

    if parity:
        # The reference's behaviour, bugs included (METHOD.md section 5).
        net.bn_mode, net.dropout = "reference_affine", 0.0
        net.leaky_logits = model == "dpsom" and net.encoder == "mlp"
        net.std_floor = 1e-5 if net.posterior == "full" else 0.0
        net.lstm_gates = "hard_sigmoid"
        tr.adam, tr.som_init, tr.shuffle, tr.drop_last = "global_step", "kohonen", False, True
        tr.assign_with, tr.smoothness, tr.kl_warmup_epochs = "sample", "prototype", 0
    else:
        net.bn_mode, net.dropout, net.leaky_logits = "batchnorm", 0.0, False
        net.std_floor, net.lstm_gates = 1e-4, "sigmoid"
        tr.adam, tr.som_init, tr.shuffle, tr.drop_last = "per_parameter", "pca", True, False
        tr.assign_with, tr.smoothness = "mean", "prototype"
        if model == "tdpsom":
            # Measured on the synthetic ICU cohort (benchmarks/tdpsom_synthetic.py): with real
            # batch norm the short quick schedule ends with running statistics that lag the
            # network, which cost about 0.1 NMI and a third of the forecast gain. Without it,
            # NMI with the true state rose from 0.35 to 0.45 and forecast error fell by 40 %.
            net.bn_mode = "none"
            # The predictor starts from "the state stays" and learns the change.
            net.predict_change = True
            if preset == "quick":
                # With the reference's 1:50:10:1 (ELBO : clustering : SOM : smoothness) the
                # smoothness term gets about 1/250 of the encoder's gradient on the synthetic
                # cohort (the learned decoder variances make the ELBO's gradient large) and
                # changes nothing. Adam only sees ratios, so the ELBO and clustering terms are
                # scaled down instead, leaving smoothness at its reference weight 1; with the
                # Cauchy kernel (nu = 1) and the paper's form of the term (consecutive
                # embeddings) this raised NMI with the true state from 0.46 to 0.56 and
                # shortened node jumps by a third (benchmarks/tdpsom_synthetic.py). The LSTM
                # gets 20 epochs of its own at the end: its steps are cheap, and the smoother
                # latent paths leave less for a half-trained forecast to gain over "no change".
                w.vae, w.cah, w.som = 0.02, 1.0, 0.2
                net.nu, tr.smoothness, tr.epochs_pred = 1.0, "embedding", 20
    if input_kind == "image" and preset == "paper" and model == "dpsom":
        net.likelihood = "bernoulli"

    cfg = cfg.replace(**{k: v for k, v in changes.items() if k != "grid"}) if changes else cfg
    if "grid" in changes:
        cfg.grid = changes["grid"]
    return cfg.validate()


def suggest_series_batch(n_patients: int, steps_per_epoch: int = 20, smallest: int = 16, largest: int = 256) -> int:
    """Patients per batch for the quick T-DPSOM schedule; see :func:`core.defaults.suggest_batch`.

    Kept for callers of earlier versions: the batch policy lives in :mod:`core.defaults`.
    """
    from .defaults import suggest_batch

    return suggest_batch(n_patients, steps_per_epoch, smallest, largest)
