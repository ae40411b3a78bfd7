"""No NaN at extreme log-std; opt-in finite-value checks."""

from __future__ import annotations

import numpy as np
import pytest

from gaussrl.core import NonFiniteOutputError
from gaussrl.core.reference import log_std_floor
from tests.contract.helpers import box, draw


@pytest.mark.parametrize("log_std", [-100.0, -1e4, -np.inf])
def test_tiny_scale_without_clipping_stays_finite(backend, log_std):
    policy = backend.policy(box(), clip_log_std=False)
    mean, x = draw(0, n=16), draw(1, n=16)
    value = np.full(4, log_std, np.float32)
    for taken in (None, x):
        actions, outputs, grads = backend.grads(policy, mean, value, "log_prob", taken_actions=taken)
        for name, array in [("actions", actions), ("log_prob", outputs["log_prob"]), *grads.items()]:
            assert not np.any(np.isnan(array)), name
        assert np.all(np.isfinite(actions))
    np.testing.assert_allclose(np.ravel(outputs["log_std"])[:4], log_std_floor("float32"), rtol=1e-6)


def test_floor_is_documented_value():
    assert log_std_floor("float32") == pytest.approx(np.log(np.finfo(np.float32).tiny) / 4)
    assert -22.0 < log_std_floor("float32") < -20.0


@pytest.mark.parametrize("output, bad", [("mean_actions", "mean"), ("log_std", "log_std")])
def test_check_finite_names_the_output_and_role(backend, output, bad):
    policy = backend.policy(box(), state_dependent=True, check_finite=True)
    mean, log_std = draw(2, n=4), np.zeros((4, 4), np.float32)
    (mean if bad == "mean" else log_std)[1, 2] = np.nan
    with pytest.raises(NonFiniteOutputError, match=rf"role='policy'\) returned NaN or infinity in {output}"):
        backend.act(policy, mean, log_std, role="policy")


def test_check_finite_is_off_by_default(backend):
    policy = backend.policy(box(), state_dependent=True)
    mean = draw(3, n=4)
    mean[0, 0] = np.nan
    actions, _ = backend.act(policy, mean, np.zeros((4, 4), np.float32))
    assert np.isnan(actions[0, 0]) and np.isfinite(actions[1:]).all()


def test_nan_log_std_is_not_clamped_into_range(backend):
    """The clamp propagates NaN (as torch.clamp), so a NaN log-std shows up instead of becoming a bound."""
    log_std = np.array([np.nan, 0.0, 0.0, 0.0], np.float32)
    _, outputs = backend.act(backend.policy(box()), draw(4, n=4), log_std)
    assert np.isnan(outputs["log_std"][..., 0]).all() and np.isfinite(outputs["log_std"][..., 1:]).all()
    assert np.isnan(outputs["log_prob"]).all()
