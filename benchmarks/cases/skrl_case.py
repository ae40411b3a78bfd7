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
    def __init__(self, net: nn.Module):
        Model.__init__(
            self,
            observation_space=gym.spaces.Box(-np.inf, np.inf, (OBSERVATIONS,)),
            state_space=None,
            action_space=gym.spaces.Box(-1.0, 1.0, (ACTIONS,)),
            device="cpu",
        )
        GaussianMixin.__init__(self)
        self.net = net
        self.log_std_parameter = nn.Parameter(torch.as_tensor(LOG_STD))

    def compute(self, inputs, role):
        return self.net(inputs["observations"]), {"log_std": self.log_std_parameter}


def make_case(batch: int, seed: int = 0):
    net = torch_mlp(seed)
    policy = SkrlPolicy(net)
    x = torch.as_tensor(observations(batch))
    inputs = {"observations": x}

    def run_act():
        with torch.no_grad():
            actions, outputs = policy.act(inputs, role="policy")
            return actions, outputs["log_prob"], policy.get_entropy(role="policy")

    def run_forward():
        with torch.no_grad():
            return net(x)

    return run_act, run_forward
