"""Project files: exact round trips, atomic saves, and clear errors for every bad file."""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import core
from core.config import make_config
from core.data.dataset import Dataset
from core.errors import ProjectFileError
from core.io import project_h5
from core.io.project_h5 import (
    Project,
    check_data_ref,
    load_project,
    make_data_ref,
    project_summary,
    save_project,
)

REPO = Path(core.__file__).resolve().parents[1]
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "project_v1.h5"


# ------------------------------------------------------------------------- comparison
def assert_same(a, b, where="value"):
    """Equal values *and* equal types/dtypes, recursively; NaN equals NaN."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, dict):
        assert set(a) == set(b), f"{where}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, list):
        assert len(a) == len(b), f"{where}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype, f"{where}: dtype {a.dtype} != {b.dtype}"
        assert a.shape == b.shape, f"{where}: shape {a.shape} != {b.shape}"
        if a.dtype == object:
            for i, (x, y) in enumerate(zip(a.ravel(), b.ravel())):
                assert_same(x, y, f"{where}.flat[{i}]")
        else:
            assert np.array_equal(a, b, equal_nan=a.dtype.kind in "fcmM"), f"{where}: values differ"
    elif isinstance(a, np.generic):
        assert a.dtype == b.dtype and (a == b or (np.isnan(a) and np.isnan(b))), f"{where}: {a!r} != {b!r}"
    elif isinstance(a, float):
        assert a == b or (math.isnan(a) and math.isnan(b)), f"{where}: {a!r} != {b!r}"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def assert_same_dataset(a: Dataset, b: Dataset):
    for name in ("values", "mask", "ids", "times", "lengths"):
        x, y = getattr(a, name), getattr(b, name)
        if x is None:
            assert y is None, name
        else:
            assert_same(x, y, name)
    assert_same(a.labels, b.labels, "labels")
    for name in ("feature_names", "units", "id_col", "time_col", "time_unit", "source", "warnings"):
        assert getattr(a, name) == getattr(b, name), name


# --------------------------------------------------------------------------- builders
def series_dataset(rng) -> Dataset:
    values = rng.normal(size=(5, 6, 3)).astype(np.float32)
    lengths = np.array([6, 4, 5, 2, 6], dtype=np.int64)
    pad = np.arange(6)[None, :] >= lengths[:, None]
    values[pad] = np.nan
    values[0, 1, 2] = np.nan
    times = np.where(pad, np.nan, np.arange(6, dtype=np.float64) * 0.5)
    died = np.repeat(np.array([0.0, 1.0, np.nan, 0.0, 1.0]), 6).reshape(5, 6)
    state = np.array([["stable", "sepsis", "", "x/y", "é", "=cmd"]] * 5, dtype=object)
    return Dataset(
        values=values, mask=~np.isnan(values), feature_names=["hr", "sbp", "lactate"],
        units=["bpm", "mmHg", "mmol/L"], ids=np.array([f"p{i}" for i in range(5)], dtype=object),
        times=times, lengths=lengths, labels={"died": died, "state/now": state},
        id_col="patient", time_col="hour", time_unit="h", source="demo:icu",
        warnings=["2 rows dropped: no patient id"],
    )


def table_dataset(rng) -> Dataset:
    values = rng.normal(size=(7, 2)).astype(np.float32)
    values[3, 0] = np.nan
    return Dataset(
        values=values, mask=~np.isnan(values), feature_names=["age", "bmi"],
        ids=np.arange(100, 107, dtype=np.int64),
        labels={
            "outcome": np.array([0, 1, 1, 0, 2, 1, 0], dtype=np.int64),
            "score": np.array([1.5, np.nan, 2.0, 0.0, -1.0, np.nan, 3.0]),
            "group": np.array(["a", "b", "a", "c", "b", "a", "c"]),  # fixed-width unicode
            "ward": np.array(["icu", None, "ward", np.nan, "icu", "ward", 3], dtype=object),
        },
        id_col="subject", source="cohort.csv",
    )


def state_tree(rng) -> dict:
    return {
        "encoder.layers.0.weight": rng.normal(size=(4, 3)).astype(np.float32),
        "encoder.layers.0.bias": rng.normal(size=4),
        "decoder": {"out.weight": rng.normal(size=(3, 4)).astype(np.float64),
                    "nested": {"deeper": {"flags": np.array([[True, False], [False, True]])}}},
        "prototypes": rng.normal(size=(9, 4)).astype(np.float32),
        "counts": np.arange(12, dtype=np.int64).reshape(3, 4) - 5,
        "rng_state": rng.integers(0, 256, size=64, dtype=np.uint8),
        "half": np.array([1.5, -2.0], dtype=np.float16),
        "complex": np.array([1 + 2j, 3 - 1j], dtype=np.complex64),
        "names": np.array(["alpha", "β", ""]),
        "bytes": np.array([b"ab", b"c"]),
        "when": np.array(["2024-01-01T10:00", "NaT"], dtype="datetime64[m]"),
        "zero_d": np.array(3.25),
        "empty": np.zeros((0, 3), dtype=np.float32),
        "np_scalar": np.float32(0.125),
        "np_int": np.int64(2**40),
        "global_step": 120,
        "lr": 1e-3,
        "nan_value": float("nan"),
        "phase": "joint",
        "done": False,
        "best": None,
        "sizes": [500, 500, 2000],
        "names_list": ["a", "b"],
        "param_groups": [{"lr": 0.001, "params": [0, 1], "betas": [0.9, 0.999]}],
        "empty_dict": {},
        "": {"": 1},
        ".": 1, "..": 2, "a/b": 3, "100%": 4, "%2F": 5, "tab\tkey": 6, "ünï": 7,
    }


def full_project(rng) -> Project:
    return Project(
        config=make_config("tdpsom", "quick").to_dict(),
        dataset=series_dataset(rng),
        column_roles={"patient": "id", "hour": "time", "hr": "feature", "died": "label"},
        preprocessor={"kind": "standard", "mean": [1.0, 2.0, 3.0], "std": [0.5, 0.5, 1.0], "log": [False, True, True]},
        model_state=state_tree(rng),
        train_state={"optimizer": {"encoder.layers.0.weight": {"step": 3, "exp_avg": rng.normal(size=(4, 3)).astype(np.float32)}},
                     "position": {"phase": 2, "epoch": 1, "batch": 0, "global_step": 3},
                     "epoch_sums": {"total": 2.5}, "rng": {"cpu": rng.integers(0, 256, 16, dtype=np.uint8)}},
        history=[
            {"phase": "pretrain", "epoch": 0, "step": 1, "total": 3.0, "elbo": 3.0},
            {"phase": "joint", "epoch": 1, "step": 2, "total": float("nan"), "som": np.float32(0.25)},
            {"phase": "joint", "epoch": 2, "step": 3, "total": 1.0, "note": "", "flag": True, "extra": [1, 2]},
            {"epoch": 3, "note": "resumed", "flag": False, "extra": None, "big": 2**60},
        ],
        assignments={"bmu": rng.integers(0, 64, size=(5, 6)), "proba": rng.random((5, 6, 64)).astype(np.float32),
                     "next_node_pred": rng.integers(0, 64, size=(5, 6))},
        annotations={"node_names": {"3": "septic shock"}, "superclusters": list(range(64)), "colours": {"0": "#ff0000"}},
        warnings=["training stopped early", "ünïcode"],
        metadata={"seed": 7, "device": "cpu", "durations": {"joint": 12.5}},
    )


# ------------------------------------------------------------------------ round trips
def test_every_field_round_trips_exactly(tmp_path):
    rng = np.random.default_rng(0)
    project = full_project(rng)
    path = tmp_path / "study.h5"
    assert save_project(path, project) == path
    loaded = load_project(path)

    assert_same_dataset(project.dataset, loaded.dataset)
    assert_same(project.model_state, loaded.model_state, "model_state")
    assert_same(project.train_state, loaded.train_state, "train_state")
    assert_same(project.assignments, loaded.assignments, "assignments")
    for name in ("column_roles", "preprocessor", "annotations", "warnings", "metadata"):
        assert_same(getattr(project, name), getattr(loaded, name), name)
    assert_same(json.loads(json.dumps(project.config)), loaded.config, "config")  # tuples become lists
    assert loaded.data_ref is None
    # History: ints stay ints, the float32 becomes a float, NaN stays a value, absent keys stay absent.
    expected_history = [dict(row) for row in project.history]
    expected_history[1]["som"] = 0.25
    assert_same(expected_history, loaded.history, "history")
    assert "elbo" not in loaded.history[1] and "total" in loaded.history[1]
    assert list(loaded.dataset.labels) == ["died", "state/now"]
    assert loaded.app_version == core.__version__
    assert loaded.created == project.created and loaded.modified == project.modified


def test_table_dataset_round_trips_with_exact_label_dtypes(tmp_path):
    rng = np.random.default_rng(1)
    ds = table_dataset(rng)
    save_project(tmp_path / "t.h5", Project(config={}, dataset=ds))
    loaded = load_project(tmp_path / "t.h5").dataset
    assert_same_dataset(ds, loaded)
    assert loaded.labels["group"].dtype == np.dtype("<U1")
    ward = loaded.labels["ward"]
    assert ward[1] is None and math.isnan(ward[3]) and ward[6] == 3 and ward[0] == "icu"
    assert not loaded.is_series and loaded.times is None and loaded.lengths is None


def test_large_arrays_are_compressed_and_exact(tmp_path):
    weights = np.zeros((300, 400), dtype=np.float64)
    weights[::7, ::3] = np.arange(43 * 134).reshape(43, 134)
    save_project(tmp_path / "big.h5", Project(config={}, model_state={"w": weights}))
    assert (tmp_path / "big.h5").stat().st_size < weights.nbytes / 4
    assert_same(weights, load_project(tmp_path / "big.h5").model_state["w"])


@pytest.mark.parametrize("key", ["", ".", "..", "...", "a.b", "a/b", "/", "%", "%25", "%2F", "x\x00y", "\n", "名前", " sp "])
def test_any_string_key_round_trips(tmp_path, key):
    tree = {key: {key: np.array([1, 2], dtype=np.int8)}, "other": 1}
    save_project(tmp_path / "k.h5", Project(config={}, model_state=tree))
    assert_same(tree, load_project(tmp_path / "k.h5").model_state)


def test_many_labels_keep_their_order(tmp_path):
    names = [f"label_{i}" for i in range(40)][::-1]
    ds = Dataset(values=np.zeros((3, 1)), mask=np.ones((3, 1), bool), feature_names=["x"],
                 labels={n: np.arange(3.0) for n in names})
    save_project(tmp_path / "o.h5", Project(config={}, dataset=ds))
    assert list(load_project(tmp_path / "o.h5").dataset.labels) == names


def test_created_is_kept_and_modified_updated_on_resave(tmp_path):
    project = Project(config=make_config())  # a Config object is accepted and stored as its dict
    save_project(tmp_path / "p.h5", project)
    first_created = project.created
    assert first_created and project.modified and project.app_version == core.__version__
    project.created = "2020-01-01T00:00:00+00:00"
    save_project(tmp_path / "p.h5", project)
    loaded = load_project(tmp_path / "p.h5")
    assert loaded.created == "2020-01-01T00:00:00+00:00"
    assert loaded.config == json.loads(make_config().to_json())


def test_unstorable_values_raise_before_touching_the_file(tmp_path):
    path = tmp_path / "p.h5"
    save_project(path, Project(config={"v": 1}))
    before = path.read_bytes()
    bad = [
        {"model_state": {1: np.zeros(2)}},
        {"model_state": {"w": np.array([object()], dtype=object)}},
        {"model_state": {"w": object()}},
        {"history": [{"a": 1}, "not a row"]},
        {"metadata": {"when": object()}},
    ]
    for fields in bad:
        with pytest.raises(TypeError):
            save_project(path, Project(config={"v": 2}, **fields))
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.h5"]


def test_importing_the_module_does_not_import_torch():
    code = "import sys, core.io.project_h5; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO,
                   env={**os.environ, "PYTHONPATH": str(REPO)})


# -------------------------------------------------------------------------- data refs
def test_data_ref_mode_stores_a_checked_reference(tmp_path):
    source = tmp_path / "cohort.csv"
    source.write_text("age,bmi\n1,2\n3,4\n", encoding="utf-8")
    ds = table_dataset(np.random.default_rng(2))
    ds.source = str(source)
    project = Project(config={}, dataset=ds)
    save_project(tmp_path / "p.h5", project, embed_data=False)

    loaded = load_project(tmp_path / "p.h5")
    assert loaded.dataset is None
    assert loaded.data_ref == {"path": str(source.resolve()),
                               "sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
                               "size": source.stat().st_size}
    assert project.data_ref == loaded.data_ref
    assert check_data_ref(loaded) is None
    assert project_summary(tmp_path / "p.h5")["data"] is None

    source.write_text("age,bmi\n1,2\n3,5\n", encoding="utf-8")  # same size, other contents
    assert "changed" in check_data_ref(loaded)
    source.write_text("age\n", encoding="utf-8")
    assert "changed" in check_data_ref(loaded)
    source.unlink()
    message = check_data_ref(loaded)
    assert "missing" in message and "cohort.csv" in message


def test_data_ref_to_a_folder_and_relative_paths(tmp_path):
    folder = tmp_path / "set-a"
    folder.mkdir()
    (folder / "132539.txt").write_text("Time,Parameter,Value\n00:00,Age,54\n")
    (folder / "132540.txt").write_text("Time,Parameter,Value\n00:00,Age,76\n")
    ref = make_data_ref(folder)
    assert ref["size"] == sum(p.stat().st_size for p in folder.iterdir())
    project = Project(config={}, data_ref={**ref, "path": "set-a"})
    assert check_data_ref(project, base_dir=tmp_path) is None
    (folder / "132541.txt").write_text("x")
    assert "changed" in check_data_ref(project, base_dir=tmp_path)


def test_data_ref_needed_when_data_is_not_embedded(tmp_path):
    ds = table_dataset(np.random.default_rng(3))
    ds.source = "demo:icu"
    with pytest.raises(ValueError, match="data_ref"):
        save_project(tmp_path / "p.h5", Project(config={}, dataset=ds), embed_data=False)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------- atomicity
def test_a_save_failing_midway_leaves_the_old_file_and_no_temp_files(tmp_path, monkeypatch):
    path = tmp_path / "p.h5"
    old = Project(config={"version": "old"}, model_state={"w": np.arange(5.0)})
    save_project(path, old)
    before = path.read_bytes()

    real_write = project_h5._write_array
    calls = []

    def failing_write(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise RuntimeError("disk pulled out")
        return real_write(*args, **kwargs)

    monkeypatch.setattr(project_h5, "_write_array", failing_write)
    new = full_project(np.random.default_rng(4))
    with pytest.raises(RuntimeError, match="disk pulled out"):
        save_project(path, new)
    assert len(calls) == 4
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.h5"]
    assert new.created is None  # a failed save does not pretend to have saved
    assert load_project(path).config == {"version": "old"}


def test_an_os_error_while_saving_becomes_a_project_file_error(tmp_path, monkeypatch):
    path = tmp_path / "p.h5"
    save_project(path, Project(config={"version": "old"}))

    def no_space(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(project_h5, "_fsync_path", no_space)
    with pytest.raises(ProjectFileError, match="No space left") as info:
        save_project(path, Project(config={"version": "new"}))
    assert "p.h5" in str(info.value)
    assert load_project(path).config == {"version": "old"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.h5"]


def test_saving_into_a_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ProjectFileError, match="does not exist"):
        save_project(tmp_path / "nope" / "p.h5", Project(config={}))


_SAVE_LOOP = """
import sys
import numpy as np
from core.io.project_h5 import Project, save_project
path = sys.argv[1]
rng = np.random.default_rng(0)
i = 0
while True:
    weights = rng.standard_normal((500, 1000)).astype(np.float32)
    save_project(path, Project(config={"i": i}, model_state={"w": weights, "i": i,
                                                               "checksum": float(weights.sum(dtype=np.float64))}))
    print(i, flush=True)
    i += 1
