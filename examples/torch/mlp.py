"""Gaussian MLP policies, as in the specification: an ``nn.Sequential`` one and a functional one.

Run: ``python examples/torch/mlp.py`` (acts once on a Pendulum-v1 observation).
"""

import gymnasium as gym
import torch
import torch.nn.functional as F
from torch import nn

from gaussrl.models.torch import GaussianMixin, Model


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

        self.log_std_parameter = nn.Parameter(torch.zeros(self.num_actions))

    def compute(self, inputs, role):
        return self.net(inputs["observations"]), {"log_std": self.log_std_parameter}


class FunctionalMLP(GaussianMixin, Model):
    def __init__(self, observation_space, state_space, action_space, device, reduction="sum", **options):
        Model.__init__(
            self, observation_space=observation_space, state_space=state_space, action_space=action_space, device=device
        )
        GaussianMixin.__init__(self, reduction=reduction, **options)

        self.fc1 = nn.Linear(self.num_observations, 64)
        self.fc2 = nn.Linear(64, 32)
        self.mean_action_layer = nn.Linear(32, self.num_actions)
        self.log_std_parameter = nn.Parameter(torch.zeros(self.num_actions))

    def compute(self, inputs, role):
        x = F.relu(self.fc1(inputs["observations"]))
        x = F.relu(self.fc2(x))
        return torch.tanh(self.mean_action_layer(x)), {"log_std": self.log_std_parameter}


def main():
    env = gym.make("Pendulum-v1")
    policy = MLP(env.observation_space, None, env.action_space, "cpu", clip_actions=True, clip_mean_actions=True)
    observation, _ = env.reset(seed=0)
    actions, outputs = policy.act({"observations": torch.as_tensor(observation)[None]}, role="policy")
    entropy = policy.get_entropy(role="policy").sum().item()
    print(f"observation {observation.round(3)} -> action {actions.detach().numpy().round(3)}")
    print(f"log_prob {outputs['log_prob'].item():.4f}, entropy {entropy:.4f}")


if __name__ == "__main__":
    main()
