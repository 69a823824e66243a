"""The command line: every subcommand end to end on tiny data, and every user mistake as one line, exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gendistill.artifacts import CONFIG_FILE, TENSORS_FILE
from gendistill.cli.main import main

QUICK = ["--runs", "1", "--epochs", "2", "--models", "convnet[width=16]", "--no-compile", "--quiet"]


def run_cli(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_select_evaluate_export(capsys, fmnist_dir: Path, tmp_path: Path) -> None:
    art = tmp_path / "r3"
    code, out, _ = run_cli(capsys, "select", "--method", "random", "--ipc", 3, "--out", art, "--data-dir", fmnist_dir)
    assert code == 0 and "30 images" in out
    code, out, _ = run_cli(capsys, "evaluate", art, "--data-dir", fmnist_dir, *QUICK)
    assert code == 0 and "convnet[width=16]" in out and "acc %" in out
    results = json.loads((art / "eval.json").read_text())
    assert results[-1]["results"][0]["recipe"]["epochs"] == 2 and results[-1]["split"] == "test"
    code, _, _ = run_cli(capsys, "evaluate", art, "--data-dir", fmnist_dir, "--split", "val", *QUICK)
    assert code == 0 and len(json.loads((art / "eval.json").read_text())) == 2
    png = tmp_path / "png"
    code, out, _ = run_cli(capsys, "export", art, "--png", png)
    assert code == 0 and (png / "grid.png").is_file() and len(list(png.rglob("0*.png"))) == 30


def test_herding_and_full_data(capsys, fmnist_dir: Path, tmp_path: Path) -> None:
    code, _, _ = run_cli(
        capsys,
        "select",
        "--method",
        "herding",
        "--features",
        "pixels",
        "--ipc",
        2,
        "--out",
        tmp_path / "h",
        "--data-dir",
        fmnist_dir,
    )
    assert code == 0
    code, out, _ = run_cli(
        capsys,
        "full-data",
        "--data-dir",
        fmnist_dir,
        "--epochs",
        1,
        "--models",
        "mlp",
        "--json",
        tmp_path / "full.json",
        "--no-compile",
        "--quiet",
    )
    assert code == 0 and json.loads((tmp_path / "full.json").read_text())["results"][0]["model"] == "mlp"


def test_datasets_lists_what_was_found(capsys, fmnist_dir: Path) -> None:
    code, out, _ = run_cli(capsys, "datasets", "--data-dir", fmnist_dir)
    assert code == 0 and "found" in out and "missing" in out and str(fmnist_dir) in out


def _one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "error:" in lines[0] and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize(("ipc", "needle"), [("0", "positive"), ("-2", "positive"), ("21", "smallest class holds")])
def test_bad_ipc(capsys, fmnist_dir: Path, tmp_path: Path, ipc: str, needle: str) -> None:
    code, _, err = run_cli(
        capsys, "select", "--method", "random", "--ipc", ipc, "--out", tmp_path / "x", "--data-dir", fmnist_dir
    )
    _one_line_error(code, err, needle)
    assert not (tmp_path / "x").exists()


def test_unknown_names_list_valid_ones(capsys, fmnist_dir: Path, tmp_path: Path) -> None:
    code, _, err = run_cli(
        capsys, "select", "--method", "random", "--ipc", 1, "--out", tmp_path / "x", "--dataset", "imagenet"
    )
    _one_line_error(code, err, "unknown dataset", "fashion-mnist")
    run_cli(capsys, "select", "--method", "random", "--ipc", 1, "--out", tmp_path / "a", "--data-dir", fmnist_dir)
    code, _, err = run_cli(capsys, "evaluate", tmp_path / "a", "--data-dir", fmnist_dir, "--models", "convnet,resnet99")
    _one_line_error(code, err, "unknown model", "resnet18")


def test_missing_data_files(capsys, tmp_path: Path) -> None:
    code, _, err = run_cli(
        capsys,
        "select",
        "--method",
        "random",
        "--ipc",
        1,
        "--out",
        tmp_path / "x",
        "--dataset",
        "mnist",
        "--data-dir",
        tmp_path / "empty",
    )
    _one_line_error(code, err, "--data-dir", "does not exist")


def test_existing_output_is_refused_and_kept(capsys, fmnist_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "a"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    code, _, err = run_cli(capsys, "select", "--method", "random", "--ipc", 1, "--out", out, "--data-dir", fmnist_dir)
    _one_line_error(code, err, "already exists", "--force")
    assert (out / "keep.txt").read_text() == "mine"
    png = tmp_path / "png"
    png.mkdir()
    run_cli(capsys, "select", "--method", "random", "--ipc", 1, "--out", tmp_path / "b", "--data-dir", fmnist_dir)
    code, _, err = run_cli(capsys, "export", tmp_path / "b", "--png", png)
    _one_line_error(code, err, "already exists")


def test_artifact_for_other_data_is_refused(capsys, tmp_path: Path, fmnist_dir: Path) -> None:
    import numpy as np
    from PIL import Image

    for c in ("a", "b"):
        (tmp_path / "imgs" / c).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(tmp_path / "imgs" / c / f"{i}.png")
    run_cli(
        capsys,
        "select",
        "--method",
        "random",
        "--ipc",
        1,
        "--out",
        tmp_path / "rgb",
        "--dataset",
        "imagefolder",
        "--data-dir",
        tmp_path / "imgs",
    )
    code, _, err = run_cli(
        capsys, "evaluate", tmp_path / "rgb", "--dataset", "fashion-mnist", "--data-dir", fmnist_dir, *QUICK
    )
    _one_line_error(code, err, "[3, 32, 32]", "[1, 28, 28]")


def test_truncated_artifact(capsys, fmnist_dir: Path, tmp_path: Path) -> None:
    run_cli(capsys, "select", "--method", "random", "--ipc", 1, "--out", tmp_path / "a", "--data-dir", fmnist_dir)
    f = tmp_path / "a" / TENSORS_FILE
    f.write_bytes(f.read_bytes()[:100])
    code, _, err = run_cli(capsys, "evaluate", tmp_path / "a", "--data-dir", fmnist_dir, *QUICK)
    _one_line_error(code, err, "truncated or corrupted")
    assert not (tmp_path / "a" / "eval.json").exists()


def test_usage_mistakes_are_one_line(capsys, tmp_path: Path) -> None:
    for argv in (["select", "--ipc", "3"], ["evaluate", "x", "--runs", "0"], ["nonsense"]):
        with pytest.raises(SystemExit) as e:
            main(argv)
        _one_line_error(e.value.code, capsys.readouterr().err)


def test_installed_entry_point_and_help(tmp_path: Path, make_idx) -> None:
    exe = Path(sys.executable).with_name("gendistill")
    assert exe.exists(), "the package is installed with its console script"
    for sub in ("datasets", "select", "evaluate", "export", "full-data"):
        r = subprocess.run([exe, sub, "--help"], capture_output=True, text=True, check=False)
        assert r.returncode == 0 and "usage:" in r.stdout
    make_idx(tmp_path / "d")
    r = subprocess.run(
        [exe, "select", "--method", "random", "--ipc", "0", "--out", tmp_path / "x", "--data-dir", tmp_path / "d"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


def test_distill_with_a_yaml_recipe_and_overrides(capsys, fmnist_dir: Path, tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("method: dm\nipc: 1\niterations: 3\nreal-batch: 4\nmodel: convnet[width=8]\n")
    code, out, _ = run_cli(
        capsys,
        "distill",
        "--method",
        "dm",
        "--ipc",
        1,
        "--recipe",
        recipe,
        "--iterations",
        2,
        "--out",
        tmp_path / "d",
        "--data-dir",
        fmnist_dir,
        "--quiet",
    )
    assert code == 0 and "2 iterations" in out
    meta = json.loads((tmp_path / "d" / CONFIG_FILE).read_text())
    assert meta["config"]["run"]["real_batch"] == 4 and meta["config"]["run"]["model"] == "convnet[width=8]"
    recipe.write_text("colour: red\n")
    code, _, err = run_cli(
        capsys,
        "distill",
        "--method",
        "dm",
        "--ipc",
        1,
        "--recipe",
        recipe,
        "--out",
        tmp_path / "e",
        "--data-dir",
        fmnist_dir,
    )
    _one_line_error(code, err, "unknown option", "colour")


def test_prior_train_hglad_distill_and_crfd(capsys, fmnist_dir: Path, tmp_path: Path) -> None:
    prior, data = tmp_path / "prior", ["--data-dir", fmnist_dir]
    small = [
        "--batch",
        4,
        "--channel-base",
        64,
        "--channel-max",
        8,
        "--z-dim",
        8,
        "--w-dim",
        16,
        "--mapping-layers",
        1,
        "--checkpoint-every",
        1,
        "--sample-every",
        1,
    ]
    code, out, _ = run_cli(capsys, "prior", "train", "--out", prior, "--steps", 2, *small, *data, "--quiet")
    assert code == 0 and (prior / "model.safetensors").is_file() and (prior / "samples").is_dir()
    config = json.loads((prior / "config.json").read_text())
    assert (config["z_dim"], config["w_dim"], config["mapping_layers"], config["channel_max"]) == (8, 16, 1, 8)
    assert not (tmp_path / "prior.partial").exists()
    dist = tmp_path / "hglad"
    code, out, err = run_cli(
        capsys,
        "distill",
        "--method",
        "dm",
        "--param",
        "hglad",
        "--prior",
        prior,
        "--ipc",
        1,
        "--iterations",
        7,
        "--model",
        "convnet[width=16]",
        "--real-batch",
        4,
        "--select",
        "crfd",
        "--out",
        dist,
        *data,
        "--quiet",
    )
    assert code == 0, err
    meta = json.loads((dist / CONFIG_FILE).read_text())
    assert meta["config"]["param"]["name"] == "hglad" and meta["config"]["param"]["layer"] == 7
    code, out, _ = run_cli(capsys, "crfd", dist, *data, "--nets", 1, "--real-per-class", 4)
    assert code == 0 and out.startswith("crfd ")
    code, out, _ = run_cli(
        capsys, "prior", "eval", prior, "--classifier-epochs", 1, "--per-class", 3, *data, "--json", tmp_path / "q.json"
    )
    assert code == 0 and "sample_acc" in json.loads((tmp_path / "q.json").read_text())


def test_prior_mistakes_are_one_line(capsys, fmnist_dir: Path, tmp_path: Path) -> None:
    data = ["--data-dir", fmnist_dir]
    (tmp_path / "p.partial").mkdir()
    code, _, err = run_cli(capsys, "prior", "train", "--out", tmp_path / "p", *data)
    assert code == 2 and "--resume" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli(
        capsys,
        "distill",
        "--method",
        "dm",
        "--param",
        "glad",
        "--prior",
        "nosuch",
        "--ipc",
        1,
        "--out",
        tmp_path / "d",
        *data,
    )
    assert code == 2 and "prior" in err and len(err.strip().splitlines()) == 1 and not (tmp_path / "d").exists()
    code, _, err = run_cli(
        capsys,
        "distill",
        "--method",
        "dm",
        "--param",
        "glad",
        "--prior",
        tmp_path / "x.pkl",
        "--ipc",
        1,
        "--out",
        tmp_path / "d",
        *data,
    )
    assert code == 2 and "--trust-pickle" in err
    code, _, err = run_cli(
        capsys, "distill", "--method", "dm", "--select", "crfd", "--ipc", 1, "--out", tmp_path / "d", *data
    )
    assert code == 2 and "--select do(es) not apply to --param pixels" in err and not (tmp_path / "d").exists()


def test_an_artifact_remembers_its_data(capsys, make_idx, tmp_path: Path) -> None:
    """evaluate finds the recorded --data-dir; when it is gone, one line names it; an artifact is not scored
    on a same-shaped dataset with other contents unless --dataset says so (and then with a warning)."""
    import shutil

    make_idx(tmp_path / "mine")
    make_idx(tmp_path / "other", n_test=12)
    code, _, err = run_cli(
        capsys, "select", "--method", "random", "--ipc", 2, "--out", tmp_path / "a", "--data-dir", tmp_path / "mine"
    )
    assert code == 0, err
    code, out, err = run_cli(capsys, "evaluate", tmp_path / "a", *QUICK)  # no --data-dir: the recorded one
    assert code == 0, err
    code, _, err = run_cli(capsys, "evaluate", tmp_path / "a", "--data-dir", tmp_path / "other", *QUICK)
    _one_line_error(code, err, "contents differ", "--dataset")
    code, _, err = run_cli(
        capsys, "evaluate", tmp_path / "a", "--dataset", "mnist", "--data-dir", tmp_path / "other", *QUICK
    )
    assert code == 0 and err.startswith("warning: it was made on fashion-mnist but is being evaluated on mnist")
    shutil.move(tmp_path / "mine", tmp_path / "moved")
    code, _, err = run_cli(capsys, "evaluate", tmp_path / "a", *QUICK)
    _one_line_error(code, err, str(tmp_path / "mine"), "which is gone", "--data-dir")
    code, _, err = run_cli(capsys, "evaluate", tmp_path / "a", "--data-dir", tmp_path / "moved", *QUICK)
    assert code == 0, err


def test_broken_artifact_folders_are_one_line(capsys, fmnist_dir: Path, tmp_path: Path) -> None:
    code, _, err = run_cli(
        capsys, "select", "--method", "random", "--ipc", 1, "--out", tmp_path / "a", "--data-dir", fmnist_dir
    )
    config = tmp_path / "a" / CONFIG_FILE
    for text, needle in (
        ('["a list"]', "not an object"),
        ('{"_class_name": "Banana"}', "holds a Banana"),
        ('{"_class_name": "ImageSet", "_format_version": 99}', "newer gendistill"),
    ):
        config.write_text(text)
        for cmd in ("evaluate", "export", "crfd"):
            extra = ["--png", tmp_path / "png"] if cmd == "export" else []
            code, _, err = run_cli(capsys, cmd, tmp_path / "a", *extra)
            _one_line_error(code, err, needle)
    assert not (tmp_path / "png").exists()


def test_an_embedding_set_says_why_it_cannot_be_evaluated(capsys, saved_prior: Path, tmp_path: Path) -> None:
    import torch

    from gendistill import EmbeddingSet

    EmbeddingSet.for_prior(torch.randn(4, 5, 8), torch.tensor([0, 0, 1, 1]), saved_prior).save(tmp_path / "e")
    for cmd in ("evaluate", "export", "crfd"):
        extra = ["--png", tmp_path / "png"] if cmd == "export" else []
        code, _, err = run_cli(capsys, cmd, tmp_path / "e", *extra)
        _one_line_error(code, err, "embedding set holds conditionings")


def test_a_generator_set_is_read_by_every_command(
    capsys,
    fmnist_dir: Path,
    tmp_path: Path,
    tiny,
    tiny_prior,
) -> None:
    import torch

    from gendistill import GeneratorSet
    from gendistill.artifacts import make_meta

    labels = torch.arange(10).repeat_interleave(2)
    codes = torch.randn(20, tiny_prior().z_dim, generator=torch.Generator().manual_seed(0))
    GeneratorSet(tiny_prior(), codes, labels, make_meta("test", tiny, 2, {}, 0)).save(tmp_path / "g")
    code, out, err = run_cli(capsys, "evaluate", tmp_path / "g", *QUICK)
    assert code == 0, err
    code, _, err = run_cli(capsys, "export", tmp_path / "g", "--png", tmp_path / "png")
    assert code == 0 and len(list((tmp_path / "png").rglob("*.png"))) == 21, err
    code, out, err = run_cli(capsys, "crfd", tmp_path / "g", "--nets", 1, "--real-per-class", 4)
    assert code == 0 and out.startswith("crfd "), err


def test_evaluate_warns_about_runs_near_chance(capsys, fmnist_dir: Path, tmp_path: Path) -> None:
    """A network that did not train (one epoch on one image per class) is marked in the table and named in a
    warning line; the JSON stores which runs they were."""
    art = tmp_path / "r1"
    run_cli(capsys, "select", "--method", "random", "--ipc", 1, "--out", art, "--data-dir", fmnist_dir)
    code, out, err = run_cli(
        capsys,
        "evaluate",
        art,
        "--data-dir",
        fmnist_dir,
        "--runs",
        "2",
        "--epochs",
        "1",
        "--models",
        "convnet[width=16],mlp",
        "--no-compile",
        "--quiet",
        "--same-recipe",
    )
    stored = json.loads((art / "eval.json").read_text())[-1]
    flagged = [(r["model"], i) for r in stored["results"] for i in r["near_chance"]]
    assert code == 0 and "mean of 2" in out and stored["over_networks"]["models"] == ["convnet[width=16]", "mlp"]
    assert flagged, "one epoch on ten images should leave some run near chance"
    for model, i in flagged:
        assert f"warning: {model} run {i + 1} ended at" in err


def test_dcgm_distill_sample_and_the_three_readings(
    capsys,
    fmnist_dir: Path,
    saved_prior: Path,
    tmp_path: Path,
) -> None:
    g = tmp_path / "g"
    code, out, err = run_cli(
        capsys,
        "distill",
        "--method",
        "dcgm",
        "--prior",
        saved_prior,
        "--ipc",
        2,
        "--iterations",
        2,
        "--real-batch",
        8,
        "--model",
        "convnet[width=16]",
        "--data-dir",
        fmnist_dir,
        "--out",
        g,
        "--quiet",
        "--reg",
        "inter=0.5",
    )
    assert code == 0 and "GeneratorSet" in out and "bytes stored" in out, err
    assert json.loads((g / CONFIG_FILE).read_text())["config"]["regularisers"] == [
        {"name": "intra", "weight": 1.0},
        {"name": "inter", "weight": 0.5},
        {"name": "classify", "weight": 10.0},
    ]
    code, out, err = run_cli(capsys, "sample", g, "--ipc", 4, "--out", tmp_path / "s4", "--seed", 2)
    assert code == 0 and "40 images" in out, err
    code, out, err = run_cli(capsys, "evaluate", tmp_path / "s4", "--data-dir", fmnist_dir, *QUICK)
    assert code == 0 and "reading (a): a fixed set of 40 images" in out, err
    code, out, err = run_cli(capsys, "evaluate", g, "--data-dir", fmnist_dir, "--reading", "fresh", "--ipc", 3, *QUICK)
    assert code == 0 and "reading (b): 30 fresh samples every epoch" in out and "storage-equivalent IPC" in out, err
    report = json.loads((g / "eval.json").read_text())[-1]
    assert report["reading"].startswith("reading (b)") and report["stored_bytes"] > 0


def test_dcgm_mistakes_are_one_line_and_write_nothing(
    capsys,
    fmnist_dir: Path,
    saved_prior: Path,
    tmp_path: Path,
) -> None:
    r = tmp_path / "r"
    assert run_cli(capsys, "select", "--method", "random", "--ipc", 2, "--out", r, "--data-dir", fmnist_dir)[0] == 0
    base = [
        "distill",
        "--method",
        "dm",
        "--ipc",
        1,
        "--iterations",
        1,
        "--real-batch",
        4,
        "--data-dir",
        fmnist_dir,
        "--quiet",
        "--model",
        "convnet[width=16]",
    ]
    cases = [
        (["sample", r, "--ipc", 3, "--out", tmp_path / "x"], "a fixed set with nothing to sample from"),
        (["sample", r, "--ipc", 3, "--out", r], "exists"),
        (["evaluate", r, "--data-dir", fmnist_dir, "--reading", "fresh", *QUICK], "needs a generator set"),
        (["evaluate", r, "--data-dir", fmnist_dir, "--ipc", 5, *QUICK], "cannot serve ipc 5"),
        ([*base, "--out", tmp_path / "x", "--reg", "spread=1"], "unknown regulariser 'spread'"),
        ([*base, "--out", tmp_path / "x", "--reg", "intra=-1"], "must be >= 0"),
        ([*base, "--out", tmp_path / "x", "--reg", "intra"], "write NAME=WEIGHT"),
        ([*base, "--out", tmp_path / "x", "--from-scratch"], "--from-scratch do(es) not apply to --param pixels"),
        (
            [*base, "--out", tmp_path / "x", "--param", "generator", "--prior", saved_prior, "--fresh", 1],
            "fresh must be in",
        ),
        (
            [*base, "--out", tmp_path / "x", "--param", "generator", "--prior", saved_prior, "--lr", 1],
            "--lr (the image learning rate) does not apply to --param generator",
        ),
    ]
    for argv, needle in cases:
        code, out, err = run_cli(capsys, *argv)
        assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, (argv, err)
    assert not (tmp_path / "x").exists() and not (tmp_path / "x.partial").exists()
