"""Analytics for trained maps and patient trajectories, on numpy, SciPy and scikit-learn.

Everything here takes and returns plain arrays, so the GUI, the CLI and notebooks share the
same numbers. Functions handle a few hundred thousand to a few million samples in seconds,
working in chunks where an ``(n, K)`` block would otherwise be needed, and accept masks so
that padding steps of time series never count.

* :mod:`.metrics`: NMI, AMI, ARI, purity, quantisation and topographic error, entropies,
  collapse detection.
* :mod:`.maps`: U-matrix, hit maps, component planes, label enrichment, Moran's I,
  majority-label agreement.
* :mod:`.superclusters`: grouping nodes into contiguous regions; silhouette.
* :mod:`.trajectories`: wrap-aware paths, jumps, transitions, dwell times, forecasts.
* :mod:`.paths`: most probable node path of each patient under a prior of slow movement.
* :mod:`.stability`: agreement between runs with different seeds.
"""

from .maps import (
    NodeEnrichment,
    component_planes,
    feature_plane,
    hit_map,
    label_enrichment,
    majority_labels,
    morans_i,
    neighbour_majority_agreement,
    node_entropy,
    soft_hit_map,
    umatrix,
    wilson_interval,
)
from .metrics import (
    adjusted_rand_index,
    ami,
    assignment_entropy,
    best_matching_units,
    cluster_metrics,
    collapse_check,
    count_missing_labels,
    mutual_information,
    nmi,
    purity,
    quantisation_error,
    topographic_error,
)
from .stability import assignment_agreement, node_position_agreement, run_stability
from .superclusters import (
    agglomerative_superclusters,
    kmeans_superclusters,
    silhouette_score,
    suggest_n_superclusters,
)
from .trajectories import (
    DwellTimes,
    PathSegment,
    dwell_times,
    enrichment_at_horizons,
    forecast_state_accuracy,
    jump_lengths,
    local_move_share,
    mean_jump,
    node_path,
    transition_matrix,
)

__all__ = [
    # metrics
    "nmi", "ami", "adjusted_rand_index", "purity", "mutual_information", "count_missing_labels",
    "best_matching_units", "quantisation_error", "topographic_error", "assignment_entropy",
    "cluster_metrics", "collapse_check",
    # maps
    "umatrix", "hit_map", "soft_hit_map", "component_planes", "feature_plane", "NodeEnrichment",
    "label_enrichment", "wilson_interval", "node_entropy", "morans_i", "majority_labels",
    "neighbour_majority_agreement",
    # superclusters
    "agglomerative_superclusters", "kmeans_superclusters", "silhouette_score", "suggest_n_superclusters",
    # trajectories
    "PathSegment", "node_path", "jump_lengths", "mean_jump", "local_move_share", "transition_matrix", "DwellTimes",
    "dwell_times", "enrichment_at_horizons", "forecast_state_accuracy",
    # stability
    "assignment_agreement", "node_position_agreement", "run_stability",
]
