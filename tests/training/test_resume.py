"""--resume trains with the run's own configuration; --checkpoint STEP; a corrupt newest checkpoint.

Each test does the misuse, then checks what the user sees (one line) and what is on disk.
"""

from __future__ import annotations

import json

import pytest

from gaussrl.core.errors import ConfigError
from gaussrl.trainer.cli import main
from gaussrl.trainer.loop import ResumeError, TrainConfig, Trainer
from tests.training.run_helpers import TINY, checkpoint_steps, cli_error, records, strict_json


@pytest.fixture
def seed1_run(tmp_path):
    """A finished 256-step run with seed 1, no observation normalisation, checkpoints at 128 and 256."""
    run = tmp_path / "run"
    argv = ["train", "--timesteps", "256", "--checkpoint-interval", "128", "--seed", "1", "--out", str(run)]
    assert main([*argv, "--ppo.no-observation-normalization", *TINY]) == 0
    return run


def test_resume_keeps_the_runs_configuration(seed1_run, capsys):
    config_before = json.loads((seed1_run / "config.json").read_text())
    capsys.readouterr()
    assert main(["train", "--resume", str(seed1_run)]) == 0  # used to train a seed-0 run to 100k steps
    assert f"resuming {seed1_run} from its checkpoint of step 256" in capsys.readouterr().err
    summary = strict_json((seed1_run / "summary.json").read_text())
    assert summary["timesteps"] == 256 and summary["seed"] == 1 and summary["resumed"] is True
    config = json.loads((seed1_run / "config.json").read_text())
    assert config["seed"] == 1 and config["ppo"]["observation_normalization"] is False
    assert config["timesteps"] == 256 and config["ppo"] == config_before["ppo"]
    # The options that may change do; an unchanged option typed with the run's own value is accepted.
    assert main(["train", "--resume", str(seed1_run), "--timesteps", "384", "--seed", "1"]) == 0
    assert strict_json((seed1_run / "summary.json").read_text())["timesteps"] == 384
    assert json.loads((seed1_run / "config.json").read_text())["timesteps"] == 384
    assert checkpoint_steps(seed1_run) == [128, 256, 384]


@pytest.mark.parametrize(
    ("option", "saved"),
    [
        (["--seed", "0"], "seed=1"),
        (["--ppo.observation-normalization"], "ppo.observation_normalization=False"),
        (["--ppo.learning-rate=0.01"], "ppo.learning_rate=0.001"),
        (["--num-envs", "4"], "num_envs=2"),
    ],
)
def test_resume_refuses_an_option_that_may_not_change(seed1_run, capsys, option, saved):
    before = {p.name: p.read_bytes() for p in (seed1_run / "checkpoints").iterdir()}
    config_before = (seed1_run / "config.json").read_text()
    message = cli_error(capsys, ["train", "--resume", str(seed1_run), *option])
    spelling = option[0].split("=")[0]
    assert message.startswith(
        f"gaussrl: error: {spelling} cannot change when resuming: {seed1_run} was trained with {saved}; "
        f"drop {spelling} (a resumed run keeps its configuration; only --timesteps, --eval-interval"
    )
    assert (seed1_run / "config.json").read_text() == config_before
    assert {p.name: p.read_bytes() for p in (seed1_run / "checkpoints").iterdir()} == before


def test_resume_through_the_api_refuses_another_configuration(seed1_run):
    config = TrainConfig(resume=str(seed1_run), seed=0, timesteps=512, progress=False, tensorboard=False)
    with pytest.raises(
        ResumeError, match=r"with another configuration: num_envs \(4; the run has 2\), seed \(0; the run has 1\), ppo"
    ):
        Trainer(config)


def test_checkpoint_option_needs_resume_and_force_excludes_it():
    with pytest.raises(ConfigError, match=r"--checkpoint 5 needs --resume DIR"):
        TrainConfig(checkpoint=5)
    with pytest.raises(ConfigError, match=r"--force starts a new run and --resume continues one"):
        TrainConfig(resume="x", force=True)


def test_corrupt_newest_checkpoint_names_the_intact_ones(tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["train", "--timesteps", "384", "--checkpoint-interval", "128", "--out", str(run), *TINY]
    assert main(argv) == 0
    newest = run / "checkpoints" / "step_000000000384.safetensors"
    newest.write_bytes(newest.read_bytes()[:100])
    message = cli_error(capsys, ["train", "--resume", str(run), "--timesteps", "512"])
    assert message.endswith(
        "is corrupt: its SHA-256 does not match the JSON file. Intact older checkpoints: steps 128, 256; load the "
        f"newest of them with `gaussrl train --resume {run} --checkpoint 256`."
    )
    message = cli_error(capsys, ["eval", str(run)])
    assert message.endswith(f"load the newest of them with `gaussrl eval {run} --checkpoint 256`.")
    message = cli_error(capsys, ["eval", str(run), "--checkpoint", "7"])
    assert (
        message
        == f"gaussrl: error: no checkpoint of step 7 in '{run}/checkpoints'; the steps there are: 128, 256, 384."
    )

    assert main(["eval", str(run), "--checkpoint", "256", "--episodes", "2"]) == 0
    assert "of the checkpoint of step 256:" in capsys.readouterr().out
    assert main(["train", "--resume", str(run), "--checkpoint", "256", "--timesteps", "512"]) == 0
    assert "from its checkpoint of step 256" in capsys.readouterr().err
    assert checkpoint_steps(run) == [256, 384, 512]
    steps = [r["step"] for r in records(run)]
    assert steps == sorted(steps) and steps[-1] == 512
    assert main(["eval", str(run), "--episodes", "2"]) == 0
    assert "of the checkpoint of step 512:" in capsys.readouterr().out
