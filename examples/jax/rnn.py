"""A recurrent (Elman RNN) Gaussian policy in JAX/Flax, written setup-style and compact-style.

Hidden states travel through ``inputs["rnn"]`` and come back in ``outputs["rnn"]``, each of
shape (num_layers, N, hidden_size) as ``get_specification()`` describes. In rollouts each row
is one environment step; in training mode (``enable_training_mode(True)``) the batch holds
``N * sequence_length`` rows, sequence after sequence, and ``inputs["terminated"]`` resets the
hidden state inside a sequence.

Run: ``python examples/jax/rnn.py``.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp
import numpy as np
from gymnasium import spaces

from gaussrl.models.jax import GaussianMixin, Model
from gaussrl.models.jax.recurrent import run_recurrent


class RecurrentPolicy(GaussianMixin, Model):
    """The specification's constructor plus the recurrent sizes; subclasses define the network."""

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
        num_envs=1,
        hidden_size=16,
        sequence_length=4,
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
        self.num_envs = num_envs
        self.hidden_size = hidden_size
        self.sequence_length = sequence_length

    @nn.nowrap
    def get_specification(self):
        return {"rnn": {"sequence_length": self.sequence_length, "sizes": [(1, self.num_envs, self.hidden_size)]}}


class RNNSetup(RecurrentPolicy):
    """Layers declared in ``setup()``."""

    def setup(self):
        self.cell = nn.SimpleCell(self.hidden_size)
        self.fc = nn.Dense(self.num_actions)
        self.log_std_parameter = self.param("log_std_parameter", nn.initializers.zeros, (self.num_actions,))

    def __call__(self, inputs, role):
        y, hidden = run_recurrent(
            self.cell,
            inputs["observations"],
            inputs.get("rnn"),
            sequence_length=self.sequence_length,
            training=self.training,
            terminated=inputs.get("terminated"),
        )
        return nn.tanh(self.fc(y)), {"log_std": self.log_std_parameter, "rnn": hidden}


class RNNCompact(RecurrentPolicy):
    """The same network, declared inline with ``@nn.compact``."""

    @nn.compact
    def __call__(self, inputs, role):
        cell = nn.SimpleCell(self.hidden_size)
        y, hidden = run_recurrent(
            cell,
            inputs["observations"],
            inputs.get("rnn"),
            sequence_length=self.sequence_length,
            training=self.training,
            terminated=inputs.get("terminated"),
        )
        log_std = self.param("log_std_parameter", nn.initializers.zeros, (self.num_actions,))
        return nn.tanh(nn.Dense(self.num_actions)(y)), {"log_std": log_std, "rnn": hidden}


def main(num_envs: int = 3) -> dict[str, dict[str, np.ndarray]]:
    observation_space = spaces.Box(low=-1.0, high=1.0, shape=(5,))
    action_space = spaces.Box(low=-1.0, high=1.0, shape=(2,))
    results = {}
    for cls in (RNNSetup, RNNCompact):
        policy = cls(observation_space, None, action_space, num_envs=num_envs)
        policy.init_state_dict(role="policy", key=0)
        spec = policy.get_specification()["rnn"]
        length, sizes = spec["sequence_length"], spec["sizes"]
        rollout = {"observations": jnp.ones((num_envs, 5)), "rnn": [jnp.zeros(size) for size in sizes]}
        actions, outputs = policy.act(rollout, role="policy")
        policy.enable_training_mode(True)
        rows = num_envs * length
        batch = {
            "observations": jnp.ones((rows, 5)),
            "rnn": [jnp.zeros((size[0], rows, size[2])) for size in sizes],
            "terminated": jnp.zeros((rows, 1), bool).at[1].set(True),
            "taken_actions": jnp.zeros((rows, 2)),
        }
        _, training = policy.act(batch, role="policy")
        print(f"{cls.__name__}: actions {actions.shape}, rnn {[h.shape for h in outputs['rnn']]}")
        results[cls.__name__] = {
            "actions": np.asarray(actions),
            "rnn": np.asarray(outputs["rnn"][0]),
            "training_log_prob": np.asarray(training["log_prob"]),
        }
    return results


if __name__ == "__main__":
    main()
