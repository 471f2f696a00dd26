"""Preprocessor: scaling round trips, forward-fill limits, padding kept out of statistics."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.data.dataset import Dataset
from core.data.preprocessing import SCALINGS, Preprocessor
from core.errors import InputError, NotFittedError

NAN = np.nan


def table(values, names=("a", "b")):
    v = np.asarray(values, dtype=np.float32)
    return Dataset(values=v, mask=~np.isnan(v), feature_names=list(names), units=["mmHg", "bpm"])


def series():
    """Two patients, 5 steps, 2 variables; patient 1 has 3 real steps."""
    v = np.full((2, 5, 2), NAN, dtype=np.float32)
    v[0, :, 0] = [1, NAN, NAN, NAN, 5]
    v[0, :, 1] = [10, 20, NAN, 40, 50]
    v[1, :3, 0] = [NAN, 2, NAN]
    v[1, :3, 1] = [30, NAN, NAN]
    return Dataset(values=v, mask=~np.isnan(v), feature_names=["x", "y"],
                   lengths=np.array([5, 3]), times=np.tile(np.arange(5.0), (2, 1)))


@pytest.mark.parametrize("scaling", SCALINGS)
def test_inverse_transform_round_trips_observed_values(scaling):
    rng = np.random.default_rng(0)
    v = rng.normal([80, 5], [15, 2], size=(50, 2)).astype(np.float32)
    v[rng.random(v.shape) < 0.2] = NAN
    ds = table(v)
    pre = Preprocessor(scaling=scaling).fit(ds)
    x, mask = pre.transform(ds)
    assert x.dtype == np.float32 and x.shape == v.shape and np.isfinite(x).all()
    np.testing.assert_array_equal(mask, ~np.isnan(v))
    back = pre.inverse_transform(x)
    np.testing.assert_allclose(back[mask], v[mask], rtol=1e-5, atol=1e-4)
    if scaling == "zscore":
        np.testing.assert_allclose(np.nanmean(x[mask].reshape(-1)), 0, atol=0.3)
        for j in range(2):
            np.testing.assert_allclose(x[mask[:, j], j].std(), 1, rtol=1e-4)
    if scaling == "minmax":
        for j in range(2):
            assert x[mask[:, j], j].min() == pytest.approx(0, abs=1e-6)
            assert x[mask[:, j], j].max() == pytest.approx(1, abs=1e-6)


def test_missing_table_cells_get_the_median():
    ds = table([[1, 10], [NAN, 20], [3, NAN], [100, 40]])
    pre = Preprocessor(scaling="none").fit(ds)
    x, mask = pre.transform(ds)
    assert x[1, 0] == 3 and x[2, 1] == 20      # medians of observed values
    assert not mask[1, 0] and not mask[2, 1]


def test_ffill_limits():
    ds = series()
    # x of patient 0 is [1, -, -, -, 5]; the median of observed x (1, 5, 2) is 2
    cases = {
        None: [1, 1, 1, 1, 5],      # unlimited
        2: [1, 1, 1, 2, 5],         # carried two steps, then the median
        0: [1, 2, 2, 2, 5],         # never carried
    }
    for limit, expected in cases.items():
        x, mask = Preprocessor(scaling="none", ffill_limit=limit).fit(ds).transform(ds)
        np.testing.assert_array_equal(x[0, :, 0], expected, err_msg=f"limit {limit}")
        np.testing.assert_array_equal(mask, ds.mask)
    # before a first observation, the median fills (patient 2, x at step 0)
    x, _ = Preprocessor(scaling="none").fit(ds).transform(ds)
    np.testing.assert_array_equal(x[1, :3, 0], [2, 2, 2])
    np.testing.assert_array_equal(x[1, :3, 1], [30, 30, 30])


def test_padding_is_zero_masked_and_never_in_statistics():
    ds = series()
    # garbage on padding steps, even wrongly marked as observed, must not change anything
    poisoned = Dataset(values=ds.values.copy(), mask=ds.mask.copy(), feature_names=["x", "y"],
                       lengths=ds.lengths, times=ds.times)
    poisoned.values[1, 3:, :] = 1e6
    poisoned.mask[1, 3:, :] = True
    a = Preprocessor().fit(ds)
    b = Preprocessor().fit(poisoned)
    np.testing.assert_allclose(a.center_, b.center_)
    np.testing.assert_allclose(a.scale_, b.scale_)
    np.testing.assert_allclose(a.median_, b.median_)
    x, mask = b.transform(poisoned)
    assert (x[1, 3:] == 0).all() and not mask[1, 3:].any()
    obs_y = np.array([10, 20, 40, 50, 30.0])
    assert a.center_[1] == pytest.approx(obs_y.mean())
    assert a.scale_[1] == pytest.approx(obs_y.std())


def test_constant_and_unobserved_columns_do_not_divide_by_zero():
    ds = table([[5, NAN], [5, NAN], [5, NAN]])
    for scaling in SCALINGS:
        pre = Preprocessor(scaling=scaling).fit(ds)
        x, _ = pre.transform(ds)
        assert np.isfinite(x).all(), scaling
        assert (pre.scale_ > 0).all()
        np.testing.assert_allclose(pre.inverse_transform(x)[:, 0], 5)


def test_clipping_counts_and_bounds():
    v = np.array([[float(i), 1.0] for i in range(101)], dtype=np.float32)
    v[100, 0] = 1000
    ds = table(v)
    pre = Preprocessor(scaling="none", clip_quantiles=(0.0, 0.95)).fit(ds)
    x, _ = pre.transform(ds)
    assert x[:, 0].max() == pytest.approx(pre.clip_high_[0])
    assert pre.clip_high_[0] == pytest.approx(np.quantile(v[:, 0], 0.95))
    report = pre.report(ds)
    assert int(report.loc[0, "clipped"]) == int((v[:, 0] > pre.clip_high_[0]).sum())
    assert int(report.loc[1, "clipped"]) == 0


def test_report_columns_and_shares():
    ds = series()
    pre = Preprocessor(ffill_limit=1).fit(ds)
    report = pre.report(ds)
    assert list(report.columns) == ["name", "unit", "missing_share", "min", "max", "mean",
                                    "ffill_share", "imputed_share", "clipped"]
    x = report.iloc[0]
    # 8 real steps; x observed at 3 of them
    assert x["missing_share"] == pytest.approx(5 / 8)
    assert (x["min"], x["max"], x["mean"]) == (1, 5, pytest.approx(8 / 3))
    # carried one step: patient 0 step 1, patient 1 step 2
    assert x["ffill_share"] == pytest.approx(2 / 8)
    assert x["imputed_share"] == pytest.approx(3 / 8)


def test_to_dict_is_plain_json_and_restores_the_same_transform():
    ds = series()
    pre = Preprocessor(scaling="robust", clip_quantiles=(0.05, 0.95), ffill_limit=3).fit(ds)
    text = json.dumps(pre.to_dict(), allow_nan=False)
    again = Preprocessor.from_dict(json.loads(text))
    a, _ = pre.transform(ds)
    b, _ = again.transform(ds)
    np.testing.assert_array_equal(a, b)
    unclipped = Preprocessor().fit(ds)
    restored = Preprocessor.from_dict(json.loads(json.dumps(unclipped.to_dict(), allow_nan=False)))
    assert np.isinf(restored.clip_high_).all()
    assert Preprocessor.from_dict(Preprocessor(scaling="minmax").to_dict()).scaling == "minmax"


def test_feature_order_and_mismatch():
    ds = table([[1, 10], [2, 20], [3, 30]])
    pre = Preprocessor(scaling="none").fit(ds)
    swapped = table([[10, 1], [20, 2], [30, 3]], names=("b", "a"))
    x, _ = pre.transform(swapped)
    np.testing.assert_array_equal(x, swapped.values)
    with pytest.raises(InputError, match="missing 'b'.*unexpected 'c'"):
        pre.transform(table([[1, 2]], names=("a", "c")))
    with pytest.raises(InputError, match="expected 2 features"):
        pre.inverse_transform(np.zeros((4, 3)))


def test_errors_before_fit_and_bad_parameters():
    with pytest.raises(NotFittedError):
        Preprocessor().transform(table([[1, 2]]))
    ds = table([[1, 2], [3, 4]])
    for kwargs in ({"scaling": "log"}, {"clip_quantiles": (0.9, 0.1)}, {"ffill_limit": -1},
                   {"impute": "mean"}):
        with pytest.raises(InputError):
            Preprocessor(**kwargs).fit(ds)
    with pytest.raises(InputError, match="not a saved Preprocessor"):
        Preprocessor.from_dict({"scaling": "zscore"})
