"""A Gaussian policy with an RNN (tanh) for Warp; hidden states travel through ``inputs["rnn"]``/``outputs["rnn"]``.

During rollout (``policy.train(False)``) each batch row is one environment's step. During
training the batch is sequences of ``sequence_length`` steps, and the hidden state is reset
after steps where ``inputs["terminated"]`` is set (see ``gaussrl.models.warp.recurrent``).
"""

import warp as wp
from warp_nn import nn

from gaussrl.models.warp import GaussianMixin, Model
from gaussrl.models.warp.recurrent import run_recurrent


class RNN(GaussianMixin, Model):
    def __init__(self, observation_space, state_space, action_space, device, num_envs=1, num_layers=1,
                 hidden_size=64, sequence_length=16, reduction="sum", **options):  # fmt: skip
        Model.__init__(self, observation_space=observation_space, state_space=state_space,
                       action_space=action_space, device=device)  # fmt: skip
        GaussianMixin.__init__(self, reduction=reduction, **options)

        self.num_envs = num_envs
        self.num_layers = num_layers
        self.hidden_size = hidden_size
        self.sequence_length = sequence_length
        self.rnn = nn.RNN(self.num_observations, hidden_size, num_layers=num_layers)
        self.net = nn.Sequential(nn.Linear(hidden_size, 64), nn.ReLU(), nn.Linear(64, self.num_actions), nn.Tanh())
        self.log_std_parameter = nn.Parameter(wp.zeros(self.num_actions, dtype=wp.float32, device=self.device))
        self.__post_init__()

    def get_specification(self):
        # One hidden state of shape (num_layers, num_envs, hidden_size).
        return {"rnn": {"sequence_length": self.sequence_length,
                        "sizes": [(self.num_layers, self.num_envs, self.hidden_size)]}}  # fmt: skip

    def compute(self, inputs, role):
        features, hidden = run_recurrent(
            self.rnn,
            inputs["observations"],
            inputs["rnn"],
            sequence_length=self.sequence_length,
            training=self.training,
            terminated=inputs.get("terminated"),
        )
        return self.net(features), {"log_std": self.log_std_parameter.data, "rnn": hidden}
