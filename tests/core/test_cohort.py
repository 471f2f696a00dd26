"""Cohort files: writing, checking, reading in shards and blocks, and bounded memory."""

from __future__ import annotations

import gc
import hashlib
import os
import tracemalloc

import h5py
import numpy as np
import pytest
import torch

from core.io.cohort_h5 import (Cohort, CohortWriter, cohort_from_dataset, is_cohort_file,
                              write_cohort)
from core.data.dataset import Dataset
from core.data.preprocessing import Preprocessor
from core.errors import InputError


# ------------------------------------------------------------------------------ data
def _table(n=57, seed=0) -> Dataset:
    rng = np.random.default_rng(seed)
    values = (rng.normal(size=(n, 3)) * [1.0, 20.0, 0.1] + [0.0, 80.0, 7.4]).astype(np.float32)
    mask = rng.random((n, 3)) < 0.75
    values[~mask] = np.nan
    return Dataset(values=values, mask=mask, feature_names=["lactate", "hr", "ph"], units=["mmol/l", "1/min", ""],
                   ids=np.array([f"R{i}" for i in range(n)]),
                   labels={"died": (rng.random(n) < 0.3).astype(np.float64),
                           "ward": rng.choice(["icu", "er", ""], n)})


def _series(n=23, t=7, seed=1) -> Dataset:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, t + 1, n)
    real = np.arange(t)[None, :] < lengths[:, None]
    values = rng.normal(50.0, 10.0, (n, t, 4)).astype(np.float32)
    mask = (rng.random((n, t, 4)) < 0.6) & real[:, :, None]
    values[~mask] = np.nan
    times = np.where(real, np.arange(t, dtype=np.float64)[None, :], np.nan)
    return Dataset(values=values, mask=mask, feature_names=["a", "b", "c", "d"], units=["u1", "u2", "u3", "u4"],
                   ids=np.array([f"P{i:03d}" for i in range(n)]), times=times, lengths=lengths,
                   labels={"severity": np.where(real, rng.random((n, t)), np.nan),
                           "state/phase": np.where(real, rng.choice(["calm", "storm"], (n, t)), "")},
                   time_unit="h")


def _model_table(path, n=200, d=5, seed=2, **kw):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    m = rng.random((n, d)) < 0.7
    write_cohort(path, x, m, feature_names=[f"f{j}" for j in range(d)], **kw)
    return x, m


def _model_series(path, n=60, t=6, d=3, seed=3):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, t + 1, n)
    real = np.arange(t)[None, :] < lengths[:, None]
    x = np.where(real[:, :, None], rng.normal(size=(n, t, d)), 0.0).astype(np.float32)
    m = (rng.random((n, t, d)) < 0.7) & real[:, :, None]
    write_cohort(path, x, m, lengths, feature_names=["a", "b", "c"])
    return x, m, real


# ----------------------------------------------------------------------- round trips
def test_table_round_trip_through_preprocessing(tmp_path):
    ds = _table()
    pre = Preprocessor(scaling="zscore").fit(ds)
    path = cohort_from_dataset(ds, pre, tmp_path / "t.h5")
    assert is_cohort_file(path)
    with Cohort(path) as c:
        assert (c.temporal, c.n_samples, c.n_features, c.n_steps) == (False, 57, 3, None)
        assert c.feature_names == ds.feature_names and c.lengths is None
        assert c.preprocessing == pre.to_dict()
        assert list(c.ids) == list(ds.ids)
        x_mem, m_mem = pre.transform(ds)
        x_file = np.concatenate([x for _, x, _, _ in c.iter_chunks(rows=10)])
        np.testing.assert_array_equal(x_file, x_mem)
        back = c.to_dataset()
    assert back.units == ds.units
    np.testing.assert_array_equal(back.mask, ds.mask)
    np.testing.assert_allclose(back.values[ds.mask], ds.values[ds.mask], rtol=1e-5, atol=1e-5)
    assert np.isnan(back.values[~ds.mask]).all()
    np.testing.assert_array_equal(back.labels["died"], ds.labels["died"])
    assert list(back.labels["ward"]) == list(ds.labels["ward"])


