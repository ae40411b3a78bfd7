"""Stable-Baselines3's DiagGaussianDistribution on the same network (optional: pip install stable-baselines3)."""

from __future__ import annotations

import torch
from stable_baselines3.common.distributions import DiagGaussianDistribution

from benchmarks.cases.common import ACTIONS, LOG_STD, observations
from benchmarks.cases.torch_case import torch_mlp


def make_case(batch: int, seed: int = 0, identity: bool = False):
    net = torch_mlp(seed, identity)
    distribution = DiagGaussianDistribution(ACTIONS)
    log_std = torch.as_tensor(LOG_STD)
    x = torch.as_tensor(observations(batch)[:, : ACTIONS if identity else None])

    def run_act():
        with torch.no_grad():
            distribution.proba_distribution(net(x), log_std)
            actions = distribution.sample()
            return actions, distribution.log_prob(actions), distribution.entropy()

    def run_forward():
        with torch.no_grad():
            return net(x)

    return run_act, run_forward
