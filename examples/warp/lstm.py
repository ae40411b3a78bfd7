"""A Gaussian policy with an LSTM for Warp; ``inputs["rnn"]`` holds ``[h, c]`` and ``outputs["rnn"]`` returns them.

See ``gru.py`` for rollout and training modes, and ``gaussrl.models.warp.recurrent``.
"""

import warp as wp
from warp_nn import nn

from gaussrl.models.warp import GaussianMixin, Model
from gaussrl.models.warp.recurrent import run_recurrent


class LSTM(GaussianMixin, Model):
    def __init__(self, observation_space, state_space, action_space, device, num_envs=1, num_layers=1,
                 hidden_size=64, sequence_length=16, reduction="sum", **options):  # fmt: skip
        Model.__init__(self, observation_space=observation_space, state_space=state_space,
                       action_space=action_space, device=device)  # fmt: skip
        GaussianMixin.__init__(self, reduction=reduction, **options)

        self.num_envs = num_envs
        self.num_layers = num_layers
        self.hidden_size = hidden_size
        self.sequence_length = sequence_length
        self.lstm = nn.LSTM(self.num_observations, hidden_size, num_layers=num_layers)
        self.net = nn.Sequential(nn.Linear(hidden_size, 64), nn.ReLU(), nn.Linear(64, self.num_actions), nn.Tanh())
        self.log_std_parameter = nn.Parameter(wp.zeros(self.num_actions, dtype=wp.float32, device=self.device))
        self.__post_init__()

    def get_specification(self):
        # Two hidden states (h and c), each (num_layers, num_envs, hidden_size).
        size = (self.num_layers, self.num_envs, self.hidden_size)
        return {"rnn": {"sequence_length": self.sequence_length, "sizes": [size, size]}}

    def compute(self, inputs, role):
        features, hidden = run_recurrent(
            self.lstm,
            inputs["observations"],
            inputs["rnn"],
            sequence_length=self.sequence_length,
            training=self.training,
            terminated=inputs.get("terminated"),
        )
        return self.net(features), {"log_std": self.log_std_parameter.data, "rnn": hidden}
