"""Smooth T-DPSOM trajectories: the jump and balance terms, and the decoded node paths."""

import math

import numpy as np
import pytest
import torch

from core import losses as L
from core.analysis.paths import grid_log_transitions, smoothed_paths
from core.config import make_config
from core.defaults import DataProfile, propose
from core.grid import SOMGrid
from core.model import TDPSOM

LINE = SOMGrid(1, 4, "rect", False)  # nodes 0-1-2-3 in a row: grid distance |k - l|


def test_jump_cost_is_free_on_the_node_and_its_neighbours():
    cost = L.jump_cost(torch.as_tensor(LINE.distances()))
    assert cost[0].tolist() == [0.0, 0.0, 1.0, 2.0]
    assert cost[2].tolist() == [1.0, 0.0, 0.0, 0.0]


def test_expected_jump_by_hand_and_padding_left_out():
    cost = L.jump_cost(torch.as_tensor(LINE.distances()))
    a = torch.tensor([[[0.5, 0.5, 0.0, 0.0],   # t0: half on node 0, half on node 1
                       [0.0, 0.0, 0.0, 1.0],   # t1: node 3 -> cost 0.5 * 2 + 0.5 * 1
                       [1.0, 0.0, 0.0, 0.0]],  # t2: padding (node 3 -> 0 would cost 2)
                      [[0.0, 0.0, 1.0, 0.0],   # second patient: 2 -> 3 -> 3, free
                       [0.0, 0.0, 0.0, 1.0],
                       [0.0, 0.0, 0.0, 1.0]]])
    steps = torch.tensor([[True, True, False], [True, True, True]])
    got = L.expected_jump(a, steps, cost)
    assert got.item() == pytest.approx((1.5 + 0.0 + 0.0) / 3)


def test_usage_balance_zero_when_even_and_log_k_when_one_node():
    even = torch.full((5, 4), 0.25)
    assert L.usage_balance(even).item() == pytest.approx(0.0, abs=1e-7)
    one = torch.tensor([[1.0, 0.0, 0.0, 0.0]] * 3) * (1 - 3e-7) + 1e-7
    assert L.usage_balance(one).item() == pytest.approx(math.log(4), rel=1e-4)


def _tiny_trainer(**weights):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(6, 5, 3)).astype(np.float32)
    lengths = np.array([5, 4, 3, 5, 2, 5])
    for i, n in enumerate(lengths):
        X[i, n:] = np.nan
    cfg = make_config("tdpsom", "quick").replace(**{
        "grid.height": 3, "grid.width": 3, "network.hidden": (8,), "network.latent_dim": 2,
        "network.lstm_dim": 4, "train.batch_size": 6, "train.seed": 0, "train.device": "cpu",
        **{f"weights.{k}": v for k, v in weights.items()}})
    est = TDPSOM(config=cfg)
    gen = est.iter_fit(X, lengths=lengths)
    next(gen)  # builds the network and the trainer
    gen.close()
    trainer = est.trainer_
    trainer.target = trainer.compute_target()
    return est, trainer


def test_jump_term_moves_the_prototypes_only():
    est, trainer = _tiny_trainer(jump=1.0, balance=0.0)
    terms, _ = trainer._joint_terms(torch.arange(6))
    assert "balance" not in terms and terms["jump"].item() > 0
    est.net_.zero_grad(set_to_none=True)
    terms["jump"].backward()
    assert est.net_.prototypes.grad is not None and est.net_.prototypes.grad.abs().sum() > 0
    encoder_grads = [p.grad for p in est.net_.encoder.parameters() if p.grad is not None]
    assert all(float(g.abs().sum()) == 0.0 for g in encoder_grads)


def test_balance_term_reaches_encoder_and_prototypes():
    est, trainer = _tiny_trainer(jump=0.0, balance=1.0)
    terms, _ = trainer._joint_terms(torch.arange(6))
    assert "jump" not in terms
    est.net_.zero_grad(set_to_none=True)
    terms["balance"].backward()
    assert est.net_.prototypes.grad.abs().sum() > 0
    assert sum(float(p.grad.abs().sum()) for p in est.net_.encoder.parameters() if p.grad is not None) > 0


def test_rule_turns_the_terms_on_for_series_only_and_parity_stays_the_reference():
    series = DataProfile("series", 300, 15000, 16, -3.0, 3.0)
    quick = propose(series).config.weights
    assert (quick.jump, quick.balance) == (3.0, 0.3)
    assert any("jump weight" in r for r in propose(series).reasons)
    paper = propose(series, "paper").config.weights
    assert (paper.jump, paper.balance) == (0.0, 0.0)
    table = propose(DataProfile("table", 500, 500, 5, -2.0, 4.0)).config.weights
    assert (table.jump, table.balance) == (0.0, 0.0)
    assert make_config("tdpsom", "paper").weights.jump == 0.0


