"""Fuzz: random Box/Dict/Tuple spaces and random (often bad) act() inputs on the torch, JAX and Warp models.

Each case either works (actions of shape (N, A) and a log-density per row) or raises one of gaussrl's
error classes (a ``GaussrlError``); anything else (a broadcasting error, a backend's TypeError, a
crash) fails the test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from gymnasium import spaces

from gaussrl.core.errors import GaussrlError
from gaussrl.core.spaces import space_size

hypothesis = pytest.importorskip("hypothesis", reason="the fuzz test needs hypothesis (the test extra)")
st = hypothesis.strategies

BAD_KINDS = (
    "ok",
    "ok_space_shape",
    "not_a_mapping",
    "no_observations",
    "wrong_width",
    "no_batch_axis",
    "float64",
    "int32",
    "python_list",
    "taken_ok",
    "taken_wrong_width",
    "taken_wrong_rows",
    "taken_flat",
)

_box = st.builds(
    lambda shape: spaces.Box(-1.0, 1.0, shape=shape, dtype=np.float32),
    st.lists(st.integers(1, 3), min_size=1, max_size=2).map(tuple),
)
_leaf = st.one_of(_box, st.integers(2, 4).map(spaces.Discrete))
_space = st.recursive(
    _leaf,
    lambda children: st.one_of(
        st.lists(children, min_size=1, max_size=2).map(lambda s: spaces.Dict({f"k{i}": c for i, c in enumerate(s)})),
        st.lists(children, min_size=1, max_size=2).map(spaces.Tuple),
    ),
    max_leaves=3,
)
_action_space = st.one_of(_box, st.lists(_box, min_size=1, max_size=2).map(spaces.Tuple))


def _inputs(kind, observation_space, num_actions, batch, array):
    """The act() inputs of one case; ``array(numpy_array)`` builds the backend's array."""
    size = space_size(observation_space)
    rng = np.random.default_rng(batch)
    flat = rng.normal(size=(batch, size)).astype(np.float32)
    taken = np.clip(rng.normal(size=(batch, num_actions)), -0.9, 0.9).astype(np.float32)
    wide = np.zeros((batch, num_actions + 1), dtype=np.float32)
    shape = getattr(observation_space, "shape", None) or ()
    cases = {
        "ok": lambda: {"observations": array(flat)},
        "ok_space_shape": lambda: {"observations": array(flat.reshape(batch, *shape) if shape else flat)},
        "not_a_mapping": lambda: [array(flat)],
        "no_observations": lambda: {"states": array(flat)},
        "wrong_width": lambda: {"observations": array(rng.normal(size=(batch, size + 1)).astype(np.float32))},
        "no_batch_axis": lambda: {"observations": array(flat[0])},
        "float64": lambda: {"observations": array(flat.astype(np.float64))},
        "int32": lambda: {"observations": array(flat.astype(np.int32))},
        "python_list": lambda: {"observations": flat.tolist()},
        "taken_ok": lambda: {"observations": array(flat), "taken_actions": array(taken)},
        "taken_wrong_width": lambda: {"observations": array(flat), "taken_actions": array(wide)},
        "taken_wrong_rows": lambda: {"observations": array(flat), "taken_actions": array(np.tile(taken, (2, 1)))},
        "taken_flat": lambda: {"observations": array(flat), "taken_actions": array(taken.reshape(-1))},
    }  # fmt: skip
    return cases[kind]()


def _check_case(act, inputs, batch, num_actions, to_numpy):
    try:
        actions, outputs = act(inputs)
    except GaussrlError:
        return "raised"
    assert to_numpy(actions).shape == (batch, num_actions)
    assert to_numpy(outputs["log_prob"]).shape == (batch, 1)
    return "worked"


def check_fuzz_cases(make_policy, array, to_numpy, max_examples=25):
    seen = set()

    @hypothesis.settings(max_examples=max_examples, deadline=None, derandomize=True, database=None)
    @hypothesis.given(
        observation_space=_space, action_space=_action_space, batch=st.integers(1, 4), kind=st.sampled_from(BAD_KINDS)
    )
    def run(observation_space, action_space, batch, kind):
        try:
            policy = make_policy(observation_space, action_space)
        except GaussrlError:
            seen.add(("model", "refused"))
            return
        num_actions = space_size(action_space)
        try:
            inputs = _inputs(kind, observation_space, num_actions, batch, array)
        except GaussrlError:  # the backend refused to build the array itself (not our concern)
            return
        outcome = _check_case(lambda x: policy.act(x, role="policy"), inputs, batch, num_actions, to_numpy)
        seen.add((kind, outcome))

    run()
    assert {outcome for _, outcome in seen} == {"worked", "raised"}, seen  # both paths were exercised
    assert ("ok", "raised") not in seen and ("wrong_width", "worked") not in seen, seen


def test_fuzz_torch():
    torch = pytest.importorskip("torch")
    from torch import nn

    from gaussrl.models.torch import GaussianMixin, Model

    class Policy(GaussianMixin, Model):
        def __init__(self, observation_space, action_space):
            Model.__init__(self, observation_space=observation_space, action_space=action_space, device="cpu")
            GaussianMixin.__init__(self)
            self.net = nn.Linear(self.num_observations, self.num_actions)
            self.log_std_parameter = nn.Parameter(torch.zeros(self.num_actions))

        def compute(self, inputs, role):
            x = inputs["observations"]
            return self.net(x.reshape(x.shape[0], -1)), {"log_std": self.log_std_parameter}

    check_fuzz_cases(Policy, torch.as_tensor, lambda t: t.detach().numpy())


def test_fuzz_jax():
    pytest.importorskip("flax")
    import flax.linen as nn
    import jax.numpy as jnp

    from gaussrl.models.jax import GaussianMixin, Model

    class Policy(GaussianMixin, Model):
        def __init__(self, observation_space, state_space, action_space, device=None):
            Model.__init__(self, observation_space, state_space, action_space, device)
            GaussianMixin.__init__(self)

        @nn.compact
        def __call__(self, inputs, role):
            x = inputs["observations"]
            log_std = self.param("log_std", nn.initializers.constant(-0.5), (self.num_actions,))
            return nn.Dense(self.num_actions)(jnp.reshape(x, (x.shape[0], -1))), {"log_std": log_std}

    def make(observation_space, action_space):
        policy = Policy(observation_space, None, action_space)
        policy.init_state_dict(key=0)
        return policy

    check_fuzz_cases(make, jnp.asarray, np.asarray, max_examples=8)  # a new model and shape compile: ~2 s an example


def test_fuzz_warp():
    pytest.importorskip("warp_nn")
    import warp as wp
    from warp_nn import nn

    from gaussrl.models.warp import GaussianMixin, Model

    class Policy(GaussianMixin, Model):
        def __init__(self, observation_space, action_space):
            Model.__init__(self, observation_space=observation_space, action_space=action_space, device="cpu")
            GaussianMixin.__init__(self)
            self.net = nn.Linear(self.num_observations, self.num_actions)
            self.log_std_parameter = nn.Parameter(wp.zeros(self.num_actions, dtype=wp.float32, device=self.device))
            self.__post_init__()

        def compute(self, inputs, role):
            x = inputs["observations"]
            return self.net(x.reshape((x.shape[0], math.prod(x.shape[1:])))), {"log_std": self.log_std_parameter.data}

    def array(x):
        dtype = {np.dtype(np.float32): wp.float32, np.dtype(np.float64): wp.float64}.get(x.dtype, wp.int32)
        return wp.array(x, dtype=dtype, device="cpu")

    check_fuzz_cases(Policy, array, lambda a: a.numpy())
