"""benchmarks/mujoco.py on fabricated run directories: what to run, the table, the curves and the raw metrics."""

from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path

import pytest
from benchmarks import mujoco
from benchmarks.mujoco import Run, collect, live_run_dirs, plan, run_dir, table, train_command, write_report

PNG = b"\x89PNG\r\n\x1a\n"


def fake_run(root, algo, env, seed, evals, *, summary=None, checkpoint=False):
    """A run directory as gaussrl train leaves it: config.json, metrics.jsonl, maybe a checkpoint and summary.json."""
    path = run_dir(root, algo, env, seed)
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"algo": algo, "env": env, "seed": seed}))
    records = [{"kind": "episode", "step": 1000, "return": -1.0, "length": 1000.0}]
    records += [{"kind": "eval", "step": s, "return_mean": m, "return_std": sd} for s, m, sd in evals]
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    if checkpoint:
        (path / "checkpoints").mkdir()
        (path / "checkpoints" / "step_000000050000.json").write_text("{}")
    if summary is not None:
        (path / "summary.json").write_text(json.dumps(summary))
    return Run(env, algo, seed, path)


def summary(steps, ret, *, wall=3600.0, rate=277.8, resumed=False):
    return {
        "timesteps": steps,
        "eval_return_mean": ret,
        "eval_return_std": 10.0,
        "eval_episodes": 10,
        "wall_time_s": wall,
        "env_steps_per_s": rate,
        "resumed": resumed,
    }


def test_plan_skips_finished_resumes_checkpointed_and_leaves_live_and_stale_runs(tmp_path):
    done = fake_run(tmp_path, "ppo", "Ant-v5", 0, [(10, 1.0, 0.0)], summary=summary(1000, 1.0), checkpoint=True)
    short = fake_run(tmp_path, "ppo", "Ant-v5", 1, [(10, 1.0, 0.0)], summary=summary(500, 1.0), checkpoint=True)
    ongoing = fake_run(tmp_path, "ppo", "Ant-v5", 2, [(10, 1.0, 0.0)], checkpoint=True)
    stale = fake_run(tmp_path, "ppo", "Ant-v5", 3, [])
    new = Run("Ant-v5", "ppo", 4, run_dir(tmp_path, "ppo", "Ant-v5", 4))
    assert [plan(r, 1000, {}) for r in (done, short, ongoing, stale, new)] == [
        "done",
        "resume",
        "resume",
        "stale",
        "new",
    ]
    assert plan(ongoing, 1000, {ongoing.dir.resolve(): 4242}) == "running"
    assert plan(done, 2000, {}) == "resume"  # a longer target continues a finished run


def test_train_commands(tmp_path):
    run = Run("HalfCheetah-v5", "sac", 2, run_dir(tmp_path, "sac", "HalfCheetah-v5", 2))
    assert run.dir.name == "sac-HalfCheetah-v5-seed2"
    extra = ["--sac.hidden-sizes", "256", "256"]
    new = train_command(run, "new", 1_000_000, extra)
    assert new[:4] == [sys.executable, "-m", "gaussrl", "train"]
    args = " ".join(new[4:])
    assert "--algo sac --env HalfCheetah-v5 --seed 2" in args and f"--out {run.dir.resolve()}" in args
    assert "--timesteps 1000000 --eval-episodes 10 --threads 1 --no-progress --sac.hidden-sizes 256 256" in args
    resume = " ".join(train_command(run, "resume", 1_000_000, extra)[4:])
    assert resume.startswith(f"--resume {run.dir.resolve()} --timesteps 1000000 --eval-episodes 10 --threads 1")
    assert "--algo" not in resume and resume.endswith("--sac.hidden-sizes 256 256")


def test_launch_runs_with_one_thread_and_logs_beside_the_run(tmp_path):
    run = Run("Ant-v5", "ppo", 0, tmp_path / "root" / "ppo-Ant-v5-seed0")
    script = "import os; print(os.environ['OMP_NUM_THREADS'], os.environ['MKL_NUM_THREADS'], os.getcwd())"
    assert mujoco.launch(run, [sys.executable, "-c", script]) == 0
    log = (tmp_path / "root" / "ppo-Ant-v5-seed0.log").read_text().splitlines()
    assert log[0].startswith("$ ") and log[1] == f"1 1 {tmp_path / 'root'}"


