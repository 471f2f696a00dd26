"""Reading, validating and preprocessing clinical data, and the built-in demo cohorts."""

from .dataset import Dataset

__all__ = ["Dataset"]

from .demo import demo_icu, demo_table
from .scores import apache_points, window_worst_score
from .synthetic import cohort_to_frame, make_icu_cohort, make_manifold_clusters

__all__ += ["apache_points", "window_worst_score", "make_icu_cohort", "cohort_to_frame",
            "make_manifold_clusters", "demo_icu", "demo_table"]

from .idx import read_idx, read_idx_dataset
from .physionet import read_physionet2012
from .preprocessing import Preprocessor
from .readers import FileInspection, estimate_memory, inspect_file, read_data
from .validation import check_grid_size

__all__ += ["read_data", "inspect_file", "estimate_memory", "FileInspection", "read_idx",
            "read_idx_dataset", "read_physionet2012", "Preprocessor", "check_grid_size"]
