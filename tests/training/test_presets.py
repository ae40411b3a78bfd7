"""Per-environment presets: applied under the command line, never over it."""

from __future__ import annotations

import json

import pytest

from gaussrl.agents.config import PPOConfig, SACConfig
from gaussrl.trainer.cli import main, parse
from gaussrl.trainer.presets import describe, env_from_args, preset_for
from tests.training.run_helpers import TINY


def test_general_default_discount_is_for_long_horizons():
    assert PPOConfig().discount_factor == 0.99


@pytest.mark.parametrize(
    "args, discount",
    [
        (["train"], 0.95),
        (["train", "--env", "Pendulum-v1"], 0.95),
        (["train", "--env=gaussrl/PendulumNoVel-v1"], 0.9),
        (["train", "--env", "MountainCarContinuous-v0"], 0.99),
        (["train", "--env", "HalfCheetah-v5"], 0.98),
        (["train", "--ppo.discount-factor", "0.97"], 0.97),
        (["train", "--env", "HalfCheetah-v5", "--ppo.discount-factor", "0.9"], 0.9),
    ],
)
def test_preset_applies_under_the_command_line(args, discount):
    command = parse(args)
    assert command.ppo.discount_factor == discount
    lambdas = {"Pendulum-v1": 0.9, "HalfCheetah-v5": 0.92}
    assert command.ppo.gae_lambda == lambdas.get(command.env, 0.95)
    assert command.env == env_from_args(args)


@pytest.mark.parametrize("env", ["Ant-v5", "Hopper-v4", "Walker2d-v5", "Humanoid-v5", "Swimmer-v5", "HalfCheetah-v3"])
def test_every_mujoco_locomotion_task_gets_the_family_preset(env):
    command = parse(["train", "--algo", "sac", "--env", env])
    assert command.num_envs == 1 and command.eval_episodes == 10
    assert command.ppo.reward_normalization and command.ppo.observation_normalization
    assert not command.ppo.value_normalization
    assert command.sac.hidden_sizes == (256, 256)
    assert command.sac.learning_starts == 10_000 and command.sac.critic_learning_rate == 3e-4
    cheetah = env.startswith(("HalfCheetah", "Ant"))  # the tasks with their own tuned PPO
    assert command.ppo.rollouts == (512 if cheetah else 2048)
    assert command.ppo.learning_rate_scheduler == ("constant" if cheetah else "linear")
    assert command.ppo.hidden_sizes == ((256, 256) if cheetah else (64, 64))
    assert command.ppo.activation == ("relu" if cheetah else "tanh")
    assert command.ppo.initialization == ("uniform" if cheetah else "orthogonal")


def test_a_task_tuned_value_stays_with_its_task():
    cheetah = preset_for("HalfCheetah-v5")
    hopper = preset_for("Hopper-v5")
    assert cheetah is not None and hopper is not None
    assert cheetah[0] == "the MuJoCo locomotion family with HalfCheetah's tuned PPO"
    assert cheetah[1]["ppo"]["learning_rate"] == 2.0633e-5 and hopper[1]["ppo"]["learning_rate"] == 3e-4
    assert cheetah[1]["sac"] == hopper[1]["sac"] and cheetah[1]["train"] == hopper[1]["train"]
    assert cheetah[1]["ppo"]["reward_normalization"]  # the family's values under the task's
    assert preset_for("Ant-v5") == ("the MuJoCo locomotion family with Ant's tuned PPO", cheetah[1])


@pytest.mark.parametrize("env", ["InvertedPendulum-v5", "HalfCheetahish-v5", "Reacher-v5", "Pendulum-v1"])
def test_other_tasks_do_not_get_the_mujoco_preset(env):
    command = parse(["train", "--env", env])
    assert not command.ppo.reward_normalization and command.ppo.hidden_sizes == (64, 64)
    assert preset_for(env) is None or preset_for(env)[0] == env


def test_the_family_preset_stays_under_the_command_line():
    command = parse(["train", "--env", "Hopper-v5", "--ppo.no-reward-normalization", "--num-envs", "4"])
    assert not command.ppo.reward_normalization and command.num_envs == 4
    assert command.ppo.rollouts == 2048


def test_describe_names_the_values():
    assert describe("Pendulum-v1") == (
        "preset for Pendulum-v1: ppo.discount_factor=0.95, ppo.gae_lambda=0.9 (options on the command line override it)"
    )
    assert describe("MountainCarContinuous-v0") is None
    assert describe("Pendulum-v1", "sac") is None  # its preset is PPO's alone: no empty note
    note = describe("Ant-v5", "sac")
    assert note.startswith("preset for the MuJoCo locomotion family: sac.hidden_sizes=(256, 256), ")
    assert "ppo." not in note and "num_envs=1" in note
    cheetah = describe("HalfCheetah-v5", "ppo")
    assert cheetah.startswith("preset for the MuJoCo locomotion family with HalfCheetah's tuned PPO: ")
    assert "ppo.learning_rate=2.0633e-05" in cheetah and "sac." not in cheetah
    assert describe("HalfCheetah-v5", "sac").startswith("preset for the MuJoCo locomotion family: sac.")


@pytest.mark.parametrize("env", ["Hopper-v5", "HalfCheetah-v5", "Pendulum-v1"])
def test_no_preset_starts_from_the_plain_defaults_under_the_command_line(env):
    command = parse(["train", "--env", env, "--no-preset", "--ppo.learning-rate", "0.002"])
    assert command.env == env and not command.preset
    assert command.ppo == PPOConfig(learning_rate=0.002) and command.sac == SACConfig()
    assert command.num_envs is None and command.eval_episodes == 20
    assert parse(["train", "--env", env, "--no-preset", "--preset"]).ppo == parse(["train", "--env", env]).ppo
    assert parse(["train", "--env", env]).preset


@pytest.mark.parametrize("flag", [[], ["--no-preset"]])
def test_the_run_notes_its_preset_only_when_it_applies(tmp_path, capsys, flag):
    capsys.readouterr()
    argv = ["train", "--timesteps", "128", "--out", str(tmp_path / "run"), *TINY, *flag]
    assert main(argv) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if line.startswith("gaussrl: preset for")]
    assert notes == ([] if flag else [f"gaussrl: {describe('Pendulum-v1', 'ppo')}"])
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["preset"] is not bool(flag)
    assert saved["ppo"]["discount_factor"] == (0.99 if flag else 0.95)
