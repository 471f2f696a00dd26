"""scikit-learn-style conformance of DPSOM and TDPSOM, and the training loop's guarantees."""

from unittest.mock import Mock

import numpy as np
import pytest
import torch

from core.errors import InputError, NotFittedError, TrainingDiverged
from core.model import DPSOM, TDPSOM
from core.progress import PHASES

TINY = dict(som_shape=(3, 3), latent_dim=4, batch_size=32, random_state=3)


def _table(n=120, d=6, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


def _series(n=16, t=8, d=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, t, d)).astype(np.float32)
    lengths = rng.integers(3, t + 1, size=n)
    for i, length in enumerate(lengths):
        x[i, length:] = np.nan
    return x, lengths


def _tiny_dpsom(**kw):
    params = dict(TINY, max_steps=25)
    params.update(kw)
    return DPSOM(**params)


def _tiny_tdpsom(**kw):
    params = dict(TINY, batch_size=8, max_steps=20)
    params.update(kw)
    return TDPSOM(**params)


def test_quick_tdpsom_batch_follows_the_cohort_unless_given():
    x, lengths = _series(n=400, t=4, d=3)
    fit = dict(lengths=lengths)
    auto = TDPSOM(som_shape=(3, 3), latent_dim=4, max_steps=1, random_state=0).fit(x, **fit)
    assert auto.batch_size is None and auto.config_.train.batch_size == 20  # 400 patients / 20 steps
    assert auto.resolved_config().train.batch_size == 16  # the preset's, before seeing data
    given = TDPSOM(som_shape=(3, 3), latent_dim=4, max_steps=1, batch_size=16, random_state=0).fit(x, **fit)
    assert given.config_.train.batch_size == 16
    paper = TDPSOM(preset="paper", som_shape=(3, 3), latent_dim=4, max_steps=1, random_state=0)
    assert paper.fit(x[:40], lengths=lengths[:40]).config_.train.batch_size == paper.resolved_config().train.batch_size


def test_init_stores_arguments_only():
    est = DPSOM(som_shape=(0, -4), preset="nonsense")
    assert est.som_shape == (0, -4) and not est.is_fitted
    with pytest.raises(ValueError):
        est.fit(_table())


def test_fit_returns_self_and_sets_fitted_attributes():
    X = _table()
    est = _tiny_dpsom()
    assert est.fit(X) is est
    assert est.prototypes_.shape == (9, 4)
    assert est.n_iter_ == 25 and est.n_features_in_ == 6
    assert est.grid_.shape == (3, 3)
    assert est.predict(X).shape == (120,)
    proba = est.predict_proba(X)
    assert proba.shape == (120, 9) and np.allclose(proba.sum(1), 1, atol=1e-5)
    assert est.transform(X).shape == (120, 4)
    assert np.isfinite(est.score(X))


def test_predict_is_argmax_distance_and_consistent_with_proba():
    X = _table()
    est = _tiny_dpsom().fit(X)
    z = est.transform(X)
    d = ((z[:, None, :] - est.prototypes_[None]) ** 2).sum(-1)
    assert np.array_equal(est.predict(X), d.argmin(1))
    # The Student-t kernel is monotone in distance, so the BMU is the most probable node.
    assert np.array_equal(est.predict(X), est.predict_proba(X).argmax(1))


def test_same_seed_same_fit_different_seed_different_fit():
    X = _table()
    a, b = _tiny_dpsom().fit(X), _tiny_dpsom().fit(X)
    c = _tiny_dpsom(random_state=4).fit(X)
    assert np.array_equal(a.prototypes_, b.prototypes_)
    assert a.history_ == b.history_
    assert not np.array_equal(a.prototypes_, c.prototypes_)


@pytest.mark.parametrize("method", ["predict", "predict_proba", "transform", "score", "decoded_prototypes"])
def test_not_fitted_error(method):
    est = DPSOM()
    with pytest.raises(NotFittedError, match="not fitted"):
        getattr(est, method)(*([] if method == "decoded_prototypes" else [_table()]))


