"""A Gaussian MLP policy in JAX/Flax, written setup-style and compact-style.

Run: ``python examples/jax/mlp.py``.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp
import numpy as np
from gymnasium import spaces

from gaussrl.models.jax import GaussianMixin, Model


class GaussianPolicy(GaussianMixin, Model):
    """The specification's constructor; the two subclasses below only define the network."""

    def __init__(
        self,
        observation_space,
        state_space,
        action_space,
        device=None,
        clip_actions=False,
        clip_mean_actions=False,
        clip_log_std=True,
        min_log_std=-20,
        max_log_std=2,
        reduction="sum",
    ):
        Model.__init__(
            self,
            observation_space=observation_space,
            state_space=state_space,
            action_space=action_space,
            device=device,
        )
        GaussianMixin.__init__(
            self,
            clip_actions=clip_actions,
            clip_mean_actions=clip_mean_actions,
            clip_log_std=clip_log_std,
            min_log_std=min_log_std,
            max_log_std=max_log_std,
            reduction=reduction,
        )


class MLPSetup(GaussianPolicy):
    """Layers declared in ``setup()``."""

    def setup(self):
        self.fc1 = nn.Dense(64)
        self.fc2 = nn.Dense(32)
        self.fc3 = nn.Dense(self.num_actions)
        self.log_std_parameter = self.param("log_std_parameter", nn.initializers.zeros, (self.num_actions,))

    def __call__(self, inputs, role):
        x = nn.relu(self.fc1(inputs["observations"]))
        x = nn.relu(self.fc2(x))
        return nn.tanh(self.fc3(x)), {"log_std": self.log_std_parameter}


class MLPCompact(GaussianPolicy):
    """The same network, declared inline with ``@nn.compact``."""

    @nn.compact
    def __call__(self, inputs, role):
        x = nn.relu(nn.Dense(64)(inputs["observations"]))
        x = nn.relu(nn.Dense(32)(x))
        log_std = self.param("log_std_parameter", nn.initializers.zeros, (self.num_actions,))
        return nn.tanh(nn.Dense(self.num_actions)(x)), {"log_std": log_std}


def main(batch: int = 4) -> dict[str, tuple[np.ndarray, dict[str, np.ndarray]]]:
    observation_space = spaces.Box(low=-1.0, high=1.0, shape=(8,))
    action_space = spaces.Box(low=-1.0, high=1.0, shape=(2,))
    results = {}
    for cls in (MLPSetup, MLPCompact):
        policy = cls(observation_space, None, action_space, clip_actions=True, clip_mean_actions=True)
        policy.init_state_dict(role="policy", key=0)
        actions, outputs = policy.act({"observations": jnp.ones((batch, 8))}, role="policy")
        print(f"{cls.__name__}: actions {actions.shape}, log_prob {outputs['log_prob'].shape}")
        results[cls.__name__] = (np.asarray(actions), {k: np.asarray(v) for k, v in outputs.items()})
    return results


if __name__ == "__main__":
    main()
