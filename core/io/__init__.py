"""Project files (HDF5) and CSV exports.

``project_h5`` (projects) and ``cohort_h5`` (cohort files that training reads in shards), with
the helpers they share in ``_h5files``, are the only modules of the code base that import
h5py; ``export`` builds and writes the CSV tables with pandas.
"""

from .export import assignments_frame, node_summary_frame, transition_frame, write_csv
from .project_h5 import (
    FORMAT_NAME,
    SCHEMA_VERSION,
    Project,
    check_data_ref,
    load_project,
    make_data_ref,
    project_summary,
    save_project,
)

__all__ = [
    "Project",
    "save_project",
    "load_project",
    "project_summary",
    "make_data_ref",
    "check_data_ref",
    "FORMAT_NAME",
    "SCHEMA_VERSION",
    "assignments_frame",
    "node_summary_frame",
    "transition_frame",
    "write_csv",
]