def test_wrong_number_of_features_raises():
    est = _tiny_dpsom().fit(_table())
    with pytest.raises(InputError, match="X has 5 features, but DPSOM was fitted with 6"):
        est.predict(_table(d=5))


def test_any_number_of_features_and_missing_values():
    X = _table(d=1)
    est = _tiny_dpsom().fit(X)
    assert est.predict(X).shape == (120,)
    X = _table(d=40)
    X[::3, 5] = np.nan
    est = _tiny_dpsom().fit(X)
    assert est.likelihood_ == "gaussian"
    assert np.isfinite(est.prototypes_).all()


def test_bernoulli_chosen_for_unit_interval_data():
    X = np.random.default_rng(0).random((80, 10)).astype(np.float32)
    assert _tiny_dpsom().fit(X).likelihood_ == "bernoulli"


def test_infinite_values_and_bad_shapes_are_refused():
    X = _table()
    X[4, 2] = np.inf
    with pytest.raises(InputError, match="infinite"):
        _tiny_dpsom().fit(X)
    with pytest.raises(InputError, match="samples, features"):
        _tiny_dpsom().fit(np.zeros((3, 4, 5)))


def test_callback_receives_every_step_and_can_stop():
    cb = Mock(return_value=None)
    _tiny_dpsom().fit(_table(), callback=cb)
    assert cb.call_count == 25
    steps = [c.args[0].step for c in cb.call_args_list]
    assert steps == list(range(1, 26))
    stopper = Mock(side_effect=lambda p: p.step < 7)
    est = _tiny_dpsom().fit(_table(), callback=stopper)
    assert est.n_iter_ == 7 and stopper.call_count == 7


def test_progress_reports_named_terms_in_phase_order():
    est = DPSOM(**dict(TINY, batch_size=60))
    cfg = est.resolved_config()
    cfg = cfg.replace(**{"train.epochs_pretrain": 2, "train.som_init_epochs": (1,), "train.som_init_lrs": (0.1,),
                         "train.epochs_joint": 2})
    est.set_params(config=cfg)
    reports = list(est.iter_fit(_table()))
    phases = [p.phase for p in reports]
    assert phases == ["pretrain"] * 4 + ["som_init"] * 2 + ["joint"] * 4
    assert list(dict.fromkeys(phases)) == [ph for ph in PHASES if ph in phases]
    assert set(reports[0].losses) == {"elbo", "total"}
    assert set(reports[5].losses) == {"init", "total"}
    assert set(reports[-1].losses) == {"elbo", "cah", "som", "total"}
    assert reports[-1].losses["total"] == pytest.approx(sum(v for k, v in reports[-1].losses.items() if k != "total"))
    assert reports[-1].fraction == 1.0 and reports[-1].prototypes is not None
    assert [p.end_of_epoch for p in reports].count(True) == 5
    assert len(est.history_) == 5 and est.history_[0]["phase"] == "pretrain"


def test_pretraining_weights_the_elbo_as_the_joint_phase_does():
    # Adam ignores one common scale of the loss, so the weights come out the same; its second
    # moments, which carry over into the joint phase, must hold the weighted gradients.
    X = _table()
    fits = {}
    for w in (1.0, 0.25):
        cfg = _tiny_dpsom().resolved_config().replace(**{"weights.vae": w})
        est = DPSOM(config=cfg, max_steps=6).fit(X)
        assert est.history_[-1]["phase"] == "pretrain"
        fits[w] = est
    full, quarter = fits[1.0], fits[0.25]
    assert quarter.history_[-1]["elbo"] == pytest.approx(0.25 * full.history_[-1]["elbo"], rel=1e-4)
    for a, b in zip(full.net_.encoder.parameters(), quarter.net_.encoder.parameters()):
        assert torch.allclose(a, b, atol=1e-5)
        va = full.trainer_.optimizer.state[a]["exp_avg_sq"]
        vb = quarter.trainer_.optimizer.state[b]["exp_avg_sq"]
        assert torch.allclose(vb, va / 16.0, rtol=1e-3, atol=1e-12)