def test_grid_transitions_rows_sum_to_one_and_charge_long_steps():
    log_t = grid_log_transitions(LINE.distances(), 0.5)
    assert np.allclose(np.exp(log_t).sum(axis=1), 1.0)
    assert log_t[0, 0] == pytest.approx(log_t[0, 1])
    assert log_t[0, 0] - log_t[0, 3] == pytest.approx(1.0)


def _proba(nodes, conf=0.55, k=4):
    p = np.full((len(nodes), k), (1 - conf) / (k - 1))
    p[np.arange(len(nodes)), nodes] = conf
    return p


def test_paths_drop_a_one_step_hop_keep_a_lasting_move_and_pad_with_minus_one():
    hop = _proba([0, 0, 3, 0, 0, 0])
    move = _proba([0, 0, 3, 3, 3, 3])
    short = _proba([1, 1, 2, 0, 0, 0])  # 3 real steps, then padding
    proba = np.stack([hop, move, short])
    lengths = np.array([6, 6, 3])
    got = smoothed_paths(proba, lengths, LINE.distances(), stiffness=1.0)
    assert got[0].tolist() == [0, 0, 0, 0, 0, 0]
    assert got[1].tolist() == [0, 0, 3, 3, 3, 3]
    assert got[2].tolist() == [1, 1, 2, -1, -1, -1]
    # Without a cost the path is the step-by-step best match.
    assert smoothed_paths(proba, lengths, LINE.distances(), stiffness=0.0)[0].tolist() == [0, 0, 3, 0, 0, 0]


def test_paths_match_a_brute_force_search():
    rng = np.random.default_rng(3)
    proba = rng.dirichlet(np.ones(4), size=(2, 5))  # (2, 5, 4)
    log_t = grid_log_transitions(LINE.distances(), 0.7)
    got = smoothed_paths(proba, np.array([5, 5]), LINE.distances(), stiffness=0.7)
    for i in range(2):
        best, best_path = -np.inf, None
        for path in np.ndindex(*(4,) * 5):
            s = sum(np.log(proba[i, t, path[t]]) for t in range(5))
            s += sum(log_t[path[t - 1], path[t]] for t in range(1, 5))
            if s > best:
                best, best_path = s, path
        assert got[i].tolist() == list(best_path)


def test_a_stay_kept_in_parts_gets_the_path_it_gets_whole():
    """The parts of a long stay are one sequence: the path runs on across every boundary."""
    stay = [0, 0, 0, 3, 3, 3, 3, 0, 0, 0]  # moves at step 3; the first part ends at that step
    other = _proba([2, 2, 2])
    whole = np.zeros((2, 10, 4))
    whole[0, :3], whole[1] = other, _proba(stay)
    got_whole = smoothed_paths(whole, np.array([3, 10]), LINE.distances(), stiffness=1.0)
    parts = np.zeros((4, 4, 4))  # the other patient, then the stay in rows of 4, 4 and 2 steps
    parts[0, :3], parts[1], parts[2], parts[3, :2] = other, _proba(stay[:4]), _proba(stay[4:8]), _proba(stay[8:])
    lengths = np.array([3, 4, 4, 2])
    continues = np.array([False, False, True, True])
    got_parts = smoothed_paths(parts, lengths, LINE.distances(), stiffness=1.0, continues=continues)
    real = np.arange(4)[None, :] < lengths[:, None]
    assert got_parts[real].tolist() == got_whole[np.arange(10)[None, :] < np.array([[3], [10]])].tolist()
    assert got_whole[1].tolist() == stay
    assert (got_parts[~real] == -1).all()
    # decoded apart, the first part would drop its last, lone step on node 3
    apart = smoothed_paths(parts, lengths, LINE.distances(), stiffness=1.0)
    assert apart[1].tolist() == [0, 0, 0, 0]


def test_model_run_decodes_a_stay_in_parts_as_one_sequence():
    from core.data.dataset import Dataset
    from core.workflow import ModelRun

    stay = [0, 0, 0, 3, 3, 3, 3, 0, 0, 0]
    proba = np.zeros((3, 4, 4))
    proba[0], proba[1], proba[2, :2] = _proba(stay[:4]), _proba(stay[4:8]), _proba(stay[8:])
    lengths = np.array([4, 4, 2])
    values = np.where((np.arange(4)[None, :] < lengths[:, None])[..., None], 1.0, np.nan)
    ds = Dataset(values=values, mask=~np.isnan(values), feature_names=["hr"], ids=np.array([7, 7, 7]),
                 lengths=lengths, starts=np.array([0, 4, 8]))
    run = ModelRun(ds, make_config("tdpsom", "quick", **{"grid.height": 1, "grid.width": 4,
                                                         "grid.toroidal": False}))
    run._cache["assignments"] = {"proba": proba}  # what a trained model would give, without training
    path = run.node_paths(stiffness=1.0)
    assert path[ds.step_mask].tolist() == stay
