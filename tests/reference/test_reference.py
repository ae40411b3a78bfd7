"""The float64 reference formulas against scipy and closed forms."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
from gymnasium import spaces

from gaussrl.core import reference
from gaussrl.core.spec import GaussianSpec, make_plan

RNG = np.random.default_rng(0)


def test_log_prob_matches_scipy():
    x, mean, log_std = RNG.normal(size=(3, 100, 5))
    np.testing.assert_allclose(
        reference.gaussian_log_prob(x, mean, log_std),
        scipy.stats.norm.logpdf(x, mean, np.exp(log_std)),
        rtol=1e-13,
        atol=1e-13,
    )


def test_entropy_matches_scipy():
    log_std = RNG.normal(size=50)
    np.testing.assert_allclose(reference.gaussian_entropy(log_std), scipy.stats.norm.entropy(scale=np.exp(log_std)))


@pytest.mark.parametrize("u", [-30.0, -5.0, -0.3, 0.0, 0.7, 4.0, 30.0])
def test_tanh_log_det_matches_direct_form_and_stays_finite(u):
    got = reference.tanh_log_det(np.array(u))
    assert np.isfinite(got)
    if abs(u) < 10:
        assert got == pytest.approx(np.log(1 - np.tanh(u) ** 2), rel=1e-12)
    else:
        assert got == pytest.approx(np.log(4.0) - 2 * abs(u), rel=1e-12)


def test_reductions():
    values = np.array([[1.0, -2.0, 3.0]])
    assert reference.reduce_log_prob(values, "sum").tolist() == [[2.0]]
    assert reference.reduce_log_prob(values, "mean").tolist() == [[2.0 / 3.0]]
    assert reference.reduce_log_prob(values, "prod").tolist() == [[-6.0]]
    assert reference.reduce_log_prob(values, "none") is values


def test_kl_matches_monte_carlo():
    mp, lp, mq, lq = 0.3, -0.2, -0.5, 0.4
    x = np.random.default_rng(1).normal(mp, np.exp(lp), size=2_000_000)
    samples = scipy.stats.norm.logpdf(x, mp, np.exp(lp)) - scipy.stats.norm.logpdf(x, mq, np.exp(lq))
    kl = reference.gaussian_kl(np.array(mp), np.array(lp), np.array(mq), np.array(lq))
    assert abs(kl - samples.mean()) < 6 * samples.std() / np.sqrt(x.size)


def test_squash_round_trip_and_clamped_inverse():
    plan = make_plan(GaussianSpec(squash_actions=True), spaces.Box(-2.0, 3.0, (1,)), 1)
    u = np.linspace(-5, 5, 11)[:, None]
    np.testing.assert_allclose(reference.unsquash(reference.squash(u, plan), plan), u, rtol=1e-9)
    assert np.isfinite(reference.unsquash(np.array([[3.0], [-2.0]]), plan)).all()


def test_log_std_floor():
    assert reference.log_std_floor("float32") == pytest.approx(np.log(np.finfo(np.float32).tiny) / 4)
    assert reference.log_std_floor(np.float64) < -170
