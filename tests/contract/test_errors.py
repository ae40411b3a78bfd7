"""Every bad-input error, matched on its text."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium import spaces

from gaussrl.core import NotReadyError
from tests.contract.helpers import box, draw


def test_unknown_reduction(backend):
    with pytest.raises(ValueError, match=r"reduction='max' is not one of 'mean', 'sum', 'prod', 'none'"):
        backend.policy(box(), reduction="max")


def test_mixin_after_model_in_bases(backend):
    with pytest.raises(TypeError, match=r"lists GaussianMixin after Model in its bases.*GaussianMixin, Model\)"):
        backend.define_mixin_after_model()


def test_mixin_initialised_before_model(backend):
    with pytest.raises(TypeError, match=r"GaussianMixin.__init__ ran before Model.__init__"):
        backend.init_mixin_before_model(box())


def test_compute_without_log_std(backend):
    policy = backend.policy(box(), omit_log_std=True)
    with pytest.raises(KeyError, match=r'a Gaussian model needs "log_std"'):
        backend.act(policy, draw(0, n=4), np.zeros(4, np.float32))


def test_log_std_of_wrong_size(backend):
    policy = backend.policy(box(), log_std_size=3)
    with pytest.raises(ValueError, match=r"log_std of shape \(3,\); expected \(\.\.\., 4\)"):
        backend.act(policy, draw(0, n=4), np.zeros(3, np.float32))


@pytest.mark.parametrize("option", ["clip_actions", "clip_mean_actions"])
def test_clipping_without_a_box(backend, option):
    with pytest.raises(TypeError, match=rf"{option}=True needs the bounds of a gymnasium.spaces.Box"):
        backend.policy(spaces.MultiDiscrete([3, 3, 3, 3]), **{option: True})


def test_observations_of_wrong_shape(backend):
    policy = backend.policy(box())
    with pytest.raises(ValueError, match=r'inputs\["observations"\] has shape \(4, 5\); expected \(N, 4\)'):
        backend.act_inputs(policy, {"observations": np.zeros((4, 5), np.float32)})


def test_entropy_before_act(backend):
    if not backend.has_distribution_state:
        pytest.skip(f"{backend.name}: get_entropy(stddev) takes the stddev explicitly, so there is no 'before act()'")
    with pytest.raises(NotReadyError, match=r"get_entropy\(\) was called before any act\(\)"):
        backend.entropy(backend.policy(box()))


def test_min_log_std_not_below_max(backend):
    with pytest.raises(ValueError, match=r"min_log_std=2.0 must be below max_log_std=-2.0"):
        backend.policy(box(), min_log_std=2, max_log_std=-2)


def test_squash_with_clipping(backend):
    with pytest.raises(ValueError, match=r"cannot be combined with squash_actions"):
        backend.policy(box(), squash_actions=True, clip_actions=True)


def test_box_squash_on_an_unbounded_box(backend):
    with pytest.raises(ValueError, match=r"squash_actions=True maps actions onto the Box bounds"):
        backend.policy(box(low=-np.inf, high=np.inf), squash_actions=True)


def test_unknown_option_is_an_error(backend):
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'clip_action'"):
        backend.policy(box(), clip_action=True)
