"""Gaussian MLP policy for Warp, as in the specification, with ``warp_nn`` layers.

Run: ``python examples/warp/mlp.py`` (acts once on a Pendulum-v1 observation). Inputs and
outputs are ``warp.array`` objects on the model's device.
"""

import gymnasium as gym
import numpy as np
import warp as wp
from warp_nn import nn

from gaussrl.models.warp import GaussianMixin, Model


class MLP(GaussianMixin, Model):
    def __init__(
        self,
        observation_space,
        state_space,
        action_space,
        device,
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

        self.net = nn.Sequential(
            nn.Linear(self.num_observations, 64),
            nn.ReLU(),
            nn.Linear(64, 32),
            nn.ReLU(),
            nn.Linear(32, self.num_actions),
            nn.Tanh(),
        )
        self.log_std_parameter = nn.Parameter(wp.zeros(self.num_actions, dtype=wp.float32, device=self.device))
        # warp_nn registers layers and parameters here; gaussrl also moves them to the model's device.
        self.__post_init__()

    def compute(self, inputs, role):
        return self.net(inputs["observations"]), {"log_std": self.log_std_parameter.data}


def main():
    env = gym.make("Pendulum-v1")
    policy = MLP(env.observation_space, None, env.action_space, "cpu", clip_actions=True, clip_mean_actions=True)
    observation, _ = env.reset(seed=0)
    inputs = {"observations": wp.array(observation[None], dtype=wp.float32, device=policy.device)}
    actions, outputs = policy.act(inputs, role="policy")
    print(f"observation {observation.round(3)} -> action {actions.numpy().round(3)}, "
          f"log_prob {outputs['log_prob'].numpy()[0, 0]:.4f}, "
          f"entropy {np.sum(policy.get_entropy(role='policy').numpy()):.4f}")  # fmt: skip


if __name__ == "__main__":
    main()
