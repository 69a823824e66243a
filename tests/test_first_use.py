"""What a new user hits first, tried as one would on a fresh clone: defaults, progress in a log file,
summaries, and messages that point the right way."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import make_idx_dataset
from PIL import Image

from gendistill.cli.main import main

TINY_NET = ["--models", "convnet[width=16]", "--no-compile"]


def cli(capsys: pytest.CaptureFixture, *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _image_folder(root: Path, classes: int = 2, per_class: int = 6, size: int = 16) -> Path:
    rng = np.random.default_rng(0)
    for c in range(classes):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / f"class{c}" / f"{i}.png")
    return root


def test_commands_create_missing_parent_folders(capsys, fmnist_dir: Path, tmp_path: Path) -> None:
    art = tmp_path / "runs" / "deep" / "r1"
    code, _, err = cli(capsys, "select", "--method", "random", "--ipc", 1, "--out", art, "--data-dir", fmnist_dir)
    assert code == 0, err
    code, _, err = cli(capsys, "export", art, "--png", tmp_path / "pngs" / "deep" / "r1")
    assert code == 0 and (tmp_path / "pngs" / "deep" / "r1" / "grid.png").is_file(), err


def test_invert_defaults_to_the_shipped_diffusion_prior(capsys, fmnist_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "inv"
    argv = ["invert", "--out", out, "--per-class", 1, "--steps", 1, "--data-dir", fmnist_dir, "--quiet"]
    code, stdout, err = cli(capsys, *argv)
    assert code == 0, err
    assert "wrote" in stdout and (out / "config.json").is_file()
    assert "fashion-mnist-diffusion" in (out / "config.json").read_text()
    folder = _image_folder(tmp_path / "imgs")
    argv = ["invert", "--out", tmp_path / "inv2", "--dataset", "imagefolder", "--data-dir", folder, "--quiet"]
    code, _, err = cli(capsys, *argv)
    assert code == 2 and "no diffusion prior is shipped for imagefolder; pass --prior" in err
    assert len(err.strip().splitlines()) == 1


def test_help_names_the_shipped_priors(capsys) -> None:
    for command in ("distill", "invert"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split()).replace("- ", "-")  # undo argparse's wrapping
        assert "fashion-mnist, fashion-mnist-diffusion" in text


def test_dcgm_from_scratch_on_an_image_folder_needs_no_prior(capsys, tmp_path: Path) -> None:
    folder = _image_folder(tmp_path / "imgs")
    argv = ["distill", "--method", "dcgm", "--from-scratch", "--ipc", 1, "--iterations", 2, "--out", tmp_path / "g"]
    code, out, err = cli(capsys, *argv, "--dataset", "imagefolder", "--data-dir", folder, "--quiet", "--no-compile")
    assert code == 0, err
    assert "GeneratorSet" in out


def test_long_silent_steps_show_progress_in_a_log(capsys, fmnist_dir: Path, tmp_path: Path) -> None:
    """Herding's feature network and a teacher train for minutes on a real training split: each has a bar
    (stderr is captured here, not a terminal, so the bars are log lines)."""
    argv = ["select", "--method", "herding", "--ipc", 1, "--out", tmp_path / "h", "--data-dir", fmnist_dir]
    code, _, err = cli(capsys, *argv, "--device", "cpu")
    assert code == 0 and "herding: feature network" in err and "100%" in err
    code, _, err = cli(capsys, *argv, "--device", "cpu", "--quiet", "--out", tmp_path / "h2")
    assert code == 0 and err == ""
    argv = ["distill", "--method", "dcgm", "--ipc", 1, "--iterations", 1, "--out", tmp_path / "d"]
    code, _, err = cli(capsys, *argv, "--data-dir", fmnist_dir, "--no-compile")
    assert code == 0 and "teacher convnet" in err, err


def test_a_log_file_ends_each_bar_at_its_final_state_once(capsys, fmnist_dir: Path, tmp_path: Path) -> None:
    art = tmp_path / "r"
    cli(capsys, "select", "--method", "random", "--ipc", 1, "--out", art, "--data-dir", fmnist_dir)
    code, _, err = cli(capsys, "evaluate", art, "--data-dir", fmnist_dir, "--runs", 2, "--epochs", 2, *TINY_NET)
    lines = [line for line in err.splitlines() if line.startswith("evaluate:")]
    assert code == 0 and "100%" in lines[-1], err
    code, _, err = cli(
        capsys, "invert", "--out", tmp_path / "inv", "--per-class", 1, "--steps", 3, "--data-dir", fmnist_dir
    )
    assert code == 0 and sum("100%" in line for line in err.splitlines()) == 1, err


def test_summaries_give_the_command_wall_time(capsys, fmnist_dir: Path, tmp_path: Path) -> None:
    argv = ["distill", "--method", "dm", "--ipc", 1, "--iterations", 2, "--out", tmp_path / "d"]
    code, out, _ = cli(capsys, *argv, "--data-dir", fmnist_dir, "--quiet", "--no-compile")
    assert code == 0 and "s of distillation" in out and "s for this command in all" in out


def test_messages_point_the_right_way(capsys, fmnist_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "d"
    argv = ["distill", "--method", "dm", "--ipc", 1, "--iterations", 1, "--out", run, "--data-dir", fmnist_dir]
    assert cli(capsys, *argv, "--quiet", "--no-compile")[0] == 0
    code, _, err = cli(capsys, *argv, "--quiet", "--no-compile", "--resume")
    assert code == 2 and "is complete: nothing to resume" in err
    png = tmp_path / "png"
    png.mkdir()
    code, _, err = cli(capsys, "export", run, "--png", png)
    assert code == 2 and "choose another --png" in err
    code, _, err = cli(capsys, "evaluate", run, "--reading", "fresh", "--data-dir", fmnist_dir)
    assert code == 2 and "an ImageSet" in err, err


def test_mtt_expert_messages_name_the_fix(capsys, fmnist_dir: Path, tmp_path: Path) -> None:
    experts = tmp_path / "experts"
    common = ["--model", "convnet[width=16]", "--quiet"]
    code, _, err = cli(
        capsys, "experts", "--out", experts, "--num", 1, "--epochs", 3, "--data-dir", fmnist_dir, *common
    )
    assert code == 0, err
    mtt = [
        "distill",
        "--method",
        "mtt",
        "--ipc",
        1,
        "--iterations",
        1,
        "--experts",
        experts,
        "--model",
        "convnet[width=16]",
    ]
    code, _, err = cli(capsys, *mtt, "--out", tmp_path / "m", "--data-dir", fmnist_dir, "--quiet")
    assert code == 2 and "--set max_start_epoch=1" in err, err
    mnist = make_idx_dataset(tmp_path / "mnist")
    other = tmp_path / "mnist-experts"
    code, _, err = cli(
        capsys, "experts", "--out", other, "--num", 1, "--epochs", 3, "--dataset", "mnist", "--data-dir", mnist, *common
    )
    assert code == 0, err
    mtt[mtt.index(experts)] = other
    argv = [*mtt, "--out", tmp_path / "m2", "--data-dir", fmnist_dir, "--quiet", "--set", "max_start_epoch=1"]
    code, _, err = cli(capsys, *argv)
    assert code == 2 and "were trained on mnist, this run distils fashion-mnist" in err, err


def test_library_trains_a_prior_and_evaluates_an_artifact(tiny, tmp_path: Path) -> None:
    """What the command line does, as two calls: a prior trained into a folder (resumable), and an artifact
    evaluated with its result recorded in eval.json."""
    import json

    from gendistill import load_prior
    from gendistill.errors import UserError
    from gendistill.evaluate import evaluate_artifact, select
    from gendistill.priors.fit import train_prior

    shape = {"channel_base": 64, "channel_max": 8, "z_dim": 8, "w_dim": 8, "mapping_layers": 1}
    recipe = {"steps": 2, "batch": 4, "checkpoint_every": 1, "sample_every": 2}
    trained = train_prior(tiny, tmp_path / "p", shape=shape, recipe=recipe, progress=False)
    assert trained.steps == 2 and load_prior(trained.path).config.channel_max == 8
    assert not (tmp_path / "p.partial").exists() and (trained.path / "history.json").is_file()
    with pytest.raises(UserError, match="already exists"):
        train_prior(tiny, tmp_path / "p", shape=shape, recipe=recipe, progress=False)
    with pytest.raises(UserError, match=r"do\(es\) not shape a gan prior"):
        train_prior(tiny, tmp_path / "q", shape={"tokens": 2}, progress=False)
    with pytest.raises(UserError, match="GanRecipe has no stepz"):
        train_prior(tiny, tmp_path / "q", recipe={"stepz": 2}, progress=False)
    select(tiny, "random", 1).save(tmp_path / "r")
    report = evaluate_artifact(tmp_path / "r", tiny, models=["convnet[width=16]"], epochs=1, compile=False)
    recorded = json.loads((tmp_path / "r" / "eval.json").read_text())
    assert len(recorded) == 1 and recorded[0]["results"][0]["accuracies"] == report.results[0].accuracies