def test_series_round_trip_with_reordered_features(tmp_path):
    ds = _series()
    pre = Preprocessor(scaling="robust", ffill_limit=2).fit(ds)
    # Same features in another column order: the stored preprocessing must be matched by name.
    order = [2, 0, 3, 1]
    shuffled = Dataset(values=ds.values[..., order], mask=ds.mask[..., order],
                       feature_names=[ds.feature_names[j] for j in order], units=[ds.units[j] for j in order],
                       ids=ds.ids, times=ds.times, lengths=ds.lengths, labels=ds.labels, time_unit="h")
    path = cohort_from_dataset(shuffled, pre, tmp_path / "s.h5")
    with Cohort(path) as c:
        assert (c.temporal, c.n_samples, c.n_steps, c.n_features) == (True, 23, 7, 4)
        np.testing.assert_array_equal(c.lengths, ds.lengths)
        back = c.to_dataset()
    assert back.feature_names == shuffled.feature_names and back.units == shuffled.units
    np.testing.assert_array_equal(back.mask, shuffled.mask)
    obs = shuffled.mask
    np.testing.assert_allclose(back.values[obs], shuffled.values[obs], rtol=1e-5, atol=1e-4)
    assert np.isnan(back.values[~obs]).all()  # unobserved cells and padding
    np.testing.assert_array_equal(back.times, ds.times)
    assert back.time_unit == "h"
    np.testing.assert_array_equal(back.labels["severity"], ds.labels["severity"])
    assert back.labels["state/phase"].tolist() == ds.labels["state/phase"].tolist()
    assert list(back.ids) == list(ds.ids)


def test_model_space_cohort_without_preprocessing_returns_values_as_stored(tmp_path):
    x, m = _model_table(tmp_path / "m.h5")
    with Cohort(tmp_path / "m.h5") as c:
        assert c.preprocessing == {} and c.ids is None
        back = c.to_dataset()
    np.testing.assert_array_equal(back.values[m], x[m])
    assert np.isnan(back.values[~m]).all()


def test_writer_streams_pieces_and_fixes_unobserved_and_padding(tmp_path):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(9, 3, 2)).astype(np.float32)
    lengths = np.array([3, 1, 2, 3, 3, 1, 2, 2, 3])
    real = np.arange(3)[None, :] < lengths[:, None]
    m = (rng.random(x.shape) < 0.5) & real[:, :, None]
    x[~m & real[:, :, None]] = np.nan  # unobserved cells without a value
    with CohortWriter(tmp_path / "w.h5", n_features=2, feature_names=["a", "b"], temporal=True, n_steps=3) as w:
        for a in range(0, 9, 4):
            w.append(x[a:a + 4], m[a:a + 4], lengths[a:a + 4], ids=np.arange(a, min(a + 4, 9)))
    with Cohort(tmp_path / "w.h5") as c:
        stored = np.concatenate([xc for _, xc, _, _ in c.iter_chunks(rows=2)])
        assert list(c.ids) == [str(i) for i in range(9)]
    np.testing.assert_array_equal(stored[m], x[m])
    assert (stored[~m] == 0).all()


# ------------------------------------------------------------------------- shard reads
@pytest.mark.parametrize("block_rows", [1, 7, 64, None])
def test_table_rows_equal_in_memory_indexing(tmp_path, block_rows):
    x, m = _model_table(tmp_path / "t.h5", n=200)
    with Cohort(tmp_path / "t.h5") as c:
        shard = c.shard(0, 1, block_rows=block_rows)
    gen = torch.Generator().manual_seed(0)
    for size in (1, 5, 33, 200):
        for _ in range(3):
            idx = torch.randint(0, 200, (size,), generator=gen)  # any order, repeats allowed
            xb, mb, sm = shard.rows(idx)
            assert sm is None and xb.dtype == torch.float32 and mb.dtype == torch.bool
            np.testing.assert_array_equal(xb.numpy(), x[idx.numpy()])
            np.testing.assert_array_equal(mb.numpy(), m[idx.numpy()])
    shard.close()


