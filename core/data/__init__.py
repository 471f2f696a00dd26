"""Reading, validating and preprocessing clinical data, and the built-in demo cohorts."""

from .dataset import Dataset

__all__ = ["Dataset"]
