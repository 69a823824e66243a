"""Configs go in as they come out: every config field has a command-line flag (or a named way in), an
artifact's recorded settings make the same run again, and suites read the same keys."""

from __future__ import annotations

import argparse
import json
from dataclasses import fields
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from gendistill.cli.main import build_parser, main
from gendistill.errors import UserError
from gendistill.methods import METHODS, RunOptions, settings
from gendistill.objectives import OBJECTIVES
from gendistill.params import PARAMS

# RunOptions fields reached by an option of another name
WAYS_IN = {
    "seed": "--seed",
    "device": "--device",
    "precision": "--precision",
    "compile": "--no-compile",
    "objective": "--set",
    "regularisers": "--reg",
}


def _subparser(*path: str) -> argparse.ArgumentParser:
    parser = build_parser()
    for name in path:
        parser = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[name]
    return parser


def _reachable(*path: str) -> set[str]:
    """The settings a command's flags reach: each option's destination, and the flags themselves."""
    actions = _subparser(*path)._actions
    return {a.dest for a in actions} | {s for a in actions for s in a.option_strings}


def _configs() -> list[tuple[tuple[str, ...], type, tuple[str, ...]]]:
    """(command, config class, fields set otherwise: by the data, or the command's arguments)."""
    from gendistill.inversion import GenerateConfig, InversionConfig
    from gendistill.priors.diffusion_train import DiffusionRecipe
    from gendistill.priors.stylegan import StyleGANConfig
    from gendistill.priors.train import GanRecipe

    data = ("num_classes", "image_size", "image_channels")
    params = [(("distill",), PARAMS.get(name).Config, ()) for name in PARAMS.names()]
    return [
        (("distill",), RunOptions, ()),
        *params,
        (("invert",), InversionConfig, ()),
        (("generate",), GenerateConfig, ()),
        (("prior", "train"), StyleGANConfig, data),
        (("prior", "train"), GanRecipe, ()),
        (("prior", "train"), DiffusionRecipe, ()),
    ]


def test_every_config_field_has_a_flag() -> None:
    missing = []
    for command, config, elsewhere in _configs():
        reachable = _reachable(*command)
        for f in fields(config):
            if f.name not in elsewhere and WAYS_IN.get(f.name, f.name) not in reachable:
                missing.append(f"{' '.join(command)}: {config.__name__}.{f.name}")
    assert not missing, f"config fields without a command-line flag: {missing}"


@pytest.mark.parametrize("method", METHODS.names())
def test_every_objective_option_is_reached_with_set(method: str) -> None:
    from gendistill.cli.distill import _apply_set

    objective = OBJECTIVES.get(METHODS.get(method).objective).Config
    for f in fields(objective):
        spec = {"method": method, "param": {"name": METHODS.get(method).param}, "options": {"objective": {}}}
        _apply_set([f"{f.name}=1"], spec)
        assert spec["options"]["objective"] == {f.name: 1}


def _tensors(folder: Path) -> dict[str, torch.Tensor]:
    return {f"{p.name}:{k}": v for p in sorted(folder.glob("*.safetensors")) for k, v in load_file(p).items()}


def _cli(capsys: pytest.CaptureFixture, *argv: object) -> str:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


@pytest.mark.parametrize(
    "flags",
    [
        ["--method", "dm", "--ipc", 2, "--iterations", 3, "--init", "noise", "--lr", "5"],
        [
            "--method",
            "dm",
            "--param",
            "hglad",
            "--ipc",
            1,
            "--iterations",
            3,
            "--select",
            "crfd",
            "--lr-f",
            "0.1",
            "--lr-w",
            "0.01",
        ],
    ],
    ids=["dm-pixels", "dm-hglad"],
)
def test_an_artifact_config_makes_the_same_run_again(
    capsys, fmnist_dir: Path, saved_prior: Path, tmp_path: Path, flags: list
) -> None:
    first, again = tmp_path / "first", tmp_path / "again"
    common = ["--data-dir", fmnist_dir, "--quiet", "--no-compile", "--real-batch", 8, "--model", "convnet[width=16]"]
    prior = ["--prior", saved_prior] if "hglad" in flags else []
    _cli(capsys, "distill", *flags, *prior, *common, "--seed", 3, "--out", first)
    _cli(capsys, "distill", "--config", first, "--out", again, "--quiet")
    a, b = _tensors(first), _tensors(again)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    spec = json.loads((first / "config.json").read_text())["spec"]
    assert json.loads((again / "config.json").read_text())["spec"] == spec
    assert spec["options"]["seed"] == 3 and spec["data"]["data_dir"] == str(fmnist_dir)


def test_config_overrides_and_set_reach_every_part(capsys, fmnist_dir: Path, tmp_path: Path) -> None:
    base = tmp_path / "base"
    common = ["--data-dir", fmnist_dir, "--quiet", "--no-compile", "--real-batch", 8, "--model", "convnet[width=16]"]
    _cli(capsys, "distill", "--method", "dm", "--ipc", 1, "--iterations", 2, *common, "--out", base)
    over = tmp_path / "over"
    _cli(capsys, "distill", "--config", base, "--out", over, "--quiet", "--iterations", 1, "--set", "param.init=noise")
    spec = json.loads((over / "config.json").read_text())["spec"]
    assert spec["options"]["iterations"] == 1 and spec["param"]["init"] == "noise"
    assert spec["options"]["real_batch"] == 8  # kept from the artifact
    assert main(["distill", "--config", str(base), "--out", str(tmp_path / "x"), "--set", "nope=1"]) == 2
    assert "no setting of that name" in capsys.readouterr().err
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "config.json").write_text(json.dumps({"_class_name": "ImageSet"}))
    assert main(["distill", "--config", str(tmp_path / "old"), "--out", str(tmp_path / "y")]) == 2
    assert "records no run settings" in capsys.readouterr().err


def test_suites_and_artifacts_share_the_settings_shape(capsys, fmnist_dir: Path, tmp_path: Path) -> None:
    """A cell's ``param``/``options`` are the artifact's ``spec`` keys: one function reads them all."""
    from gendistill.bench.builders import distill_settings
    from gendistill.bench.suite import Budget, Cell

    art = tmp_path / "a"
    _cli(
        capsys,
        "distill",
        "--method",
        "dcgm",
        "--ipc",
        1,
        "--iterations",
        1,
        "--data-dir",
        fmnist_dir,
        "--quiet",
        "--no-compile",
        "--fresh",
        "0.25",
        "--reg",
        "intra=0.5",
        "--out",
        art,
    )
    spec = json.loads((art / "config.json").read_text())["spec"]
    options = {k: v for k, v in spec["options"].items() if k not in ("iterations", "minutes", "seed")}
    cell = Cell(
        name="c",
        method="dcgm",
        dataset="fashion-mnist",
        ipc=1,
        param=spec["param"],
        options=options,
        budget=Budget(iterations=1),
    )
    assert distill_settings(cell) == settings("dcgm", spec["param"], spec["options"])
    param, run = settings("dcgm", spec["param"], spec["options"])
    assert param.fresh == 0.25 and dict(run.regularisers) == {"intra": 0.5}
    with pytest.raises(UserError, match="unknown run option"):
        settings("dm", None, {"iterationz": 3})