"""


def test_killing_a_saving_process_leaves_a_loadable_project(tmp_path):
    path = tmp_path / "p.h5"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    delays = random.Random(5)
    seen = set()
    for _ in range(4):
        proc = subprocess.Popen([sys.executable, "-c", _SAVE_LOOP, str(path)], stdout=subprocess.PIPE,
                                text=True, env=env, cwd=tmp_path)
        try:
            assert proc.stdout.readline().strip().isdigit()  # at least one complete save
            time.sleep(delays.uniform(0.0, 0.4))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            proc.stdout.close()
        loaded = load_project(path)
        state = loaded.model_state
        assert loaded.config == {"i": state["i"]}
        assert state["w"].shape == (500, 1000) and state["w"].dtype == np.float32
        assert float(state["w"].sum(dtype=np.float64)) == state["checksum"]
        seen.add(state["i"])
        leftovers = [p.name for p in tmp_path.iterdir() if p != path]
        assert all(name.startswith("p.h5.tmp") for name in leftovers), leftovers
        for name in leftovers:
            (tmp_path / name).unlink()


# ------------------------------------------------------------------------ damaged files
def saved_bytes(tmp_path, project) -> tuple[Path, bytes]:
    path = tmp_path / "good.h5"
    save_project(path, project)
    return path, path.read_bytes()


@pytest.mark.parametrize("keep", [0.0, 0.1, 0.5, 0.9, 0.99])
def test_truncated_file_is_a_project_file_error(tmp_path, keep):
    _, data = saved_bytes(tmp_path, full_project(np.random.default_rng(6)))
    bad = tmp_path / "cut.h5"
    bad.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ProjectFileError) as info:
        load_project(bad)
    assert "cut.h5" in str(info.value) and "\n" not in str(info.value)
    assert bad.read_bytes() == data[: int(len(data) * keep)]  # loading never writes


def test_bit_flip_in_array_data_is_detected(tmp_path):
    marker = np.random.default_rng(7).normal(size=200)  # 1600 bytes: stored uncompressed
    _, data = saved_bytes(tmp_path, Project(config={}, model_state={"w": marker}))
    offset = data.find(marker.tobytes())
    assert offset > 0
    flipped = bytearray(data)
    flipped[offset + 801] ^= 0x10
    bad = tmp_path / "flipped.h5"
    bad.write_bytes(bytes(flipped))
    with pytest.raises(ProjectFileError, match="checksum") as info:
        load_project(bad)
    assert "flipped.h5" in str(info.value)


def test_random_bit_flips_either_load_exactly_or_raise(tmp_path):
    project = full_project(np.random.default_rng(8))
    _, data = saved_bytes(tmp_path, project)
    pick = random.Random(9)
    bad = tmp_path / "fuzz.h5"
    outcomes = {"loaded": 0, "refused": 0}
    for _ in range(60):
        flipped = bytearray(data)
        flipped[pick.randrange(len(data))] ^= 1 << pick.randrange(8)
        bad.write_bytes(bytes(flipped))
        try:
            loaded = load_project(bad)
        except ProjectFileError:
            outcomes["refused"] += 1
            continue
        outcomes["loaded"] += 1
        assert_same(project.model_state, loaded.model_state, "model_state")
        assert_same_dataset(project.dataset, loaded.dataset)
    assert outcomes["refused"] > 0


def test_foreign_and_non_project_files_are_refused(tmp_path):
    h5py = pytest.importorskip("h5py")
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["data"] = np.arange(10)
    text = tmp_path / "notes.h5"
    text.write_text("not hdf5 at all\n" * 20)
    empty = tmp_path / "empty.h5"
    empty.write_bytes(b"")
    cases = {
        foreign: "not a DPSOM Studio project",
        text: "not an HDF5 file",
        empty: "not an HDF5 file",
        tmp_path / "missing.h5": "no such project file",
        tmp_path: "folder",
    }
    for path, message in cases.items():
        for reader in (load_project, project_summary):
            with pytest.raises(ProjectFileError, match=message) as info:
                reader(path)
            assert path.name in str(info.value)
    assert foreign.stat().st_size > 0 and text.read_text().startswith("not hdf5")


def test_a_newer_format_asks_for_an_update(tmp_path):
    h5py = pytest.importorskip("h5py")
    path, _ = saved_bytes(tmp_path, Project(config={}))
    with h5py.File(path, "r+") as f:
        f.attrs["schema_version"] = 2
    for reader in (load_project, project_summary):
        with pytest.raises(ProjectFileError,
                           match=r"created by a newer DPSOM Studio \(format 2\); update the app"):
            reader(path)


def test_missing_checksum_is_refused(tmp_path):
    h5py = pytest.importorskip("h5py")
    path, _ = saved_bytes(tmp_path, Project(config={}))
    with h5py.File(path, "r+") as f:
        del f.attrs["content_sha256"]
    with pytest.raises(ProjectFileError, match="checksum"):
        load_project(path)


# ------------------------------------------------------------------------------ summary
def test_summary_reads_settings_and_sizes(tmp_path):
    project = full_project(np.random.default_rng(10))
    save_project(tmp_path / "p.h5", project)
    info = project_summary(tmp_path / "p.h5")
    assert info["format"] == "dpsom-studio-project" and info["schema_version"] == 1
    assert info["app_version"] == core.__version__ and info["created"] == project.created
    assert info["config"] == json.loads(json.dumps(project.config))
    assert info["data"] == {"kind": "series", "shape": (5, 6, 3), "n_features": 3, "source": "demo:icu",
                            "labels": ["died", "state/now"]}
    assert info["trained"] and info["has_train_state"]
    assert info["history_rows"] == 4
    assert info["assignments"] == ["bmu", "proba", "next_node_pred"]
    assert info["libraries"]["numpy"] == np.__version__
    assert info["file_size"] == (tmp_path / "p.h5").stat().st_size


# ------------------------------------------------------------------------------ fixture
def test_v1_fixture_still_loads():
    assert FIXTURE.stat().st_size < 200_000
    p = load_project(FIXTURE)
    assert p.created == "2026-11-28T12:00:00+00:00"
    assert p.config["model"] == "tdpsom"
    assert p.config["grid"] == {"height": 3, "width": 3, "topology": "rect", "toroidal": True}

    ds = p.dataset
    expected = (np.arange(24, dtype=np.float32) / 4).reshape(3, 4, 2)
    real = ds.step_mask
    assert ds.values.dtype == np.float32 and ds.values.shape == (3, 4, 2)
    assert np.isnan(ds.values[0, 0, 1]) and not ds.mask[0, 0, 1]
    assert np.array_equal(ds.values[real][1:], expected[real][1:])
    assert ds.lengths.tolist() == [4, 3, 2] and ds.lengths.dtype == np.int64
    assert ds.ids.dtype == object and ds.ids.tolist() == ["p1", "p2", "p3"]
    assert ds.times[0].tolist() == [0.0, 1.0, 2.0, 3.0] and np.isnan(ds.times[2, 3])
    assert ds.feature_names == ["hr", "sbp"] and ds.units == ["bpm", "mmHg"]
    assert (ds.id_col, ds.time_col, ds.time_unit, ds.source) == ("patient", "hour", "h", "demo:fixture")
    assert ds.warnings == ["1 row without a patient id was dropped"]
    assert ds.labels["died"][1].tolist() == [1.0] * 4 and np.isnan(ds.labels["died"][2]).all()
    assert ds.labels["ward"].dtype == object and ds.labels["ward"][1].tolist() == ["icu", "icu", "icu", ""]

    ms = p.model_state
    assert_same(ms["encoder.layers.0.weight"], np.arange(6, dtype=np.float32).reshape(2, 3))
    assert_same(ms["encoder.layers.0.bias"], np.array([0.5, -0.5]))
    assert_same(ms["som.prototypes"], np.linspace(-1, 1, 18, dtype=np.float32).reshape(9, 2))
    assert_same(ms["bn.num_batches_tracked"], np.array(7, dtype=np.int64))
    assert_same(ms["mask"], np.array([True, False, True]))

    ts = p.train_state
    assert ts["optimizer"]["state"]["0"]["step"] == 12
    assert_same(ts["optimizer"]["state"]["0"]["exp_avg"], np.full((2, 3), 0.25, dtype=np.float32))
    assert ts["optimizer"]["param_groups"] == [{"lr": 0.001, "betas": [0.9, 0.999], "params": [0]}]
    assert (ts["global_step"], ts["phase"], ts["epoch"], ts["best"]) == (12, "joint", 2, None)
    assert_same(ts["rng"]["torch"], np.arange(16, dtype=np.uint8))

    assert p.history[0] == {"phase": "pretrain", "epoch": 0, "step": 4, "total": 3.5, "elbo": 3.5}
    assert "som" not in p.history[0] and p.history[2]["som"] == 0.25
    assert all(type(row["epoch"]) is int for row in p.history)
    assert_same(p.assignments["bmu"], np.array([[0, 1, 4, 4], [8, 7, 7, -1], [2, 2, -1, -1]], dtype=np.int64))
    assert p.annotations["node_names"] == {"0": "stable", "8": "shock"}
    assert p.column_roles["patient"] == "id" and p.preprocessor["mean"] == [2.5, 3.0]
    assert p.warnings == ["training stopped early"] and p.metadata == {"seed": 2020, "device": "cpu"}
    assert p.data_ref is None


def test_v1_fixture_matches_the_script_that_made_it():
    sys.path.insert(0, str(FIXTURE.parent))
    try:
        import make_v1_fixture
    finally:
        sys.path.remove(str(FIXTURE.parent))
    built, loaded = make_v1_fixture.build(), load_project(FIXTURE)
    assert_same_dataset(built.dataset, loaded.dataset)
    assert_same(built.model_state, loaded.model_state, "model_state")
    assert_same(built.train_state, loaded.train_state, "train_state")
    assert_same(built.history, loaded.history, "history")