def test_live_run_dirs_reads_out_and_resume_of_gaussrl_train_processes(tmp_path):
    proc, cwd = tmp_path / "proc", tmp_path / "work"
    cwd.mkdir()
    commands = {
        "11": ["python", "/venv/bin/gaussrl", "train", "--algo", "sac", "--out", "runs/a"],
        "12": ["python", "-m", "gaussrl", "train", "--resume=/abs/b"],
        "13": ["python", "-m", "gaussrl", "eval", "runs/c"],  # not a training
        "14": ["python", "other.py", "train", "--out", "runs/d"],  # not gaussrl
    }
    for pid, args in commands.items():
        (proc / pid).mkdir(parents=True)
        (proc / pid / "cmdline").write_bytes("\0".join(args).encode() + b"\0")
        os.symlink(cwd, proc / pid / "cwd")
    assert live_run_dirs(proc) == {(cwd / "runs" / "a").resolve(): 11, Path("/abs/b").resolve(): 12}


def _runs(tmp_path):
    """Three PPO HalfCheetah seeds (two done, one in progress), one SAC Hopper seed done, one SAC Hopper missing."""
    ppo, sac = ("ppo", "HalfCheetah-v5"), ("sac", "Hopper-v5")
    return [
        fake_run(tmp_path, *ppo, 0, [(5000, 10.0, 1.0), (10000, 5000.0, 50.0)], summary=summary(10000, 5100.0)),
        fake_run(
            tmp_path,
            *ppo,
            1,
            [(5000, 20.0, 2.0), (10000, 6500.0, 60.0)],
            summary=summary(10000, 6400.0, wall=30.0, rate=333.3, resumed=True),
        ),
        fake_run(tmp_path, *ppo, 2, [(5000, 30.0, 3.0)], checkpoint=True),
        fake_run(tmp_path, *sac, 0, [(5000, 900.0, None)], summary=summary(10000, 950.0)),
        Run("Hopper-v5", "sac", 1, run_dir(tmp_path, *sac, 1)),
    ]


def test_collect_reads_summary_or_latest_evaluation(tmp_path):
    results = [collect(r, 10000) for r in _runs(tmp_path)]
    assert [r.status for r in results] == ["done", "done", "in progress", "done", "missing"]
    first, _, ongoing, _, missing = results
    assert (first.final_return, first.final_std, first.episodes, first.steps) == (5100.0, 10.0, 10, 10000)
    assert (first.wall_s, first.steps_per_s, first.resumed) == (3600.0, 277.8, False)
    assert (ongoing.final_return, ongoing.final_std, ongoing.steps) == (30.0, 3.0, 5000)
    assert ongoing.curve is not None and ongoing.curve.label == "seed 2 (in progress)"
    assert missing.curve is None and missing.final_return is None


def test_table_rows(tmp_path):
    text = table([collect(r, 10000) for r in _runs(tmp_path)], "python -m benchmarks.mujoco ...")
    rows = [line for line in text.splitlines() if line.startswith("| HalfCheetah-v5 | PPO | 10000")]
    assert len(rows) == 1
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    # median of 5100, 6400 and the in-progress 30 is 5100; the zoo's 5819 is not reached
    assert cells[3] == "5100 / 6400 / 30 (in progress at step 5000)"
    assert cells[4] == "5100*" and cells[7] == "5819" and cells[8] == "no*"
    assert cells[5] == "1.00 h / 30.0 s (resumed: last part) / -" and cells[6] == "278 / 333 / -"
    hopper = next(line for line in text.splitlines() if line.startswith("| Hopper-v5 | SAC"))
    cells = [c.strip() for c in hopper.strip("|").split("|")]
    assert cells[3] == "950 / missing" and cells[4] == "950 (1 of 2 seeds)" and cells[7:] == ["-", "-"]
    assert "\\* includes runs still in progress" in text
    assert "| HalfCheetah-v5 | PPO | 2 | in progress | 5000 | 30.0 +- 3.0 (-) |" in text


