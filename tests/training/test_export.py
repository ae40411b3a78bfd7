"""Export: ``gaussrl export`` writes one self-contained file that acts as the checkpoint's deterministic policy."""

from __future__ import annotations

import dataclasses
import importlib.util
import shutil

import numpy as np
import pytest
import torch

from gaussrl.agents.config import PPOConfig, SACConfig
from gaussrl.core.errors import GaussrlError, MissingDependencyError, NotSupportedError
from gaussrl.envs import TorchVecEnv, make_vector_env
from gaussrl.io.checkpoint import load_checkpoint
from gaussrl.io.export import DeterministicPolicy, ObservationNormalization, export_onnx
from gaussrl.trainer.build import build_ppo
from gaussrl.trainer.cli import main, read_run_config
from gaussrl.trainer.loop import CHECKPOINTS, TrainConfig, build_agent, train

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.:DeprecationWarning")

TINY = {
    "timesteps": 200,
    "num_envs": 2,
    "progress": False,
    "tensorboard": False,
    "eval_episodes": 1,
    "eval_interval": 0,
    "checkpoint_interval": 0,
    "ppo": PPOConfig(rollouts=50, learning_epochs=1, mini_batches=2, hidden_sizes=(16,)),
    "sac": SACConfig(
        batch_size=16, learning_starts=50, random_timesteps=50, hidden_sizes=(16,), observation_normalization=True
    ),
}


@pytest.fixture(
    scope="module",
    params=[(backend, algo) for backend in ("torch", "jax", "warp") for algo in ("ppo", "sac")],
    ids="-".join,
)
def run_dir(request, tmp_path_factory):
    """A short run of each backend and agent; JAX and Warp runs export through their torch twin."""
    backend, algo = request.param
    out = tmp_path_factory.mktemp(f"{backend}-{algo}") / "run"
    train(TrainConfig(backend=backend, algo=algo, out=str(out), **TINY))
    return out


def _reference_actions(run_dir, observations):
    """The checkpoint's deterministic environment actions, through the agent as evaluation computes them."""
    config = dataclasses.replace(read_run_config(run_dir), resume=None)
    state, _ = load_checkpoint(run_dir / CHECKPOINTS)
    env = TorchVecEnv(make_vector_env(config.env, config.envs), seed=0)
    agent = build_agent(config, env)
    agent.load_state(state["agent"])
    rows = []
    for start in range(0, len(observations), env.num_envs):  # to_env_actions reshapes to (num_envs, ...)
        actions, _ = agent.act_eval(observations[start : start + env.num_envs], [], deterministic=True)
        rows.append(env.to_env_actions(actions))
    env.close()
    return np.concatenate(rows)


def _run_exported(path, fmt, observations):
    if fmt == "onnx":
        onnxruntime = pytest.importorskip("onnxruntime")
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(["actions"], {"observations": observations.numpy()})[0]
    return torch.jit.load(str(path))(observations).detach().numpy()


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_exported_file_alone_matches_the_checkpoint(run_dir, fmt, tmp_path, capsys):
    if fmt == "onnx" and importlib.util.find_spec("onnxscript") is None:
        pytest.skip("onnx export needs the onnx extra")
    built = tmp_path / "built"
    assert main(["export", str(run_dir), "--format", fmt, "--out", str(built / "policy.bin")]) == 0
    assert "wrote" in capsys.readouterr().out
    assert sorted(p.name for p in built.iterdir()) == ["policy.bin"]  # no .data or temporary file beside it
    alone = tmp_path / "elsewhere" / "copy.bin"
    alone.parent.mkdir()
    shutil.copy(built / "policy.bin", alone)
    shutil.rmtree(built)
    observations = torch.as_tensor(np.random.default_rng(0).normal(0.0, 3.0, (64, 3)), dtype=torch.float32)
    want = _reference_actions(run_dir, observations)
    got = _run_exported(alone, fmt, observations)
    assert got.shape == want.shape == (64, 1)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert np.abs(want).max() > 1e-3  # the policy acts: the comparison is not between zeros


def test_default_output_is_in_the_run_directory(run_dir, capsys):
    assert main(["export", str(run_dir), "--format", "torchscript"]) == 0
    assert (run_dir / "policy.pt").is_file()
    assert str(run_dir / "policy.pt") in capsys.readouterr().out
    (run_dir / "policy.pt").unlink()


def test_export_errors_are_one_line(run_dir, tmp_path, capsys):
    assert main(["export", str(run_dir), "--format", "torchscript", "--out", str(tmp_path)]) == 2
    assert f"--out '{tmp_path}' is a directory; name the file to write" in capsys.readouterr().err
    assert main(["export", str(run_dir), "--format", "torchscript", "--checkpoint", "7"]) == 2
    err = capsys.readouterr().err
    assert "no checkpoint of step 7 in" in err and "the steps there are: 200." in err
    assert err.count("\n") == 1


def test_checkpoint_that_does_not_match_config_json(run_dir, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    config = (copy / "config.json").read_text().replace('"hidden_sizes": [\n      16\n    ]', '"hidden_sizes": [32]')
    assert '"hidden_sizes": [32]' in config
    (copy / "config.json").write_text(config)
    for command in (["export", str(copy), "--format", "torchscript"], ["eval", str(copy), "--episodes", "1"]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert "does not match the run's config.json" in err and "Restore the run's own config.json" in err
        assert err.count("\n") == 1


def test_missing_onnx_packages_name_the_extra(monkeypatch, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxscript" else real(name, *a))
    env = TorchVecEnv(make_vector_env("Pendulum-v1", 2), seed=0)
    agent = build_ppo(PPOConfig(rollouts=8, mini_batches=2), env.observation_space, env.action_space, num_envs=2,
                      policy="mlp", device="cpu")  # fmt: skip
    expected = r'missing: [^)]*onnxscript\); install them with pip install "gaussrl\[onnx\]"'
    with pytest.raises(MissingDependencyError, match=expected):
        export_onnx(DeterministicPolicy(agent.policy, env.env_action_space), tmp_path / "p.onnx")
    assert not tmp_path.joinpath("p.onnx").exists()
    assert isinstance(MissingDependencyError("x"), GaussrlError | ImportError)
    env.close()


def test_normalization_and_rescaling_in_the_module():
    env = TorchVecEnv(make_vector_env("MountainCarContinuous-v0", 2), seed=0)
    agent = build_ppo(PPOConfig(rollouts=8, mini_batches=2), env.observation_space, env.action_space, num_envs=2,
                      policy="mlp", device="cpu")  # fmt: skip
    mean, std = torch.tensor([0.5, -0.02]), torch.tensor([0.3, 0.05])
    module = DeterministicPolicy(agent.policy, env.env_action_space, ObservationNormalization(mean, std, 5.0))
    x = torch.tensor([[0.8, 0.0], [100.0, -100.0]])
    normalised = ((x - mean) / std).clamp(-5.0, 5.0)  # the second row is clipped
    expected = agent.policy.compute({"observations": normalised}, "policy")[0].clamp(-1.0, 1.0)  # Box [-1, 1]
    torch.testing.assert_close(module(x), expected)
    env.close()


def test_recurrent_export_is_refused_with_a_reason():
    env = TorchVecEnv(make_vector_env("Pendulum-v1", 2), seed=0)
    agent = build_ppo(PPOConfig(rollouts=16, mini_batches=2), env.observation_space, env.action_space, num_envs=2,
                      policy="gru", device="cpu")  # fmt: skip
    with pytest.raises(NotSupportedError, match="exporting recurrent policies is not supported"):
        DeterministicPolicy(agent.policy, env.env_action_space)
    env.close()
