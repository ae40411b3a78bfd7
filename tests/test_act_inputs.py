"""act() input errors: one shared check (core/checks.py) gives every backend the same one-line messages."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.vector import SyncVectorEnv

from gaussrl.core.checks import check_act_inputs, check_env_observations, dtype_name
from gaussrl.core.errors import EnvError, GaussrlError, InputError, InputTypeError

BOX = spaces.Box(-1.0, 1.0, (2,), dtype=np.float32)


def _torch_policy():
    torch = pytest.importorskip("torch")
    from torch import nn

    from gaussrl.models.torch import GaussianMixin, Model

    class Policy(GaussianMixin, Model):
        def __init__(self):
            Model.__init__(self, observation_space=3, action_space=BOX, device="cpu")
            GaussianMixin.__init__(self)
            self.net = nn.Linear(3, 2)
            self.log_std_parameter = nn.Parameter(torch.zeros(2))

        def compute(self, inputs, role):
            return self.net(inputs["observations"]), {"log_std": self.log_std_parameter}

    return Policy(), torch.as_tensor


def _jax_policy():
    pytest.importorskip("flax")
    import flax.linen as nn
    import jax.numpy as jnp

    from gaussrl.models.jax import GaussianMixin, Model

    class Policy(GaussianMixin, Model):
        def __init__(self, observation_space=3, state_space=None, action_space=BOX, device=None):
            Model.__init__(self, observation_space, state_space, action_space, device)
            GaussianMixin.__init__(self)

        @nn.compact
        def __call__(self, inputs, role):
            log_std = self.param("log_std", nn.initializers.zeros, (2,))
            return nn.Dense(2)(inputs["observations"]), {"log_std": log_std}

    policy = Policy()
    policy.init_state_dict(key=0)
    return policy, jnp.asarray


def _warp_policy():
    pytest.importorskip("warp_nn")
    import warp as wp
    from warp_nn import nn

    from gaussrl.models.warp import GaussianMixin, Model

    class Policy(GaussianMixin, Model):
        def __init__(self):
            Model.__init__(self, observation_space=3, action_space=BOX, device="cpu")
            GaussianMixin.__init__(self)
            self.net = nn.Linear(3, 2)
            self.log_std_parameter = nn.Parameter(wp.zeros(2, dtype=wp.float32, device=self.device))
            self.__post_init__()

        def compute(self, inputs, role):
            return self.net(inputs["observations"]), {"log_std": self.log_std_parameter.data}

    def array(x):
        dtype = {np.dtype(np.float32): wp.float32, np.dtype(np.float64): wp.float64}[np.asarray(x).dtype]
        return wp.array(x, dtype=dtype, device="cpu")

    return Policy(), array


POLICIES = {"torch": _torch_policy, "jax": _jax_policy, "warp": _warp_policy}
OBS = np.zeros((4, 3), dtype=np.float32)
FLOAT64_INTO_FLOAT32 = r'inputs\["observations"\] has dtype float64; expected float32, the dtype of the network'


@pytest.mark.parametrize("backend", sorted(POLICIES))
def test_bad_inputs_name_the_fix(backend):
    policy, array = POLICIES[backend]()
    policy.act({"observations": array(OBS)}, role="policy")  # the good case works
    with pytest.raises(
        InputTypeError, match=r'act\(\) takes a mapping of inputs, got a list; call act\(\{"observations"'
    ):
        policy.act([array(OBS)], role="policy")
    with pytest.raises(InputError, match=r'act\(\) inputs have no "observations" \(keys: \[\'states\'\]\); pass act'):
        policy.act({"states": array(OBS)}, role="policy")
    with pytest.raises(InputTypeError, match=r'inputs\["observations"\] is a list; the .* backend expects a'):
        policy.act({"observations": OBS.tolist()}, role="policy")
    for taken in (np.zeros((1, 2), np.float32), np.zeros((4, 3), np.float32), np.zeros(8, np.float32)):
        with pytest.raises(InputError, match=r'inputs\["taken_actions"\] has shape .*; expected \(4, 2\): one row'):
            policy.act({"observations": array(OBS), "taken_actions": array(taken)}, role="policy")


def test_torch_observations_of_another_dtype():
    policy, array = _torch_policy()
    with pytest.raises(InputTypeError, match=FLOAT64_INTO_FLOAT32):
        policy.act({"observations": array(OBS.astype(np.float64))}, role="policy")
    with pytest.raises(InputTypeError, match=r"has dtype int64; expected float32, the dtype of the network"):
        policy.act({"observations": array(OBS.astype(np.int64))}, role="policy")
    policy.double()
    policy.act({"observations": array(OBS.astype(np.float64))}, role="policy")  # converted model: accepted
    # Observations in torch's default dtype skip the parameter lookup (~6 us a call): a float64 network fed
    # float32 observations gets torch's own error, which names both dtypes.
    with pytest.raises(RuntimeError, match="dtype"):
        policy.act({"observations": array(OBS)}, role="policy")


def test_warp_observations_of_another_dtype():
    policy, array = _warp_policy()
    with pytest.raises(InputTypeError, match=FLOAT64_INTO_FLOAT32):
        policy.act({"observations": array(OBS.astype(np.float64))}, role="policy")


def test_shared_check_is_backend_neutral():
    class Fake:
        def __init__(self, shape, dtype):
            self.shape, self.dtype = shape, dtype

    layout = (("observations", 3, (3,)),)
    check_act_inputs({"observations": Fake((5, 3), "f4")}, layout, 2, array_types=(Fake,), backend="torch", dtype="f4")
    with pytest.raises(InputError, match=r"has dtype f8; expected f4, the dtype of the network's parameters"):
        check_act_inputs(
            {"observations": Fake((5, 3), "f8")}, layout, 2, array_types=(Fake,), backend="jax", dtype="f4"
        )
    assert dtype_name(np.float32) == "float32" and dtype_name(np.dtype("float64")) == "float64"
    assert issubclass(InputTypeError, GaussrlError | TypeError) and issubclass(InputTypeError, ValueError)


class _WrongObservations(gymnasium.Env):
    observation_space = spaces.Box(-1.0, 1.0, (3,), dtype=np.float32)
    action_space = spaces.Box(-1.0, 1.0, (1,), dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        return np.zeros(4, dtype=np.float32), {}

    def step(self, action):
        return np.zeros(4, dtype=np.float32), 0.0, False, False, {}


def test_env_observations_that_do_not_match_the_space():
    from gaussrl.envs import TorchVecEnv

    env = TorchVecEnv(SyncVectorEnv([_WrongObservations, _WrongObservations]), seed=0)
    with pytest.raises(EnvError, match=r"failed to reset \(.*\); check that its observations match its observation"):
        env.reset()
    env.close()
    check_env_observations("x", (2, 3), 2, (3,))
    with pytest.raises(EnvError, match=r"returned observations of shape \(2, 4\), but its observation space has shape"):
        check_env_observations("x", (2, 4), 2, (3,))
