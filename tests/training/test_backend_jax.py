"""``gaussrl train --backend jax``: the same run directory, summary, resume and eval as the torch backend."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("jax")

from gaussrl.agents.config import PPOConfig, SACConfig
from gaussrl.trainer.cli import main
from gaussrl.trainer.loop import TrainConfig, Trainer

TINY_PPO = PPOConfig(rollouts=100, learning_epochs=2, mini_batches=4, hidden_sizes=(16, 16))
TINY_SAC = SACConfig(batch_size=32, memory_size=1000, learning_starts=100, random_timesteps=100, hidden_sizes=(16, 16))


def _train(tmp_path, name, **kwargs):
    base = {"out": str(tmp_path / name), "progress": False, "tensorboard": False, "eval_episodes": 2}
    base.update(eval_interval=0, checkpoint_interval=0, ppo=TINY_PPO, sac=TINY_SAC, backend="jax", num_envs=2)
    trainer = Trainer(TrainConfig(**{**base, **kwargs}))
    try:
        return trainer.run(), trainer.agent.state()
    finally:
        trainer.close()


def _assert_same_state(a, b, path=""):
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for key in a:
            _assert_same_state(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same_state(x, y, f"{path}.{i}")
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b, err_msg=path)
    else:
        assert a == b, path


@pytest.mark.parametrize("algo", ["ppo", "sac"])
def test_resume_equals_uninterrupted(tmp_path, algo):
    # 2 envs x 200 steps: the checkpoint at 400 env steps falls on Pendulum's episode boundary.
    whole_summary, whole = _train(tmp_path, "whole", algo=algo, timesteps=800)
    _train(tmp_path, "part", algo=algo, timesteps=400)
    resumed_summary, resumed = _train(tmp_path, "part", algo=algo, timesteps=800, resume=str(tmp_path / "part"))
    _assert_same_state(whole, resumed)
    assert resumed_summary["eval_return_mean"] == whole_summary["eval_return_mean"]
    assert resumed_summary["backend"] == "jax"
    whole_metrics = (tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()
    resumed_metrics = (tmp_path / "part" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(r) for r in resumed_metrics if '"eval"' not in r] == [
        json.loads(r) for r in whole_metrics if '"eval"' not in r
    ]


@pytest.fixture(scope="module")
def jax_run(tmp_path_factory):
    """One short SAC run on the JAX backend through the command line."""
    run = tmp_path_factory.mktemp("jax") / "run"
    argv = ["train", "--backend", "jax", "--algo", "sac", "--timesteps", "600", "--out", str(run), "--no-progress"]
    argv += ["--eval-interval", "300", "--eval-episodes", "3", "--checkpoint-interval", "300"]
    argv += ["--sac.batch-size", "32", "--sac.learning-starts", "200", "--sac.random-timesteps", "200"]
    argv += ["--sac.hidden-sizes", "16", "16"]
    assert main(argv) == 0
    return run


def test_jax_run_writes_the_torch_backends_files(jax_run):
    summary = json.loads((jax_run / "summary.json").read_text())
    assert summary["backend"] == "jax" and summary["algo"] == "sac" and summary["timesteps"] == 600
    assert summary["eval_episodes"] == 3 and np.isfinite(summary["eval_return_mean"])
    assert json.loads((jax_run / "config.json").read_text())["backend"] == "jax"
    kinds = {json.loads(line)["kind"] for line in (jax_run / "metrics.jsonl").read_text().splitlines()}
    assert {"episode", "eval"} <= kinds
    suffixes = {p.suffix for p in (jax_run / "checkpoints").iterdir()}
    assert suffixes == {".json", ".safetensors"}  # tensors and JSON: nothing to unpickle


def test_cli_eval_reproduces_the_final_evaluation(jax_run, capsys):
    summary = json.loads((jax_run / "summary.json").read_text())
    assert main(["eval", str(jax_run), "--episodes", "3"]) == 0
    assert f"{summary['eval_return_mean']:.2f}" in capsys.readouterr().out


def test_cli_resume_with_another_backend_is_refused(jax_run, capsys):
    status = main(["train", "--backend", "torch", "--resume", str(jax_run), "--no-progress"])
    assert status == 2
    assert "--backend cannot change when resuming" in capsys.readouterr().err


def test_recurrent_policy_on_jax_is_a_clear_error():
    with pytest.raises(ValueError, match="policy='gru' trains on the torch backend only"):
        TrainConfig(backend="jax", policy="gru")


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(ValueError, match="backend='tpu' must be one of"):
        TrainConfig(backend="tpu")  # type: ignore[arg-type]
