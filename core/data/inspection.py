"""What a data file looks like before it is read: the record the import dialog shows.

Kept apart from the readers so that every reader (tables, PhysioNet directories) can return
one without importing another.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

__all__ = ["FileInspection"]


@dataclass
class FileInspection:
    """What a file looks like, for the import dialog.

    Produced by :func:`core.data.readers.inspect_file`.

    Attributes
    ----------
    path : str
    file_type : {"text", "excel", "parquet", "physionet2012"}
        How the file is stored.
    suggested_format : {"table", "long", "wide", "physionet2012"}
        How :func:`core.data.readers.read_data` with ``format="auto"`` will read it.
    encoding, delimiter : str or None
        Text files only (``"\\t"`` for tabs).
    decimal : str
        Decimal mark ("." or ",").
    has_header : bool
    columns : list of str
    preview : pandas.DataFrame
        The first rows, parsed with the detected settings.
    kinds : dict of str to str
        Column -> "numeric", "categorical", "text", "time" or "empty".
    roles : dict of str to str
        Column -> "id", "time", "variable", "value", "feature", "label" or "ignore".
    id_col, time_col, var_col, value_col : str or None
        The suggested role columns.
    n_rows_estimate : int
        Data rows (estimated from the size for large text files).
    warnings : list of str
        What the sniffer noticed (encoding, missing header, renamed columns, ...).
    """

    path: str
    file_type: str
    suggested_format: str
    encoding: str | None
    delimiter: str | None
    decimal: str
    has_header: bool
    columns: list[str]
    preview: pd.DataFrame
    kinds: dict[str, str]
    roles: dict[str, str]
    id_col: str | None = None
    time_col: str | None = None
    var_col: str | None = None
    value_col: str | None = None
    n_rows_estimate: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def format(self) -> str:
        """Alias of :attr:`suggested_format`."""
        return self.suggested_format
