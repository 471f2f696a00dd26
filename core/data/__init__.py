"""Reading, validating and preprocessing clinical data, and the built-in demo cohorts."""

from .dataset import Dataset

__all__ = ["Dataset"]

from .demo import demo_icu, demo_table
from .scores import apache_points, window_worst_score
from .synthetic import cohort_to_frame, make_icu_cohort, make_manifold_clusters

__all__ += ["apache_points", "window_worst_score", "make_icu_cohort", "cohort_to_frame",
            "make_manifold_clusters", "demo_icu", "demo_table"]
