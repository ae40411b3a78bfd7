"""Baseline: a plain eager Gaussian head written by hand around the bare network."""

from __future__ import annotations

import math

import torch

from benchmarks.cases.common import ACTIONS, LOG_STD, observations
from benchmarks.cases.torch_case import torch_mlp

LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def make_case(batch: int, seed: int = 0, identity: bool = False):
    net = torch_mlp(seed, identity)
    log_std = torch.as_tensor(LOG_STD)
    x = torch.as_tensor(observations(batch)[:, : ACTIONS if identity else None])

    def run_act():
        with torch.no_grad():
            mean = net(x)
            std = log_std.exp()
            actions = mean + std * torch.randn_like(mean)
            z = (actions - mean) / std
            log_prob = (-0.5 * z * z - log_std - LOG_SQRT_2PI).sum(-1, keepdim=True)
            entropy = (0.5 + LOG_SQRT_2PI + log_std).expand_as(mean)
            return actions, log_prob, entropy

    def run_forward():
        with torch.no_grad():
            return net(x)

    return run_act, run_forward


def make_training_case(batch: int, seed: int = 0):
    net = torch_mlp(seed)
    log_std = torch.nn.Parameter(torch.as_tensor(LOG_STD))
    x = torch.as_tensor(observations(batch))
    taken = torch.randn(batch, log_std.shape[0])

    def run_train():
        mean = net(x)
        std = log_std.exp()
        actions = mean + std * torch.randn_like(mean)  # noqa: F841 (the head samples, as act() does)
        z = (taken - mean) / std
        log_prob = (-0.5 * z * z - log_std - LOG_SQRT_2PI).sum(-1, keepdim=True)
        entropy = (0.5 + LOG_SQRT_2PI + log_std).expand_as(mean)
        (log_prob.mean() + entropy.mean()).backward()

    def run_forward_backward():
        net(x).mean().backward()

    return run_train, run_forward_backward
