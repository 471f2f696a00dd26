"""Parquet is an optional extra: without pyarrow a .parquet file is refused in one line."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from core.cli import main
from core.data.readers import inspect_file, read_data
from core.errors import InputError


@pytest.fixture
def parquet_file(tmp_path):
    path = tmp_path / "vitals.parquet"
    try:
        pd.DataFrame({"hr": np.arange(40.0) % 7, "sbp": np.arange(40.0) + 100}).to_parquet(path)
    except ImportError:
        # Where the extra is not installed the reader stops before parsing: magic bytes suffice.
        path.write_bytes(b"PAR1" + bytes(64) + b"PAR1")
    return path


@pytest.fixture
def without_pyarrow(monkeypatch):
    # None in sys.modules makes "import pyarrow" raise ImportError, as when it is not installed.
    for name in [m for m in sys.modules if m == "pyarrow" or m.startswith("pyarrow.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)


def test_parquet_reads_when_pyarrow_is_installed(parquet_file):
    pytest.importorskip("pyarrow")
    ds = read_data(parquet_file)
    assert ds.feature_names == ["hr", "sbp"] and ds.n_samples == 40


@pytest.mark.parametrize("call", [read_data, inspect_file])
def test_parquet_without_pyarrow_names_the_extra_to_install(parquet_file, without_pyarrow, call):
    with pytest.raises(InputError) as info:
        call(parquet_file)
    message = str(info.value)
    assert "\n" not in message
    assert 'pip install "dpsom-studio[parquet]"' in message
    assert "vitals.parquet" in message


def test_cli_exits_2_with_one_line_and_writes_nothing(parquet_file, without_pyarrow, tmp_path,
                                                        capsys):
    out = tmp_path / "p.h5"
    assert main(["train", str(parquet_file), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dpsom: error:")
    assert "dpsom-studio[parquet]" in err[0]
    assert not out.exists()
