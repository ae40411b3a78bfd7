"""skrl's torch GaussianMixin with the same network and weights (optional: pip install skrl)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from skrl.models.torch import GaussianMixin, Model
from torch import nn

from benchmarks.cases.common import ACTIONS, LOG_STD, OBSERVATIONS, observations
from benchmarks.cases.torch_case import torch_mlp


class SkrlPolicy(GaussianMixin, Model):
    def __init__(self, net: nn.Module, num_observations: int = OBSERVATIONS):
        Model.__init__(
            self,
            observation_space=gym.spaces.Box(-np.inf, np.inf, (num_observations,)),
            state_space=None,
            action_space=gym.spaces.Box(-1.0, 1.0, (ACTIONS,)),
            device="cpu",
        )
        GaussianMixin.__init__(self)
        self.net = net
        self.log_std_parameter = nn.Parameter(torch.as_tensor(LOG_STD))

    def compute(self, inputs, role):
        return self.net(inputs["observations"]), {"log_std": self.log_std_parameter}


def make_case(batch: int, seed: int = 0, identity: bool = False):
    net = torch_mlp(seed, identity)
    policy = SkrlPolicy(net, ACTIONS if identity else OBSERVATIONS)
    x = torch.as_tensor(observations(batch)[:, : ACTIONS if identity else None])
    inputs = {"observations": x}

    def run_act():
        with torch.no_grad():
            actions, outputs = policy.act(inputs, role="policy")
            return actions, outputs["log_prob"], policy.get_entropy(role="policy")

    def run_forward():
        with torch.no_grad():
            return net(x)

    return run_act, run_forward


def make_training_case(batch: int, seed: int = 0):
    net = torch_mlp(seed)
    policy = SkrlPolicy(net)
    x = torch.as_tensor(observations(batch))
    inputs = {"observations": x, "taken_actions": torch.randn(batch, ACTIONS)}

    def run_train():
        _, outputs = policy.act(inputs, role="policy")
        (outputs["log_prob"].mean() + policy.get_entropy(role="policy").mean()).backward()

    def run_forward_backward():
        net(x).mean().backward()

    return run_train, run_forward_backward
