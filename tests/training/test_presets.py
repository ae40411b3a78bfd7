"""Per-environment presets: applied under the command line, never over it."""

from __future__ import annotations

import pytest

from gaussrl.agents.config import PPOConfig
from gaussrl.trainer.cli import parse
from gaussrl.trainer.presets import describe, env_from_args


def test_general_default_discount_is_for_long_horizons():
    assert PPOConfig().discount_factor == 0.99


@pytest.mark.parametrize(
    "args, discount",
    [
        (["train"], 0.95),
        (["train", "--env", "Pendulum-v1"], 0.95),
        (["train", "--env=gaussrl/PendulumNoVel-v1"], 0.9),
        (["train", "--env", "HalfCheetah-v5"], 0.99),
        (["train", "--ppo.discount-factor", "0.97"], 0.97),
        (["train", "--env", "HalfCheetah-v5", "--ppo.discount-factor", "0.9"], 0.9),
    ],
)
def test_preset_applies_under_the_command_line(args, discount):
    command = parse(args)
    assert command.ppo.discount_factor == discount
    assert command.ppo.gae_lambda == (0.9 if command.env == "Pendulum-v1" else 0.95)
    assert command.env == env_from_args(args)


def test_describe_names_the_values():
    assert describe("Pendulum-v1") == (
        "preset for Pendulum-v1: ppo.discount_factor=0.95, ppo.gae_lambda=0.9 (options on the command line override it)"
    )
    assert describe("HalfCheetah-v5") is None
