"""Warp against torch: same mean, log-std and taken actions give the same log-prob and entropy."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium import spaces

from tests.contract.adapters.warp_adapter import ADAPTER as WARP
from tests.contract.helpers import REDUCTIONS, RTOL, atol_for, box, draw

torch = pytest.importorskip("torch")
TORCH = pytest.importorskip("tests.contract.adapters.torch_adapter").ADAPTER
SQUASH_SPACE = spaces.Box(low=np.array([-2.0, 0.0, -1.0, -3.0], np.float32), high=np.array([3, 1, 1, 0], np.float32))


def _both(options, mean, log_std, taken=None, *, state_dependent=False, space=None):
    results = []
    for backend in (TORCH, WARP):
        policy = backend.policy(space or box(), state_dependent=state_dependent, **options)
        actions, outputs = backend.act(policy, mean, log_std, taken_actions=taken)
        results.append((actions, outputs, backend.entropy(policy)))
    return results


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("state_dependent", [False, True])
@pytest.mark.parametrize("squash", [False, True])
def test_taken_actions_same_log_prob(reduction, state_dependent, squash):
    mean, log_std = draw(0, n=64), draw(1, n=64, scale=0.5)
    log_std = log_std if state_dependent else log_std[0]
    taken = np.tanh(draw(2, n=64)) if squash else draw(2, n=64, scale=2.0)
    if squash:
        taken = (
            (SQUASH_SPACE.high + SQUASH_SPACE.low) / 2 + (SQUASH_SPACE.high - SQUASH_SPACE.low) / 2 * taken
        ).astype(np.float32)
    options = {"reduction": reduction, "squash_actions": squash}
    (_, want, _), (_, got, _) = _both(
        options, mean, log_std, taken, state_dependent=state_dependent, space=SQUASH_SPACE if squash else None
    )
    for key in ("log_prob", "log_std", "mean_actions"):
        np.testing.assert_allclose(got[key], want[key], rtol=1e-4 if squash else RTOL, atol=atol_for(reduction, 4))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("state_dependent", [False, True])
def test_entropy_and_fresh_sample_log_prob(reduction, state_dependent):
    mean, log_std = draw(3, n=64), draw(4, n=64, scale=0.5)
    log_std = log_std if state_dependent else log_std[0]
    options = {"reduction": reduction}
    (_, _, want_entropy), (actions, got, got_entropy) = _both(options, mean, log_std, state_dependent=state_dependent)
    np.testing.assert_allclose(got_entropy, want_entropy, rtol=RTOL, atol=RTOL)
    # Torch scores the actions warp sampled: the same number warp reported for its own sample.
    policy = TORCH.policy(box(), state_dependent=state_dependent, **options)
    _, want = TORCH.act(policy, mean, log_std, taken_actions=actions)
    np.testing.assert_allclose(got["log_prob"], want["log_prob"], rtol=RTOL, atol=atol_for(reduction, 4) * 10)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_kl_matches_torch(reduction):
    arrays = [draw(5 + k, n=16, a=3, scale=0.5) for k in range(4)]
    np.testing.assert_allclose(
        WARP.kl(*arrays, reduction), TORCH.kl(*arrays, reduction), rtol=RTOL, atol=atol_for(reduction, 3)
    )


@pytest.mark.parametrize("reduction", ["sum", "prod"])
def test_log_prob_gradients_match_torch(reduction):
    mean, log_std, taken = draw(9, n=16), draw(10, n=16, scale=0.3), draw(11, n=16)
    grads = [
        backend.grads(
            backend.policy(box(), state_dependent=True, reduction=reduction), mean, log_std, "log_prob", taken
        )
        for backend in (TORCH, WARP)
    ]
    for key in ("mean", "log_std"):
        np.testing.assert_allclose(grads[1][2][key], grads[0][2][key], rtol=1e-4, atol=1e-4)