def test_learning_rate_decays_with_global_step():
    cfg = _tiny_dpsom().resolved_config().replace(**{"train.decay_steps": 5})
    reports = list(DPSOM(config=cfg, max_steps=12).iter_fit(_table()))
    lrs = [p.lr for p in reports]
    assert lrs[0] == pytest.approx(cfg.train.lr_pretrain)
    assert lrs[5] == pytest.approx(cfg.train.lr_pretrain * cfg.train.decay_rate)
    assert lrs[10] == pytest.approx(cfg.train.lr_pretrain * cfg.train.decay_rate ** 2)


def test_nan_stops_training_and_keeps_last_good_state():
    X = _table()
    est = _tiny_dpsom(max_steps=None)
    gen = est.iter_fit(X)
    for _ in range(3):
        next(gen)
    before = {k: v.clone() for k, v in est.net_.state_dict().items()}
    # Poison the data the trainer reads: the next reconstruction term is not finite.
    est.trainer_.data.x[:] = torch.finfo(torch.float32).max
    with pytest.raises(TrainingDiverged) as info:
        next(gen)
    err = info.value
    assert err.phase == "pretrain" and err.term in ("elbo", "gradients")
    assert "pretrain" in str(err) and "What to try" in str(err)
    after = est.net_.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert est.n_iter_ == 3


def test_resume_equals_uninterrupted_run():
    X = _table()
    full = _tiny_dpsom(max_steps=None, n_epochs=3)
    full_cfg = full.resolved_config().replace(**{"train.epochs_pretrain": 3, "train.som_init_epochs": (2,),
                                                 "train.som_init_lrs": (0.1,)})
    full = DPSOM(config=full_cfg).fit(X)
    part = DPSOM(config=full_cfg)
    gen = part.iter_fit(X)
    for _ in range(11):  # stop in the middle of an epoch of the joint phase
        next(gen)
    gen.close()
    assert part.n_iter_ == 11
    for _ in part.iter_fit(X, resume=True):
        pass
    assert part.n_iter_ == full.n_iter_
    assert np.array_equal(part.prototypes_, full.prototypes_)
    assert part.history_ == full.history_


def test_trainer_state_round_trip_resumes_exactly():
    X = _table()
    cfg = _tiny_dpsom(max_steps=None, n_epochs=2).resolved_config().replace(
        **{"train.epochs_pretrain": 2, "train.som_init_epochs": (1,), "train.som_init_lrs": (0.1,)})
    ref = DPSOM(config=cfg).fit(X)
    a = DPSOM(config=cfg)
    gen = a.iter_fit(X)
    for _ in range(13):
        next(gen)
    gen.close()
    weights = {k: v.clone() for k, v in a.net_.state_dict().items()}
    state = a.trainer_.state_dict()
    b = DPSOM(config=cfg)
    b.iter_fit(X).close()  # builds the network without training
    b.net_.load_state_dict(weights)
    b.trainer_.load_state_dict(state)
    b.trainer_.history = list(a.history_)
    for _ in b.iter_fit(X, resume=True):
        pass
    assert np.array_equal(b.prototypes_, ref.prototypes_)


def test_deterministic_mode_repeats_on_cpu():
    X = _table()
    a = _tiny_dpsom(deterministic=True).fit(X)
    b = _tiny_dpsom(deterministic=True).fit(X)
    assert np.array_equal(a.predict(X), b.predict(X))
    assert not torch.are_deterministic_algorithms_enabled()


def test_unknown_device_is_refused_with_a_plain_message():
    with pytest.raises(ValueError, match="unknown device"):
        _tiny_dpsom(device="tpu").fit(_table())


