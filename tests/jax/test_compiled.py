"""The compiled gymnax path: gymnax's Pendulum against Gymnasium's, a smoke run, two devices.

Resume, signals and divergence: ``test_compiled_stops.py``.
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import numpy as np
import pytest

jax = pytest.importorskip("jax")
pytest.importorskip("gymnax", reason="the compiled path needs gymnax (pip install 'gaussrl[gymnax]')")

import gymnasium  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from gaussrl.core.errors import ConfigError  # noqa: E402
from gaussrl.envs import gymnax as gymnax_envs  # noqa: E402
from gaussrl.trainer.cli import main  # noqa: E402
from tests.jax.conftest import run_script  # noqa: E402

TINY = ["--num-envs", "8", "--ppo.rollouts", "8", "--ppo.learning-epochs", "2", "--ppo.mini-batches", "2"]
TINY += ["--ppo.hidden-sizes", "16", "16", "--eval-episodes", "2", "--no-progress", "--no-tensorboard"]


def _train(out, *extra):
    argv = ["train", "--backend", "jax", "--env", "gymnax/Pendulum-v1", *TINY, "--out", str(out), *extra]
    assert main(argv) == 0
    return json.loads((Path(out) / "summary.json").read_text())


def test_gymnax_pendulum_steps_as_gymnasium_pendulum():
    # Same initial state, same actions: the two implementations must produce the same trajectory.
    env = gymnax_envs.make("gymnax/Pendulum-v1", 1)
    reference = gymnasium.make("Pendulum-v1")
    reference.reset(seed=0)
    theta, theta_dot = reference.unwrapped.state
    _, state = env.reset(jax.random.key(0))
    state = state.replace(theta=jnp.asarray([theta], jnp.float32), theta_dot=jnp.asarray([theta_dot], jnp.float32))
    actions = np.random.default_rng(0).uniform(-1.2, 1.2, size=(50, 1)).astype(np.float32)
    for t, action in enumerate(actions):
        step, state = env.step(jax.random.key(t), state, jnp.asarray(action[None]))
        observation, reward, terminated, truncated, _ = reference.step(np.clip(action, -1.0, 1.0) * 2.0)
        np.testing.assert_allclose(np.asarray(step.observations[0]), observation, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(float(step.rewards[0, 0]), reward, rtol=1e-4, atol=1e-4)
        assert not bool(step.terminated[0, 0]) and not truncated and not terminated


def test_gymnax_time_limit_is_a_truncation():
    env = gymnax_envs.make("gymnax/Pendulum-v1", 2)
    _, state = env.reset(jax.random.key(0))
    step = jax.jit(env.step)
    for t in range(200):
        result, state = step(jax.random.key(t), state, jnp.zeros((2, 1)))
        assert bool(result.truncated.all()) == (t == 199)
    assert not bool(result.terminated.any())
    assert not np.allclose(np.asarray(result.observations), np.asarray(result.final_observations))


def test_bad_ids_and_backends_are_clear_errors(tmp_path, capsys):
    assert main(["train", "--env", "gymnax/Pendulum-v1", "--out", str(tmp_path / "a"), "--no-progress"]) == 2
    assert "--backend jax" in capsys.readouterr().err
    assert main(["train", "--backend", "jax", "--env", "gymnax/Nope-v0", "--out", str(tmp_path / "b")]) == 2
    assert "registered_envs" in capsys.readouterr().err
    assert main(["train", "--backend", "jax", "--env", "gymnax/CartPole-v1", "--out", str(tmp_path / "c")]) == 2
    assert "Box" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="PPO with an MLP"):
        from gaussrl.trainer.compiled import check_config
        from gaussrl.trainer.loop import TrainConfig

        check_config(TrainConfig(backend="jax", env="gymnax/Pendulum-v1", algo="sac"))
    # TrainConfig itself refuses data-parallel processes on the jax backend, compiled or not.
    with pytest.raises(ConfigError, match="nproc=2: data-parallel processes train on the torch backend only"):
        TrainConfig(backend="jax", env="gymnax/Pendulum-v1", nproc=2)


@pytest.mark.slow
def test_smoke_run_writes_everything(tmp_path, capsys):
    summary = _train(tmp_path / "run", "--timesteps", "512", "--eval-interval", "256", "--checkpoint-interval", "256")
    assert summary["backend"] == "jax" and summary["timesteps"] == 512 and summary["devices"] == 1
    assert np.isfinite(summary["eval_return_mean"]) and np.isfinite(summary["gymnasium_eval_return_mean"])
    assert summary["env_steps_per_s"] > 0
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["backend"] == "jax" and config["env"] == "gymnax/Pendulum-v1"
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert {r["kind"] for r in records} == {"update", "eval"}  # no 200-step episode ends within 64 steps per env
    assert [r["step"] for r in records if r["kind"] == "eval"] == [256, 512]
    assert all(np.isfinite(r["policy_loss"]) for r in records if r["kind"] == "update")
    assert len(list((tmp_path / "run" / "checkpoints").glob("step_*.json"))) == 2
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "run"), "--episodes", "2"]) == 0  # replays the final evaluation
    assert f"{summary['eval_return_mean']:.2f}" in capsys.readouterr().out
    assert main(["eval", str(tmp_path / "run"), "--stochastic"]) == 2
    assert "mean actions only" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore:`torch.jit.:DeprecationWarning")
def test_export_of_a_compiled_run_acts_as_its_jax_policy(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    from gaussrl.io.checkpoint import load_checkpoint
    from gaussrl.trainer.cli import read_run_config
    from gaussrl.trainer.compiled import build_run
    from gaussrl.trainer.compiled_state import carry_from_tensors, policy_mean_actions

    run = tmp_path / "run"
    _train(run, "--timesteps", "512")
    assert main(["export", str(run), "--format", "torchscript", "--out", str(tmp_path / "policy.pt")]) == 0
    assert "wrote" in capsys.readouterr().out
    exported = torch.jit.load(str(tmp_path / "policy.pt"))
    observations = np.random.default_rng(0).normal(0.0, 3.0, (64, 3)).astype(np.float32)
    got = exported(torch.from_numpy(observations)).detach().numpy()
    # The oracle: the run's own JAX policy (mean actions) and the gymnax environment's action mapping.
    config = read_run_config(run)
    models, env, template = build_run(config)
    carry = carry_from_tensors(template, load_checkpoint(run / "checkpoints")[0]["carry"])
    act = policy_mean_actions(models, carry.ppo.params["policy"], carry.obs_stats, config.ppo.observation_normalization)
    want = np.asarray(env.to_env_actions(act(jnp.asarray(observations))))
    assert got.shape == want.shape == (64, 1)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert np.abs(want).max() > 1e-3 and np.abs(want).max() <= 2.0  # acts, within gymnax Pendulum's [-2, 2]


TWO_DEVICES = textwrap.dedent(
    """
    import jax, jax.numpy as jnp, numpy as np
    from jax.sharding import Mesh, PartitionSpec as P
    from gymnasium import spaces
    from gaussrl.agents.config import PPOConfig
    from gaussrl.agents.jax import networks, ppo_core

    assert jax.device_count() == 2
    config = PPOConfig(rollouts=6, learning_epochs=3, mini_batches=1, hidden_sizes=(8,))
    policy = networks.GaussianMLPPolicy(3, spaces.Box(-1, 1, (1,)), hidden_sizes=(8,))
    value = networks.ValueMLP(3, hidden_sizes=(8,))
    policy.init_state_dict(key=0); value.init_state_dict(key=1)
    models = ppo_core.PPOModels(policy, value)
    rng = np.random.default_rng(0)
    f = lambda *shape: jnp.asarray(rng.normal(size=shape), jnp.float32)
    rollout = ppo_core.Rollout(f(6, 4, 3), f(6, 4, 1), f(6, 4, 1) - 1, f(6, 4, 1), f(6, 4, 1) - 1, f(6, 4, 1),
                               jnp.asarray(rng.random((6, 4, 1)) < 0.2))
    nxt, key = f(4, 3), jax.random.key(0)  # threefry: Philox does not lower inside shard_map
    state = ppo_core.init_state(models, config)
    single, single_metrics = ppo_core.make_update(models, config)(state, rollout, nxt, key)
    mesh = Mesh(np.array(jax.devices()), ("d",))
    update = ppo_core.make_update(models, config, axis_name="d")
    whole = lambda tree: jax.tree_util.tree_map(lambda _: P(), tree)
    split = ppo_core.Rollout(*[P(None, "d")] * 7)
    sharded = jax.jit(jax.shard_map(update, mesh=mesh, in_specs=(whole(state), split, P("d"), P()),
                                    out_specs=(whole(state), P()), check_vma=False))
    double, double_metrics = sharded(state, rollout, nxt, key)
    for a, b in zip(jax.tree_util.tree_leaves(single), jax.tree_util.tree_leaves(double)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)
    for name in single_metrics:
        np.testing.assert_allclose(float(single_metrics[name]), float(double_metrics[name]), rtol=1e-4, atol=1e-6)
    assert not np.allclose(np.asarray(state.params["policy"]["params"]["Dense_0"]["kernel"]),
                           np.asarray(double.params["policy"]["params"]["Dense_0"]["kernel"]))

    from gaussrl.trainer.cli import main
    import json, sys
    out = sys.argv[1]
    argv = ["train", "--backend", "jax", "--env", "gymnax/Pendulum-v1", "--num-envs", "8", "--ppo.rollouts", "8",
            "--ppo.learning-epochs", "2", "--ppo.mini-batches", "2", "--ppo.hidden-sizes", "16", "16",
            "--eval-episodes", "2", "--no-progress", "--no-tensorboard", "--timesteps", "256", "--out", out]
    assert main(argv) == 0
    summary = json.load(open(out + "/summary.json"))
    assert summary["devices"] == 2 and np.isfinite(summary["eval_return_mean"]), summary
    assert main(argv[:-4] + ["--num-envs", "7", "--out", out + "x"]) == 2
    print("OK")
    """
)


@pytest.mark.slow
def test_two_devices_average_to_the_one_device_update(tmp_path):
    # One full-batch minibatch per epoch: the data-parallel update must equal the single-device one
    # (gradients, advantage and value statistics averaged over the devices), then a 2-device run.
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu"}
    assert run_script(tmp_path, TWO_DEVICES, tmp_path / "run", env) == "OK"


def test_gymnax_preset_applies_under_the_command_line():
    from gaussrl.trainer.cli import parse

    config = parse(["train", "--backend", "jax", "--env", "gymnax/Pendulum-v1"])
    assert config.envs == 32 and config.timesteps == 200_000 and config.ppo.hidden_sizes == (32, 32)
    assert config.ppo.discount_factor == 0.95 and config.backend == "jax" and config.tensorboard is False
    config = parse(["train", "--backend", "jax", "--env", "gymnax/Pendulum-v1", "--num-envs", "8", "--timesteps", "9"])
    assert config.envs == 8 and config.timesteps == 9 and config.ppo.rollouts == 64