def test_series_rows_are_the_real_steps_of_the_patients(tmp_path):
    x, m, real = _model_series(tmp_path / "s.h5")
    X, M, SM = torch.from_numpy(x), torch.from_numpy(m), torch.from_numpy(real)
    with Cohort(tmp_path / "s.h5") as c:
        for rank, world in ((0, 1), (1, 3)):
            shard = c.shard(rank, world, block_rows=8)
            lo = shard.start
            assert torch.equal(shard.step_mask, SM[lo:shard.stop])
            gen = torch.Generator().manual_seed(rank)
            for _ in range(5):
                idx = torch.randint(0, shard.n_samples, (9,), generator=gen)
                xb, mb, sm = shard.rows(idx)
                glob = idx + lo
                assert torch.equal(sm, SM[glob])
                assert torch.equal(xb, X[glob][SM[glob]])
                assert torch.equal(mb, M[glob][SM[glob]])
                assert xb.shape == (int(SM[glob].sum()), 3)
            shard.close()


def test_rows_in_epoch_order_read_every_block_once(tmp_path):
    x, m = _model_table(tmp_path / "t.h5", n=1000, d=4)
    with Cohort(tmp_path / "t.h5") as c:
        shard = c.shard(0, 1, block_rows=50)
    order = shard.epoch_order(torch.Generator().manual_seed(3), True)
    got = torch.cat([shard.rows(b)[0] for b in order.split(32)])
    np.testing.assert_array_equal(got.numpy(), x[order.numpy()])
    assert shard._reader.blocks_read == shard.n_blocks == 20


def test_epoch_order_is_a_local_deterministic_permutation(tmp_path):
    _model_table(tmp_path / "t.h5", n=1000)
    with Cohort(tmp_path / "t.h5") as c:
        shard = c.shard(1, 2, block_rows=64)  # rows 500..999
    bounds = shard.block_bounds
    # Cuts at multiples of 64; the 12 rows before 512 (under half a block) join the next
    # block, the 40 rows after 960 stay a block of their own.
    np.testing.assert_array_equal(bounds + 500, [500, 576, 640, 704, 768, 832, 896, 960, 1000])
    order = shard.epoch_order(torch.Generator().manual_seed(7), True)
    assert order.dtype == torch.int64
    assert sorted(order.tolist()) == list(range(500))
    assert not torch.equal(order, torch.arange(500))
    assert torch.equal(order, shard.epoch_order(torch.Generator().manual_seed(7), True))
    assert not torch.equal(order, shard.epoch_order(torch.Generator().manual_seed(8), True))
    assert torch.equal(shard.epoch_order(torch.Generator().manual_seed(7), False), torch.arange(500))
    blocks = np.searchsorted(bounds, order.numpy(), side="right") - 1
    # Every block is one contiguous run of the order ...
    assert len(np.flatnonzero(np.diff(blocks))) == shard.n_blocks - 1
    # ... so a window no longer than the shortest block touches at most two blocks.
    for w in (16, int(np.diff(bounds).min())):
        for a in range(0, 500 - w + 1):
            assert len(set(blocks[a:a + w])) <= 2
    # Rows are shuffled inside blocks too.
    inner = order.numpy()[blocks == blocks[0]]
    assert not np.array_equal(inner, np.sort(inner))


@pytest.mark.parametrize("n, world", [(0, 1), (1, 3), (10, 1), (10, 3), (11, 4), (100, 7), (5, 5)])
def test_shards_partition_the_rows(tmp_path, n, world):
    x, _ = _model_table(tmp_path / "t.h5", n=n, d=2)
    with Cohort(tmp_path / "t.h5") as c:
        shards = [c.shard(r, world) for r in range(world)]
    sizes = [s.n_samples for s in shards]
    assert sum(sizes) == n and max(sizes) - min(sizes) <= 1
    assert [s.start for s in shards] == [0] + [s.stop for s in shards[:-1]]
    assert shards[-1].stop == n
    got = [s.rows(torch.arange(s.n_samples))[0].numpy() for s in shards]
    np.testing.assert_array_equal(np.concatenate(got), x)
    for s in shards:
        s.close()


