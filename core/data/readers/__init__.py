"""Read clinical tables and time series from files into a :class:`~core.data.dataset.Dataset`.

Entry points
------------
:func:`read_data`
    Any supported input (.csv .tsv .txt .xlsx .parquet, or a PhysioNet-2012 directory) as a
    table, a long-format series, a wide-format series or PhysioNet 2012.
:func:`inspect_file`
    What the import dialog shows before loading: detected encoding, delimiter, decimal mark,
    header, a preview, column kinds and suggested roles.
:func:`estimate_memory`
    A rough figure of the memory :func:`read_data` will need, without reading the file.
:func:`iter_table_chunks`
    A table file as a sequence of small datasets holding given features (mapping new rows
    with memory bounded by the chunk, not the file).
:func:`iter_series_chunks`
    A long- or wide-format series file as groups of whole patients on the whole file's time
    grid (mapping new patients with memory bounded by the group).

Text files are sniffed (encoding UTF-8 / UTF-8 with BOM / cp1252, delimiter ``, ; tab |``,
decimal comma, header), then parsed by pandas in chunks so that numbers become float32 early
and peak memory stays bounded. Everything the reader changes is written, in plain words, to
``Dataset.warnings``; everything it refuses raises :class:`~core.errors.InputError` naming the
file, the line and the column.

The modules, one job each: :mod:`.sniff` (text files), :mod:`.sources` (one reader per file
type, in chunks), :mod:`.columns` (chunks into codes and numbers), :mod:`.infer` (roles from
names and contents), :mod:`.plan` (roles from options and inference), :mod:`.tables` and
:mod:`.series` (building the dataset), :mod:`.read` (the entry points), :mod:`.stream`
(a table in chunks with given features), :mod:`.series_stream` (a series in groups of whole
patients).
"""

from ..inspection import FileInspection
from .infer import MAX_CATEGORY_LEVELS
from .read import FORMATS, estimate_memory, inspect_file, read_data
from .series_stream import ScatteredPatients, SeriesChunks, iter_series_chunks
from .stream import TableChunks, iter_table_chunks

__all__ = ["read_data", "inspect_file", "estimate_memory", "iter_table_chunks", "TableChunks",
           "iter_series_chunks", "SeriesChunks", "ScatteredPatients",
           "FileInspection", "FORMATS", "MAX_CATEGORY_LEVELS"]