def test_zoo_figures_are_the_issue_s():
    assert mujoco.ZOO == {
        ("ppo", "HalfCheetah-v5"): 5819.0,
        ("ppo", "Ant-v5"): 1327.0,
        ("sac", "HalfCheetah-v5"): 9535.0,
        ("sac", "Ant-v5"): 4616.0,
    }


def test_report_files(tmp_path):
    results = [collect(r, 10000) for r in _runs(tmp_path / "runs")]
    written = write_report(results, tmp_path / "out", "cmd")
    names = sorted(p.name for p in written)
    assert names == ["HalfCheetah-v5-ppo.png", "Hopper-v5-sac.png", "curves.csv", "curves.json", "mujoco.md"]
    assert (tmp_path / "out" / "HalfCheetah-v5-ppo.png").read_bytes()[:8] == PNG
    raw = json.loads((tmp_path / "out" / "curves.json").read_text())
    assert raw[1]["steps"] == [5000, 10000] and raw[1]["return_mean"] == [20.0, 6500.0]
    assert raw[3]["return_std"] == [None] and raw[4]["status"] == "missing" and raw[4]["steps"] == []
    with open(tmp_path / "out" / "curves.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 2 + 2 + 1 + 1
    want = {"env": "HalfCheetah-v5", "algo": "ppo", "seed": "1", "status": "done", "step": "5000"}
    assert rows[2] == {**want, "return_mean": "20.0", "return_std": "2.0"}


def test_main_report_only_runs_nothing(tmp_path, monkeypatch, capsys):
    _runs(tmp_path / "runs")
    monkeypatch.setattr(mujoco, "launch", lambda *args: pytest.fail("--report-only must not train"))
    argv = [
        "--report-only",
        "--root",
        str(tmp_path / "runs"),
        "--results",
        str(tmp_path / "out"),
        "--timesteps",
        "10000",
    ]
    mujoco.main([*argv, "--envs", "HalfCheetah-v5", "--algos", "ppo", "--seeds", "0", "1", "2"])
    assert "in progress at step 5000" in (tmp_path / "out" / "mujoco.md").read_text()
    assert "wrote" in capsys.readouterr().out


def test_run_all_launches_new_and_resumable_runs_only(tmp_path, monkeypatch):
    runs = _runs(tmp_path)
    launched = []
    monkeypatch.setattr(mujoco, "launch", lambda run, command: launched.append((run.seed, command[4])) or 0)
    monkeypatch.setattr(mujoco, "live_run_dirs", dict)
    reports = []
    mujoco.run_all(runs, 10000, [], jobs=2, on_done=lambda: reports.append(len(launched)))
    assert sorted(launched) == [(1, "--algo"), (2, "--resume")]  # Hopper seed 1 new; HalfCheetah seed 2 resumed
    assert sorted(reports) == [1, 2] or sorted(reports) == [2, 2]  # once after each run


def test_a_real_run_end_to_end(tmp_path, capsys):
    """gaussrl train really runs with the command line built here (Pendulum, 256 steps), then is skipped as done."""
    argv = ["--envs", "Pendulum-v1", "--algos", "ppo", "--seeds", "3", "--timesteps", "256"]
    argv += ["--root", str(tmp_path / "runs"), "--results", str(tmp_path / "out")]
    argv += ["--extra", "--ppo.rollouts 64 --ppo.mini-batches 2 --no-tensorboard"]
    mujoco.main(argv)
    run = tmp_path / "runs" / "ppo-Pendulum-v1-seed3"
    saved = json.loads((run / "summary.json").read_text())
    assert saved["timesteps"] == 256 and saved["eval_episodes"] == 10 and saved["seed"] == 3
    assert json.loads((run / "config.json").read_text())["threads"] == 1
    text = (tmp_path / "out" / "mujoco.md").read_text()
    assert f"| Pendulum-v1 | PPO | 256 | {saved['eval_return_mean']:.0f} |" in text
    assert "ppo-Pendulum-v1-seed3: exit status 0" in capsys.readouterr().out
    mujoco.main(argv)
    assert "ppo-Pendulum-v1-seed3: done" in capsys.readouterr().out
