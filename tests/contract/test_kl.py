"""Exact Gaussian KL against numerical integration."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.integrate
import scipy.stats

from tests.contract.helpers import REDUCTIONS, reduce


def _kl_by_quadrature(mp, sp, mq, sq):
    def integrand(x):
        return scipy.stats.norm.pdf(x, mp, sp) * (
            scipy.stats.norm.logpdf(x, mp, sp) - scipy.stats.norm.logpdf(x, mq, sq)
        )

    return scipy.integrate.quad(integrand, mp - 15 * sp, mp + 15 * sp, epsabs=1e-12)[0]


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_kl_matches_quadrature(backend, reduction):
    rng = np.random.default_rng(0)
    mean_p, mean_q = rng.normal(size=(2, 5, 3)).astype(np.float32)
    log_std_p, log_std_q = (0.4 * rng.normal(size=(2, 5, 3))).astype(np.float32)
    got = backend.kl(mean_p, log_std_p, mean_q, log_std_q, reduction)
    per_dim = np.vectorize(_kl_by_quadrature)(
        mean_p.astype(np.float64),
        np.exp(log_std_p.astype(np.float64)),
        mean_q.astype(np.float64),
        np.exp(log_std_q.astype(np.float64)),
    )
    np.testing.assert_allclose(got, reduce(per_dim, reduction), rtol=1e-4, atol=1e-5)


def test_kl_of_identical_distributions_is_zero(backend):
    mean, log_std = np.ones((4, 2), np.float32), np.full(2, -0.7, np.float32)
    np.testing.assert_allclose(backend.kl(mean, log_std, mean, log_std, "sum"), 0.0, atol=1e-6)
