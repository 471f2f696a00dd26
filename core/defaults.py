"""The one rule that turns what the data are into training settings, with the reasons why.

A user who gives nothing but the data gets these settings from the command line, the desktop
app and ``DPSOM()`` / ``TDPSOM()`` alike. The rule looks at the kind of data (a table, image-like
intensities, patient time series), its size and its value range, and decides the scaling, the
likelihood, the loss weights, the kernel, the batch size, the epochs and the grid.

How the rule was chosen: on scikit-learn's digits, breast cancer and wine tables, the manifold
generator and the synthetic ICU cohort of :mod:`core.data.synthetic`, comparing NMI and purity
with k-means of as many clusters (``benchmarks/panel.py`` reports these apart from the held-out
sets). Figures below are single runs on a shared CPU; seeds are named.

* Values already in [0, 1] (pixel intensities, proportions, 0/1 flags) are kept as they are and
  modelled as Bernoulli probabilities. Z-scoring them made the likelihood Gaussian, which cost
  digits 0.22 NMI and 0.24 purity (0.50 / 0.70 against 0.72 / 0.94, seed 0).
* Non-negative integer intensities over many features that share one range (raw pixels,
  0-16 or 0-255) are brought to [0, 1] and treated the same way.
* Other tables are z-scored and modelled as Gaussians.
* Tables get a light KL weight (0.01 instead of 0.5), so the latent space keeps the detail of
  the data, the Cauchy kernel (Student-t with nu = 1, as in DEC; nodes between two groups stay
  nearly empty instead of mixing them) and a clustering weight of 10. On digits (seed 0) this
  raised NMI from 0.72 to 0.73 and purity from 0.94 to 0.96; on wine 4x4 (batch 32, seeds 0-1)
  from 0.48-0.54 / 0.87-0.92 to 0.57-0.59 / 0.96.
* Batches hold about a twentieth of the data (16 to 256 samples or patients): the schedule
  counts epochs and refreshes the clustering target once per epoch, so a fixed batch gave
  small tables a handful of steps per refresh (wine: 2 with 128 rows per batch) and large
  ones hundreds. Tables keep at least 32 rows per batch (16 cost wine 0.03 purity, seeds 0-2).
* Tables train for about 1,600 joint steps (40 to 80 epochs): digits' purity rose by 0.005
  from 40 to 80 epochs (seeds 0-1).
* Tables use a learned per-unit scale and shift instead of batch statistics (see
  :func:`propose`).
* Tables with fewer than 10 rows per map node (a few hundred rows on 8x8) start their
  prototypes at k-means centres of the latent means, placed on the grid by a one-to-one
  matching to the PCA plane (``som_init="kmeans_grid"``), with SOM weight 1 instead of 0.25.
  With about 3 rows per node the joint phase barely moves the prototypes from where they
  start, so the start must already quantise the data; the matching keeps the map ordered as
  far as the centres allow, and the stronger SOM term orders the rest. Wine (seeds 1-2):
  NMI 0.485 / 0.507 -> 0.509 / 0.521, purity 0.961 / 0.983 -> 0.989 / 1.000 (k-means 0.511 /
  0.989), topographic error 0.45 / 0.36 -> 0.49 / 0.43; breast cancer (569 rows, seeds
  1-2): 0.346 / 0.342 -> 0.352 / 0.353, purity 0.961 / 0.960 -> 0.965 / 0.965 (k-means 0.349-
  0.352 / 0.956-0.958). The same start on digits (28 rows per node) cost 0.015 NMI and 0.011
  purity (seed 1), so larger tables keep the PCA plane. On the full panel (seeds 1-3) wine
  went from 0.497 / 0.974 to 0.509 / 0.989 and breast cancer stayed at 0.349 (purity 0.964 ->
  0.960); of the held-out tables glass (0.439 / 0.774 -> 0.455 / 0.796) and crabs (0.423 /
  0.787 -> 0.457 / 0.823) gained, Pima stayed (0.202 / 0.825 -> 0.199 / 0.818), iris (0.504
  / 0.971 -> 0.499 / 0.953) and penguins (0.496 / 0.985 -> 0.490 / 0.966) lost.

* The same tables end with batch-SOM passes over the latent means (``train.refine_sigma``):
  each pass moves every prototype to the mean of the codes nearest to it and to its grid
  neighbours, weighted by a Gaussian of grid distance narrowing from 1.5 to 0.7 steps. The
  gradient-trained map of a small table is ordered only as far as its k-means start allows
  (topographic error 0.33-0.50); these passes order it without retraining the networks.
  Chosen on wine, breast cancer and four more small tables added for this choice (MASS
  biopsy, ISLR Auto, DAAG ais, HSAUR skulls; seeds 1-3, applied to the trained maps): the
  latent topographic error fell from 0.41 to 0.19 on average (MiniSom's, in the input
  space: 0.16), NMI rose by 0.006 and purity by 0.002 on average against the trained maps.
  Narrower final widths (0.5-0.6) kept more nodes in use but ordered less; wider ones (0.8-1.0)
  ordered more (0.15-0.18) at a cost of 0.004-0.01 purity. On digits and the manifold sheet
  (28-31 rows per node) the same passes emptied nodes (effective nodes 46 -> 33 on digits,
  purity 0.967 -> 0.954), so larger tables keep what training left.
* T-DPSOM (not the parity preset) adds two terms the reference does not have: the expected
  number of grid steps beyond a direct neighbour between the soft assignments of consecutive
  steps, computed from the detached latent so that only the prototypes learn from it (weight
  3), and the KL of the batch's mean assignment to even node use (weight 0.3). On the
  synthetic ICU cohort (300 patients, 8x8, seeds 1-3) the share of steps that stay on their
  node or move to a neighbour went from 0.86 / 0.81 / 0.80 to 0.87 / 0.84 / 0.85, NMI from
  0.563 / 0.545 / 0.551 to 0.559 / 0.545 / 0.548, purity from 0.814 / 0.811 / 0.825 to 0.823 /
  0.820 / 0.824 (k-means 0.815 / 0.817 / 0.814), effective nodes from 27 / 32 / 33 to 30 / 34 /
  35 and the latent topographic error from 0.33 to 0.22 (mean). The best-matching nodes still
  hop: without the terms, three quarters of the steps that left a node's neighbourhood kept
  the same true state (seed 1). The 90 % target is reached by
  the most probable node paths (:meth:`core.workflow.ModelRun.node_paths`, a grid prior of
  slow movement decoded over the whole stay): 0.96 / 0.97 / 0.96 smooth steps at NMI 0.565 /
  0.548 / 0.553, purity 0.826 / 0.820 / 0.824 and 30 / 34 / 35 effective nodes.
  Tried and not kept (ICU, seed 1 unless named; current default without the terms: smooth
  0.86, purity 0.814, 27 effective nodes): the jump term through the encoder as well (weight
  0.1 / 0.3 / 1: smooth 0.88 / 0.88 / 0.87, purity 0.805 / 0.785 / 0.693) or through the
  encoder alone (0.3 / 1: 0.86 / 0.87, purity 0.785 / 0.709, 26 / 21 nodes): it pulls
  consecutive embeddings together and blurs the states; the reference's smoothness at weight
  3 with the balance term at 1 or 3 (smooth 0.89 / 0.87, purity 0.71 / 0.73 with 32 / 40
  effective nodes: the nodes stay in use but the latent loses the states' detail); jump 1
  instead of 3 (seeds 1-3: smooth 0.88 / 0.83 / 0.85, purity 0.823 / 0.814 / 0.824); balance 1
  instead of 0.3 (seeds 1-3: smooth 0.85 / 0.82 / 0.83, NMI 0.553 / 0.538 / 0.543); a
  clustering target sharpened from assignments smoothed over time under the same grid prior
  as the node paths (cost 0.3 / 1 per extra grid step: smooth 0.88 / 0.90, purity 0.799 /
  0.774); 30 joint epochs instead of 15 (seeds 1-3: smooth 0.84 / 0.84 / 0.84, NMI 0.536-
  0.541, purity 0.820-0.829, 38-41 effective nodes, twice the time).
  Held out (benchmarks/panel.py, seeds 1-3), the terms cost something: on the regime cohort
  the hourly smoothness fell from 0.67 to 0.63 and NMI from 0.683 to 0.670 (its node paths
  rose from 0.90 to 0.94); on Mayo PBC the 6-step forecast fell from 0.19 to 0.14 (holding the
  node: 0.11-0.12); reported as measured (README, "Measured figures").

Tried and not kept (wine and breast cancer, seeds 1-2, unless named): a Gaussian
neighbourhood in the SOM loss that starts 3 grid steps wide and shrinks to the direct
neighbours over the first half of joint training (topographic error unchanged, 0.35-0.52),
the same in the initialisation stages (worse, 0.55-0.67), and a SOM weight raised 16-40 fold
at the start and annealed to 0.25 (0.29-0.45: the final weight decides the map's order). A
SOM weight of 4-10 throughout, or a flat grid with weight 4, does bring the latent
topographic error to 0.04-0.26, near MiniSom's, but costs NMI and purity where they count
(digits, seed 1: 0.739 / 0.967 -> 0.720 / 0.949 against k-means' 0.711 / 0.964; breast
cancer at weight 10: 0.333-0.342 / 0.949 against 0.349-0.352 / 0.956-0.958) and empties nodes
(effective nodes 45-53 instead of 54-57): a tighter map and finer clusters pull against each
other, and the rule keeps the clusters.

With all of it, digits on the default path give 0.735 / 0.968 (seed 0) against k-means'
0.716 / 0.967; small z-scored tables of a few hundred rows on 64 nodes are about level with
k-means in NMI and 0.005-0.04 below in purity, and the topographic error is near MiniSom's on
small tables but above it on larger ones (README, "Measured figures").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .config import Config, make_config

__all__ = ["DataProfile", "Proposal", "propose", "suggest_batch", "suggest_joint_epochs", "suggest_grid",
           "suggest_scaling"]

#: Batches per epoch the rule aims for.
STEPS_PER_EPOCH = 20
#: Joint optimiser steps a table gets at least (fewer epochs are never fewer than 40).
TABLE_JOINT_STEPS = 1600
#: Bounds of the table joint epochs.
TABLE_EPOCHS = (40, 80)
#: Features a table needs before shared-range intensities count as an image.
IMAGE_MIN_FEATURES = 16
#: Rows per map node below which a table's prototypes start from k-means centres.
FEW_ROWS_PER_NODE = 10
#: Neighbourhood widths (grid steps) of the batch-SOM refinement those tables end with.
REFINE_SIGMA = (1.5, 0.7)
#: T-DPSOM: weight of the expected grid jump between consecutive steps (prototypes only).
JUMP_WEIGHT = 3.0
#: T-DPSOM: weight of even node use (KL of the batch's mean assignment to uniform).
BALANCE_WEIGHT = 0.3


@dataclass(frozen=True)
class DataProfile:
    """What the rule looks at.

    Attributes
    ----------
    kind : {"table", "image", "series"}
        ``image``: a table of intensities in [0, 1], or of non-negative integers over many
        features sharing one range (raw pixels); ``series``: patient time series.
    n_samples : int
        Rows, or patients.
    n_points : int
        Points the map is fitted to: rows, or real time steps over all patients.
    n_features : int
    value_min, value_max : float
        Range of the observed values (NaN when unknown, e.g. from counts alone).
    missing_fraction : float
        Share of cells (of real steps for series) not observed.
    """

    kind: str
    n_samples: int
    n_points: int
    n_features: int
    value_min: float = float("nan")
    value_max: float = float("nan")
    missing_fraction: float = 0.0

    @property
    def temporal(self) -> bool:
        return self.kind == "series"

    @property
    def unit_interval(self) -> bool:
        """Every observed value lies in [0, 1]."""
        return bool(self.value_min >= 0.0 and self.value_max <= 1.0)

    @classmethod
    def from_arrays(cls, values, mask=None, lengths=None) -> "DataProfile":
        """Profile ``(n, D)`` table values or ``(N, T, D)`` series (NaN or ``~mask`` unobserved)."""
        x = np.asarray(values, dtype=np.float32)
        m = ~np.isnan(x) if mask is None else (np.asarray(mask, dtype=bool) & ~np.isnan(x))
        temporal = x.ndim == 3
        if temporal:
            n, t = x.shape[:2]
            lens = np.full(n, t) if lengths is None else np.asarray(lengths, dtype=np.int64)
            real = np.arange(t)[None, :] < lens[:, None]
            n_points, cells = int(real.sum()), int(real.sum()) * x.shape[2]
            m = m & real[:, :, None]
        else:
            n_points, cells = int(x.shape[0]), int(x.size)
        observed = x[m]
        lo = float(observed.min()) if observed.size else float("nan")
        hi = float(observed.max()) if observed.size else float("nan")
        kind = "series" if temporal else ("image" if _image_like(x, m, lo, hi) else "table")
        missing = 1.0 - float(m.sum()) / max(1, cells)
        return cls(kind, int(x.shape[0]), n_points, int(x.shape[-1]), lo, hi, missing)

    @classmethod
    def from_dataset(cls, dataset) -> "DataProfile":
        """Profile a :class:`~core.data.Dataset` (its raw values, in clinical units)."""
        return cls.from_arrays(dataset.values, dataset.mask, dataset.lengths if dataset.is_series else None)

    @classmethod
    def from_counts(cls, temporal: bool, n_samples: int, n_points: int, n_features: int = 0) -> "DataProfile":
        """Profile from counts alone (a cohort file read in shards, already scaled)."""
        return cls("series" if temporal else "table", int(n_samples), int(n_points), int(n_features))


def _image_like(x: np.ndarray, m: np.ndarray, lo: float, hi: float) -> bool:
    """Intensities: many features, non-negative, and either in [0, 1] or integers sharing one range."""
    if x.shape[-1] < IMAGE_MIN_FEATURES or not lo >= 0.0:
        return False
    if hi <= 1.0:
        return True
    observed = x[m]
    if not np.all(observed == np.round(observed)):
        return False
    col_max = np.where(m, x, 0.0).max(axis=0)
    # A shared range: a good share of the features reach the overall maximum (pixels do;
    # counts of different things seldom do).
    return float(np.mean(col_max == hi)) >= 0.25


@dataclass
class Proposal:
    """Settings the rule chose and why.

    Attributes
    ----------
    config : Config
    preprocessing : dict
        Preprocessor options (``scaling``); arrays given to an estimator are used as they are.
    reasons : list of str
        One plain sentence per decision.
    """

    config: Config
    preprocessing: dict = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """The reasons as indented lines, for the command line."""
        return "\n".join(f"  - {r}" for r in self.reasons)


def suggest_grid(n_points: int) -> tuple[int, int]:
    """A square grid with about ``5 * sqrt(n_points)`` nodes, between 3x3 and 20x20.

    The rule of thumb comes from the SOM literature (Vesanto's heuristic); clinicians can
    always override it.
    """
    nodes = 5.0 * math.sqrt(max(1, n_points))
    side = int(round(math.sqrt(nodes)))
    side = max(3, min(20, side))
    while side > 2 and side * side > n_points:
        side -= 1
    return side, side


def suggest_batch(n_units: int, steps_per_epoch: int = STEPS_PER_EPOCH, smallest: int = 16,
                  largest: int = 256) -> int:
    """Samples (tables) or patients (series) per batch: about ``steps_per_epoch`` batches.

    The schedule counts epochs and refreshes the target distribution once per epoch, so a fixed
    batch gives a larger data set many more steps per refresh and in all. On the synthetic ICU
    cohort a fixed 16 patients per batch lost 0.09 NMI with the true state at 2,000 patients;
    100 restored it (benchmarks/tdpsom_synthetic.py); small tables with 128 rows per batch got
    two steps per refresh and fell below k-means (benchmarks/panel.py).

    Parameters
    ----------
    n_units : int
        Rows of a table or patients of a cohort.
    steps_per_epoch : int, default 20
    smallest, largest : int, default 16 and 256
        Bounds: small data keep enough samples per step, and a series batch stays near the
        reference's 300 patients x 72 h in memory.

    Returns
    -------
    int
        May exceed tiny data; the trainer caps it at the data's size.
    """
    return int(max(smallest, min(largest, math.ceil(max(1, n_units) / steps_per_epoch))))


def suggest_joint_epochs(n_units: int, batch: int) -> int:
    """Joint epochs of a table: about ``TABLE_JOINT_STEPS`` steps, within ``TABLE_EPOCHS``."""
    per_epoch = max(1, math.ceil(max(1, n_units) / max(1, min(batch, n_units))))
    lo, hi = TABLE_EPOCHS
    return int(max(lo, min(hi, round(TABLE_JOINT_STEPS / per_epoch))))


def suggest_scaling(profile: DataProfile) -> tuple[str, str]:
    """Scaling of the preprocessor and the reason, for data with a known value range."""
    if profile.temporal:
        return "zscore", "time series: each variable z-scored (mean 0, SD 1), so vital signs and labs weigh alike"
    if profile.unit_interval:
        return "none", (f"all values lie in [0, 1] ({profile.value_min:g} to {profile.value_max:g}): kept as "
                        "they are and modelled as Bernoulli probabilities")
    if profile.kind == "image":
        return "minmax", (f"{profile.n_features} non-negative integer features sharing one range (0 to "
                          f"{profile.value_max:g}), like image intensities: scaled to [0, 1] and modelled "
                          "as Bernoulli probabilities")
    return "zscore", "a table on mixed scales: each column z-scored and modelled as a Gaussian"


def propose(profile: DataProfile, preset: str = "quick", *, model: str | None = None, parity: bool | None = None,
            device: str = "auto") -> Proposal:
    """The settings for data described by ``profile``.

    Parameters
    ----------
    profile : DataProfile
    preset : {"quick", "paper"}
        ``paper`` keeps the reference's sizes, weights and schedule; only the scaling and the
        grid's fit to the data follow the rule.
    model : {"dpsom", "tdpsom"}, optional
        Default: T-DPSOM for series, DPSOM otherwise.
    parity : bool, optional
        As in :func:`~core.config.make_config`.
    device : str
        Saved in the configuration.

    Returns
    -------
    Proposal
    """
    model = model or ("tdpsom" if profile.temporal else "dpsom")
    cfg = make_config(model, preset, parity=parity)
    reasons: list[str] = []
    changes: dict = {"train.device": device}
    if profile.n_features and not math.isnan(profile.value_min):
        scaling, why = suggest_scaling(profile)
        reasons.append(why)
    else:
        scaling = "zscore"
        reasons.append("values not inspected (a file read in shards is already scaled); likelihood follows "
                       "their range")
    if profile.missing_fraction > 0:
        reasons.append(f"{profile.missing_fraction:.0%} of the values are missing: they are left out of the "
                       "likelihood (masked), and filled only to feed the encoder")
    unit = "patients" if profile.temporal else "rows"

    if preset == "quick":
        h, w = suggest_grid(profile.n_points)
        if cfg.grid.n_nodes > profile.n_points or h * w < cfg.grid.n_nodes:
            changes["grid.height"], changes["grid.width"] = h, w
            reasons.append(f"grid {h}x{w}: about 5 x sqrt({profile.n_points}) nodes")
        # Tables keep at least 32 rows per batch: with 16, wine (178 rows) lost 0.03 purity.
        smallest = 16 if profile.temporal else 32
        batch = int(min(suggest_batch(profile.n_samples, smallest=smallest), max(2, profile.n_samples)))
        changes["train.batch_size"] = batch
        reasons.append(f"{batch} {unit} per batch: about {STEPS_PER_EPOCH} steps per epoch on "
                       f"{profile.n_samples} {unit}")
        if model == "dpsom":
            epochs = suggest_joint_epochs(profile.n_samples, batch)
            changes.update({"weights.kl": 0.01, "weights.cah": 10.0, "network.nu": 1.0,
                            "train.epochs_joint": epochs})
            if not cfg.parity:
                # No batch statistics: with 32-90 rows per batch they are noisy, and the
                # running averages used for assigning lag the network (digits seed 0: purity
                # 0.964 -> 0.968; breast cancer seeds 0-1: 0.923 / 0.953 -> 0.953 / 0.956).
                changes["network.bn_mode"] = "reference_affine"
                reasons.append("a learned per-unit scale and shift instead of batch statistics (noisy in "
                               "small batches)")
            reasons.append("light KL weight 0.01 (the latent space keeps the data's detail), clustering weight "
                           "10, Cauchy kernel (nu = 1)")
            reasons.append(f"{epochs} joint epochs: about {TABLE_JOINT_STEPS} optimiser steps")
            n_nodes = changes.get("grid.height", cfg.grid.height) * changes.get("grid.width", cfg.grid.width)
            per_node = profile.n_points / max(1, n_nodes)
            if not cfg.parity and per_node < FEW_ROWS_PER_NODE:
                # A handful of rows per node: k-means centres placed on the grid (matched to the
                # PCA plane) instead of the plane itself, and a SOM weight of 1 to order them.
                changes.update({"train.som_init": "kmeans_grid", "weights.som": 1.0,
                                "train.refine_sigma": REFINE_SIGMA})
                reasons.append(f"{per_node:.1f} rows per node (under {FEW_ROWS_PER_NODE}): prototypes start at "
                               "k-means centres of the latent means, placed on the grid by matching them to a "
                               "PCA plane, with SOM weight 1 to keep them ordered")
                reasons.append(f"after the joint phase, batch-SOM passes over the latent means (neighbourhood "
                               f"narrowing from {REFINE_SIGMA[0]:g} to {REFINE_SIGMA[1]:g} grid steps) order the "
                               "map: neighbouring nodes then hold similar rows")
        else:
            reasons.append("T-DPSOM quick: smoothness at the reference weight against a scaled-down ELBO, "
                           "Cauchy kernel, 20 epochs of forecaster training")
            if not cfg.parity:
                # The map, not the encoder, learns to keep consecutive steps on neighbouring
                # nodes; a balance term keeps it from doing so by emptying nodes.
                changes.update({"weights.jump": JUMP_WEIGHT, "weights.balance": BALANCE_WEIGHT})
                reasons.append(f"prototypes of consecutive steps' nodes drawn together on the grid (jump weight "
                               f"{JUMP_WEIGHT:g}), node use kept even (balance weight {BALANCE_WEIGHT:g})")
    else:
        reasons.append("paper preset: the reference's sizes, weights and schedule")
    cfg = cfg.replace(**changes).validate()
    if cfg.train.som_init == "pca":
        reasons.append("prototypes start from a PCA plane through the latent means")
    elif cfg.train.som_init == "kohonen":
        reasons.append("prototypes start as in the reference (kohonen)")
    return Proposal(cfg, {"scaling": scaling}, reasons)