# --------------------------------------------------------------------------- T-DPSOM

def test_tdpsom_shapes_and_padding_outputs():
    x, lengths = _series()
    est = _tiny_tdpsom().fit(x, lengths=lengths)
    bmu = est.predict(x, lengths=lengths)
    assert bmu.shape == (16, 8)
    pad = np.arange(8)[None] >= lengths[:, None]
    assert (bmu[pad] == -1).all() and (bmu[~pad] >= 0).all()
    proba = est.predict_proba(x, lengths=lengths)
    assert np.allclose(proba[~pad].sum(-1), 1, atol=1e-5) and (proba[pad] == 0).all()
    nxt = est.predict_next(x, lengths=lengths)
    assert ((nxt >= 0) == ~pad).all()
    f = est.forecast(x, 3, lengths=lengths, n_samples=2)
    assert f.latent.shape == (16, 3, 4) and f.nodes.shape == (16, 3) and f.features.shape == (16, 3, 4)
    assert f.samples.shape == (16, 2, 3, 4) and f.sample_nodes.shape == (16, 2, 3)


def test_tdpsom_lengths_inferred_from_observations():
    x, lengths = _series()
    est = _tiny_tdpsom().fit(x)
    assert np.array_equal((est.predict(x) >= 0).sum(1), lengths)


def test_appending_padding_changes_no_output_and_no_loss():
    x, lengths = _series()
    padded = np.concatenate([x, np.full((16, 5, 4), np.nan, np.float32)], axis=1)
    a = _tiny_tdpsom(max_steps=30)
    b = _tiny_tdpsom(max_steps=30)
    ra = [dict(p.losses) for p in a.iter_fit(x, lengths=lengths)]
    rb = [dict(p.losses) for p in b.iter_fit(padded, lengths=lengths)]
    assert len(ra) == len(rb)
    for la, lb in zip(ra, rb):
        assert la.keys() == lb.keys()
        for k in la:
            assert la[k] == pytest.approx(lb[k], rel=1e-4, abs=1e-5)
    assert np.allclose(a.prototypes_, b.prototypes_, atol=1e-5)
    assert np.array_equal(a.predict(x, lengths=lengths), b.predict(padded, lengths=lengths)[:, :8])
    fa, fb = a.forecast(x, 2, lengths=lengths), b.forecast(padded, 2, lengths=lengths)
    assert np.allclose(fa.latent, fb.latent, atol=1e-4)


def test_tdpsom_joint_phase_reports_every_term():
    x, lengths = _series()
    cfg = _tiny_tdpsom().resolved_config().replace(**{"train.epochs_pretrain": 1, "train.som_init_epochs": (1,),
                                                      "train.som_init_lrs": (0.1,), "train.epochs_joint": 1,
                                                      "train.epochs_pred": 1})
    reports = list(TDPSOM(config=cfg).iter_fit(x, lengths=lengths))
    joint = [p for p in reports if p.phase == "joint"]
    assert set(joint[0].losses) == {"elbo", "cah", "som", "smooth", "pred", "pred_step", "total"}
    # Two optimiser steps per joint batch: the full objective, then the prediction-only step.
    assert joint[1].step - joint[0].step == 2
    assert reports[-1].phase == "prediction" and set(reports[-1].losses) == {"pred", "total"}


def test_tdpsom_refuses_bad_lengths():
    x, _ = _series()
    with pytest.raises(InputError, match="lengths"):
        _tiny_tdpsom().fit(x, lengths=np.zeros(16, int))


def test_config_seed_is_used_unless_random_state_is_given():
    cfg = _tiny_dpsom().resolved_config().replace(**{"train.seed": 11})
    assert DPSOM(config=cfg).resolved_config().train.seed == 11
    assert DPSOM(config=cfg, random_state=4).resolved_config().train.seed == 4
    assert DPSOM().resolved_config().train.seed == 2020