def test_shard_rejects_bad_rank_and_world(tmp_path):
    _model_table(tmp_path / "t.h5", n=10)
    with Cohort(tmp_path / "t.h5") as c:
        for rank, world in ((-1, 2), (2, 2), (0, 0), (0, -1), (0.5, 2), (0, 1.5)):
            with pytest.raises(ValueError):
                c.shard(rank, world)


# -------------------------------------------------------------------------- stores
def test_store_round_trip_and_cleanup(tmp_path):
    _model_series(tmp_path / "s.h5", n=40, t=6)
    with Cohort(tmp_path / "s.h5") as c:
        shard = c.shard(1, 2, block_rows=8)
    store = shard.new_store((6, 5), directory=tmp_path / ".." / tmp_path.name)
    assert store.shape == (20, 6, 5) and len(store) == 20
    full = torch.rand(20, 6, 5, generator=torch.Generator().manual_seed(0))
    store[0:7] = full[0:7]
    idx = torch.tensor([6, 0, 3])
    assert torch.equal(store[idx], full[idx])  # also caches the first block
    assert torch.equal(store[torch.tensor([10, 19])], torch.zeros(2, 6, 5))  # never written
    store[7:20] = full[7:20]
    store[0:2] = full[0:2] * 2  # overwrite a cached block: reads must see the new values
    expect = full.clone()
    expect[0:2] *= 2
    order = shard.epoch_order(torch.Generator().manual_seed(1), True)
    assert torch.equal(torch.cat([store[b] for b in order.split(3)]), expect[order])
    assert torch.equal(store[2:9], expect[2:9])
    with pytest.raises(TypeError):
        store[torch.tensor([1, 2])] = full[[1, 2]]
    with pytest.raises(ValueError):
        store[0:3] = full[0:2]
    files = list(tmp_path.glob("dpsom-store-*.h5"))
    assert len(files) == 1
    store.close()
    assert not files[0].exists()
    lost = shard.new_store((2,), torch.float64, directory=tmp_path)
    lost[0:20] = torch.ones(20, 2, dtype=torch.float64)
    assert lost[torch.tensor([19])].dtype == torch.float64
    path = next(tmp_path.glob("dpsom-store-*.h5"))
    del lost
    gc.collect()
    assert not path.exists()
    shard.close()


# ------------------------------------------------------------------------ atomicity
def test_failed_write_leaves_no_file_and_keeps_the_old_one(tmp_path):
    target = tmp_path / "c.h5"
    x = np.zeros((4, 2), np.float32)
    with pytest.raises(RuntimeError):
        with CohortWriter(target, n_features=2, feature_names=["a", "b"]) as w:
            w.append(x, x > 0)
            raise RuntimeError("stopped")
    assert os.listdir(tmp_path) == []
    write_cohort(target, x, x > 0, feature_names=["a", "b"])
    before = target.read_bytes()
    with pytest.raises(InputError, match="shape"):
        with CohortWriter(target, n_features=2, feature_names=["a", "b"]) as w:
            w.append(np.ones((3, 2)), np.ones((3, 2), bool))
            w.append(np.ones((3, 3)), np.ones((3, 3), bool))
    assert os.listdir(tmp_path) == ["c.h5"] and target.read_bytes() == before


@pytest.mark.parametrize("case, message", [
    ("observed_nan", "row index 4, feature 'b'"),
    ("length_zero", "patient index 1 has length 0"),
    ("late_value", "patient index 2 has observed values after"),
    ("ids_later", "same on every append"),
])
def test_writer_refuses_bad_pieces(tmp_path, case, message):
    x = np.zeros((5, 3, 2), np.float32)
    m = np.zeros(x.shape, bool)
    lengths = np.full(5, 3)
    with pytest.raises(InputError, match=message) as err:
        with CohortWriter(tmp_path / "c.h5", n_features=2, feature_names=["a", "b"], temporal=True,
                          n_steps=3) as w:
            if case == "observed_nan":
                w.append(x[:4], m[:4], lengths[:4])
                x[4, 1, 1], m[4, 1, 1] = np.nan, True
                w.append(x[4:], m[4:], lengths[4:])
            elif case == "length_zero":
                w.append(x, m, [3, 0, 1, 1, 1])
            elif case == "late_value":
                m[2, 2, 0] = True
                w.append(x, m, [3, 3, 2, 1, 1])
            else:
                w.append(x[:2], m[:2], lengths[:2])
                w.append(x[2:], m[2:], lengths[2:], ids=["a", "b", "c"])
    assert str(tmp_path / "c.h5") in str(err.value)
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------------------------- bad files
def _edit(path, fn):
    with h5py.File(path, "r+") as f:
        fn(f)


