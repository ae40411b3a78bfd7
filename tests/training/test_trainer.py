"""Trainer tests: checkpoints (atomic, corrupt), resume equals uninterrupted, CLI errors, a smoke run."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

import gaussrl.io.checkpoint as checkpoint_module
from gaussrl.agents.config import PPOConfig, SACConfig
from gaussrl.io.checkpoint import CheckpointError, latest_checkpoint, load_checkpoint, save_checkpoint
from gaussrl.trainer.cli import main
from gaussrl.trainer.loop import TrainConfig, Trainer

TINY_PPO = PPOConfig(rollouts=100, learning_epochs=2, mini_batches=4, hidden_sizes=(16, 16))
TINY_SAC = SACConfig(batch_size=32, memory_size=1000, learning_starts=100, random_timesteps=100, hidden_sizes=(16, 16))


def _config(tmp_path, name, **kwargs):
    base = {
        "out": str(tmp_path / name),
        "progress": False,
        "tensorboard": False,
        "eval_episodes": 2,
        "eval_interval": 0,
        "checkpoint_interval": 0,
        "ppo": TINY_PPO,
        "sac": TINY_SAC,
    }
    return TrainConfig(**{**base, **kwargs})


def _train(config):
    trainer = Trainer(config)
    try:
        summary = trainer.run()
        return summary, trainer.agent.state()
    finally:
        trainer.close()


def _assert_same_state(a, b, path=""):
    if isinstance(a, torch.Tensor):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=f"differs at {path}")
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for key in a:
            _assert_same_state(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list | tuple):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same_state(x, y, f"{path}.{i}")
    else:
        assert a == b, path


RETURN_SCALED_PPO = dataclasses.replace(TINY_PPO, reward_normalization=True, activation="relu", rollouts=50)


@pytest.mark.parametrize(
    ("algo", "ppo"),
    [("ppo", TINY_PPO), ("sac", TINY_PPO), ("ppo", RETURN_SCALED_PPO)],
    ids=["ppo", "sac", "ppo-scaled"],
)
def test_resume_equals_uninterrupted(tmp_path, algo, ppo):
    # 2 envs x 200 steps: the checkpoint at 400 env steps falls on Pendulum's episode boundary (an environment's
    # own state mid-episode is not part of a checkpoint).
    common = {"algo": algo, "num_envs": 2, "ppo": ppo}
    whole_summary, whole = _train(_config(tmp_path, "whole", timesteps=800, **common))
    _train(_config(tmp_path, "part", timesteps=400, **common))
    if ppo.reward_normalization:
        assert whole["reward_scaler"]["count"].item() == 800  # one return per environment step
    resumed_config = _config(tmp_path, "part", timesteps=800, resume=str(tmp_path / "part"), **common)
    resumed_summary, resumed = _train(resumed_config)
    _assert_same_state(whole, resumed)
    assert resumed_summary["eval_return_mean"] == whole_summary["eval_return_mean"]
    whole_metrics = (tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()
    resumed_metrics = (tmp_path / "part" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(r) for r in resumed_metrics if '"eval"' not in r] == [
        json.loads(r) for r in whole_metrics if '"eval"' not in r
    ]


def test_checkpoint_round_trip_keeps_integer_keys_and_dtypes(tmp_path):
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    state = {"optimizer": optimizer.state_dict(), "flag": torch.tensor([True, False]), "n": 3, "x": None}
    save_checkpoint(tmp_path, 7, state, {"algo": "ppo"})
    loaded, meta = load_checkpoint(tmp_path)
    assert meta == {"algo": "ppo"}
    assert set(loaded["optimizer"]["state"]) == {0, 1}
    fresh = torch.optim.Adam(model.parameters())
    fresh.load_state_dict(loaded["optimizer"])
    torch.testing.assert_close(fresh.state_dict()["state"][0]["exp_avg"], optimizer.state_dict()["state"][0]["exp_avg"])
    assert loaded["flag"].dtype == torch.bool and loaded["n"] == 3 and loaded["x"] is None


def test_atomic_checkpoint_survives_a_crash_mid_write(tmp_path, monkeypatch):
    save_checkpoint(tmp_path, 1, {"w": torch.ones(3)}, {})
    real_save = checkpoint_module._save_tensors

    def crash(tensors, filename):
        real_save(tensors, filename)
        with open(filename, "r+b") as handle:
            handle.truncate(10)  # half-written file...
        raise KeyboardInterrupt("simulated crash")  # ...and the process dies

    monkeypatch.setattr(checkpoint_module, "_save_tensors", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path, 2, {"w": torch.zeros(3)}, {})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step_000000000001.json", "step_000000000001.safetensors"]
    state, _ = load_checkpoint(tmp_path)
    torch.testing.assert_close(state["w"], torch.ones(3))


def test_corrupt_or_incomplete_checkpoints_are_reported(tmp_path):
    save_checkpoint(tmp_path, 1, {"w": torch.ones(3)}, {})
    tensors = tmp_path / "step_000000000001.safetensors"
    data = bytearray(tensors.read_bytes())
    data[-1] ^= 0xFF
    tensors.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="is corrupt: its SHA-256 does not match"):
        load_checkpoint(tmp_path)
    tensors.unlink()
    with pytest.raises(CheckpointError, match="is incomplete"):
        load_checkpoint(tmp_path)
    latest_checkpoint(tmp_path).write_text("{not json")
    with pytest.raises(CheckpointError, match="its JSON does not parse"):
        load_checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match="no checkpoint found"):
        load_checkpoint(tmp_path / "empty")


def _cli_error(capsys, argv):
    status = main(argv)
    captured = capsys.readouterr()
    assert status == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gaussrl: error: "), captured.err
    assert "Traceback" not in captured.err
    return lines[0]


def test_cli_unknown_env_id(capsys, tmp_path):
    message = _cli_error(capsys, ["train", "--env", "NoSuchEnv-v9", "--out", str(tmp_path / "r")])
    assert "cannot make environment 'NoSuchEnv-v9'" in message


def test_cli_action_space_not_a_box(capsys, tmp_path):
    message = _cli_error(capsys, ["train", "--env", "CartPole-v1", "--out", str(tmp_path / "r")])
    assert "need a continuous Box action space" in message


def test_cli_missing_checkpoint(capsys, tmp_path):
    (tmp_path / "run").mkdir()
    assert "a gaussrl run directory?" in _cli_error(capsys, ["eval", str(tmp_path / "run")])
    message = _cli_error(capsys, ["train", "--resume", str(tmp_path / "run"), "--no-progress"])
    assert "a gaussrl run directory?" in message
    (tmp_path / "run" / "config.json").write_text(json.dumps(TrainConfig().to_json()))
    message = _cli_error(capsys, ["train", "--resume", str(tmp_path / "run"), "--no-progress"])
    assert "no checkpoint found" in message


def test_cli_invalid_option_value(capsys, tmp_path):
    # tyro reports values rejected by the config's validation as a usage error (exit status 2).
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--ppo.ratio-clip", "2", "--out", str(tmp_path / "r")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "ratio_clip=2.0 is outside (0.0, 1.0)" in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """One short PPO run through the command line, shared by the tests below."""
    run = tmp_path_factory.mktemp("smoke") / "run"
    argv = ["train", "--timesteps", "2000", "--num-envs", "2", "--out", str(run), "--no-progress"]
    argv += ["--eval-interval", "1000", "--eval-episodes", "3", "--checkpoint-interval", "1000"]
    argv += ["--ppo.rollouts", "200", "--ppo.mini-batches", "4", "--ppo.learning-epochs", "2"]
    assert main(argv) == 0
    return run


def test_smoke_run_writes_everything(smoke_run):
    summary = json.loads((smoke_run / "summary.json").read_text())
    for key in ("algo", "env", "timesteps", "seed", "eval_return_mean", "eval_return_std", "eval_episodes"):
        assert key in summary
    assert summary["algo"] == "ppo" and summary["env"] == "Pendulum-v1" and summary["timesteps"] == 2000
    assert summary["eval_episodes"] == 3 and summary["wall_time_s"] > 0 and summary["env_steps_per_s"] > 0
    config = json.loads((smoke_run / "config.json").read_text())
    assert config["ppo"]["rollouts"] == 200 and "sac" not in config
    kinds = {json.loads(line)["kind"] for line in (smoke_run / "metrics.jsonl").read_text().splitlines()}
    assert kinds == {"episode", "update", "eval"}
    assert (smoke_run / "checkpoints").is_dir() and any((smoke_run / "tensorboard").iterdir())


def test_cli_eval_reproduces_the_final_evaluation(smoke_run, capsys):
    summary = json.loads((smoke_run / "summary.json").read_text())
    assert main(["eval", str(smoke_run), "--episodes", "3"]) == 0
    printed = capsys.readouterr().out
    assert f"{summary['eval_return_mean']:.2f}" in printed
    assert main(["eval", str(smoke_run), "--episodes", "2", "--stochastic"]) == 0
    assert "stochastic" in capsys.readouterr().out


def test_cli_plot_writes_png(smoke_run):
    assert main(["plot", str(smoke_run)]) == 0
    assert (smoke_run / "learning_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_resume_from_another_algorithm(smoke_run, capsys):
    message = _cli_error(capsys, ["train", "--algo", "sac", "--resume", str(smoke_run), "--no-progress"])
    assert message.startswith("gaussrl: error: --algo cannot change when resuming:")
    assert "was trained with algo='ppo'; drop --algo" in message


def test_cli_corrupt_checkpoint(smoke_run, capsys, tmp_path):
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("config.json", "checkpoints"):
        source = smoke_run / name
        if source.is_dir():
            (copy / name).mkdir()
            for item in source.iterdir():
                (copy / name / item.name).write_bytes(item.read_bytes())
        else:
            (copy / name).write_bytes(source.read_bytes())
    latest = latest_checkpoint(copy / "checkpoints").with_suffix(".safetensors")
    latest.write_bytes(latest.read_bytes()[:100])
    assert "is corrupt" in _cli_error(capsys, ["eval", str(copy)])


def test_recurrent_ppo_trains_briefly(tmp_path):
    config = _config(
        tmp_path,
        "lstm",
        env="gaussrl/PendulumNoVel-v1",
        policy="lstm",
        num_envs=2,
        timesteps=400,
        ppo=dataclasses.replace(TINY_PPO, sequence_length=20, mini_batches=2),
    )
    summary, state = _train(config)
    assert summary["timesteps"] == 400 and state["updates"] == 2
    assert len(state["policy_states"]) == 2  # LSTM: hidden and cell states


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"timesteps": True}, "timesteps=True must be a positive integer"),
        ({"timesteps": 0}, "timesteps=0 must be a positive integer"),
        ({"num_envs": True}, "num_envs=True must be a positive integer, or None"),
        ({"num_envs": 2.5}, "num_envs=2.5 must be a positive integer, or None"),
        ({"num_envs": 0}, "num_envs=0 must be a positive integer, or None"),
    ],
)
def test_train_config_rejects_non_integer_counts(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kwargs)