def _replace(f, name, data):
    del f[name]
    f.create_dataset(name, data=data)


BAD_FILES = {
    "missing": (None, "no such cohort file"),
    "folder": (None, "is a folder"),
    "text": (None, "not an HDF5 file"),
    "project": (lambda f: f.attrs.__setitem__("format", "dpsom-studio-project"), "a DPSOM Studio project"),
    "foreign": (lambda f: f.attrs.__delitem__("format"), "not a cohort file"),
    "newer": (lambda f: f.attrs.__setitem__("version", 2), "newer version"),
    "no_x": (lambda f: f.__delitem__("x"), "'x' is missing"),
    "mask_shape": (lambda f: _replace(f, "mask", np.zeros((30, 6, 2), bool)), "'mask' has shape"),
    "lengths_shape": (lambda f: _replace(f, "lengths", np.ones(29, np.int64)), "'lengths' has shape"),
    "lengths_range": (lambda f: f["lengths"].__setitem__(3, 7), "patient index 3 has length 7"),
    "names": (lambda f: f.attrs.__setitem__("feature_names", '["a"]'), "1 feature names for 3"),
    "ids_shape": (lambda f: f.create_dataset("ids", data=np.array([b"a"])), "'ids' has shape"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_files_raise_input_error_naming_the_file(tmp_path, case):
    edit, message = BAD_FILES[case]
    path = tmp_path / "bad.h5"
    if case == "folder":
        path.mkdir()
    elif case == "text":
        path.write_text("lactate,hr\n1,2\n")
    elif case != "missing":
        _model_series(path, n=30, t=6)
        _edit(path, edit)
    with pytest.raises(InputError, match=message) as err:
        Cohort(path)
    assert str(path) in str(err.value)
    assert not is_cohort_file(path) or case not in ("missing", "folder", "text", "project", "foreign")


def test_hash_is_of_the_file_bytes(tmp_path):
    _model_table(tmp_path / "a.h5", n=30, seed=1)
    _model_table(tmp_path / "b.h5", n=30, seed=2)
    with Cohort(tmp_path / "a.h5") as a, Cohort(tmp_path / "b.h5") as b:
        assert a.content_hash() == hashlib.sha256((tmp_path / "a.h5").read_bytes()).hexdigest()
        assert a.content_hash() != b.content_hash()


# ---------------------------------------------------------------------------- memory
def test_an_epoch_reads_each_block_once_and_holds_few_blocks(tmp_path):
    n, d, block = 40_000, 16, 2000
    x, m = _model_table(tmp_path / "big.h5", n=n, d=d)
    block_bytes = block * d * (4 + 1)  # values + mask
    with Cohort(tmp_path / "big.h5") as c:
        shard = c.shard(0, 1, block_rows=block)
    order = shard.epoch_order(torch.Generator().manual_seed(0), True)
    batches = order.split(256)
    checksum = 0.0
    gc.collect()
    tracemalloc.start()
    try:
        for b in batches:
            xb, mb, _ = shard.rows(b)
            checksum += float(xb[mb].sum())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert checksum == pytest.approx(float(x[m].sum()), rel=1e-4)
    assert shard.bytes_read == n * d * 5  # every row read exactly once
    # Two cached blocks, the one being read and the batch; the cohort is 20 blocks.
    assert peak < 4 * block_bytes <= n * d * 5 / 5
    # The measure sees a read of everything at once, so the bound above is meaningful.
    tracemalloc.start()
    try:
        shard.rows(torch.arange(n))
        _, peak_all = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak_all > n * d * 5
    shard.close()
