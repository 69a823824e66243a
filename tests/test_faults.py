"""Mistakes and faults end in one line: values checked where configs are built, options that do not apply
refused, a read-only folder and a full disk refused before the work, runs gone non-finite stopped, JSON
without NaN, suites checked whole, and a bench that adopts what a killed run finished."""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import yaml

from gendistill.cli.main import environment_fault, main
from gendistill.errors import UserError
from gendistill.io import MAX_YAML_VALUES, check_writable, json_safe, load_yaml, write_json
from gendistill.methods import RunOptions, distill
from gendistill.validate import check_fields, limit

# --- values checked where configs are built -------------------------------------------------------------------


@dataclass(frozen=True)
class _Config:
    steps: int = limit(10, ge=1, le=100)
    lr: float = limit(0.1, gt=0)
    width: int | None = None
    name: str = "x"

    def __post_init__(self) -> None:
        check_fields(self)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"steps": "abc"}, "steps must be a whole number, got 'abc'"),
        ({"steps": 1.5}, "steps must be a whole number"),
        ({"steps": True}, "steps must be a whole number"),
        ({"steps": 0}, "steps must be at least 1, got 0"),
        ({"steps": 10**12}, "steps must be at most 100"),
        ({"lr": -1.0}, "lr must be greater than 0, got -1"),
        ({"lr": math.nan}, "lr must be a finite number, got nan"),
        ({"lr": math.inf}, "lr must be a finite number, got inf"),
        ({"width": "8"}, "width must be a whole number"),
        ({"name": 3}, "name must be text"),
    ],
)
def test_check_fields_refuses_types_ranges_and_non_finite(change: dict, message: str) -> None:
    with pytest.raises(UserError, match=message.replace("(", r"\(")):
        _Config(**change)
    _Config(lr=1, width=None)  # an int where a float is expected is fine; None where the type allows it


@pytest.mark.parametrize(
    "options",
    [
        {"lr": -1.0},
        {"lr": math.inf},
        {"lr": math.nan},
        {"checkpoint_every": -1},
        {"eval_every": -1},
        {"iterations": 10**12},
        {"minutes": 1e300},
        {"regularisers": (("intra", math.nan),)},
    ],
)
def test_run_options_refuse_nonsense(options: dict) -> None:
    with pytest.raises(UserError):
        RunOptions(**options)


TINY_DISTILL = ["distill", "--method", "dm", "--ipc", "1", "--iterations", "2", "--quiet"]


def _one_line(capsys: pytest.CaptureFixture, argv: list, *needles: str) -> str:
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--method", "dc", "--set", "outer_loop=abc"], "outer_loop must be a whole number"),
        (["--method", "dc", "--set", "net_lr=-1"], "net_lr must be greater than 0"),
        (["--lr", "nan"], "lr must be a finite number"),
        (["--lr", "-1"], "lr must be greater than 0"),
        (["--checkpoint-every", "-1"], "checkpoint_every must be at least 0"),
        (["--param", "glad", "--lr-f", "-1"], "lr_f must be greater than 0"),
        (["--method", "dim", "--param", "glad"], "pass --lr-f and --lr-w"),
        (["--reg", "intra=inf"], "must be a finite number"),
    ],
)
def test_distill_refuses_bad_values_before_any_work(
    capsys, tmp_path: Path, fmnist_dir: Path, argv: list, needle: str
) -> None:
    out = tmp_path / "o"
    base = [*TINY_DISTILL, "--data-dir", fmnist_dir]
    _one_line(capsys, [*base, "--out", out, *argv], needle)
    assert not out.exists() and not Path(f"{out}.partial").exists()


# --- options that do not apply, data that is not there --------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["select", "--method", "random", "--features", "pixels", "--ipc", 1, "--out", "{t}/o"], "--features"),
        (["prior", "train", "--kind", "diffusion", "--z-dim", 32, "--out", "{t}/o"], "--z-dim"),
        (["prior", "train", "--kind", "gan", "--tokens", 3, "--out", "{t}/o"], "--tokens"),
        (["prior", "train", "--channel-base", 1, "--out", "{t}/o"], "channel_base 1 leaves no channels"),
        (["prior", "train", "--lr", "nan", "--out", "{t}/o"], "lr must be a finite number"),
        (["prior", "train", "--batch", 10**9, "--out", "{t}/o"], "pass a smaller --batch"),
        (["generate", "{t}/none", "--modes", "kmeans", "--out", "{t}/o"], "pass --ipc N with it"),
        (["generate", "{t}/none", "--per-image", 2, "--ipc", 2, "--out", "{t}/o"], "pass one of them"),
        (["generate", "{t}/none", "--guidance", "inf", "--out", "{t}/o"], "guidance must be a finite number"),
        (["invert", "--prior", "x", "--lr", "inf", "--out", "{t}/o"], "lr must be a finite number"),
        (["experts", "--lr", "nan", "--out", "{t}/o"], "lr must be a finite number"),
    ],
)
def test_commands_refuse_what_does_not_apply(capsys, tmp_path: Path, fmnist_dir: Path, argv: list, needle: str) -> None:
    argv = [str(a).replace("{t}", str(tmp_path)) for a in argv] + ["--data-dir", str(fmnist_dir)]
    if argv[0] == "generate":
        argv = argv[:-2]  # generate reads its dataset from the embedding set
    _one_line(capsys, argv, needle)
    assert not (tmp_path / "o").exists() and not (tmp_path / "o.partial").exists()


@pytest.mark.parametrize("kind", ["missing", "empty", "file", "other"])
def test_a_data_dir_without_the_data_never_falls_back(
    capsys, tmp_path: Path, fmnist_dir: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    monkeypatch.setenv("GENDISTILL_DATA", str(fmnist_dir.parent))  # a copy the search would find
    where = tmp_path / "d"
    if kind == "empty":
        where.mkdir()
    elif kind == "file":
        where.write_text("x")
    elif kind == "other":
        (where / "notes").mkdir(parents=True)
        (where / "readme.txt").write_text("x")
    needle = {"missing": "does not exist", "empty": "is empty", "file": "is a file", "other": "holds no"}[kind]
    _one_line(
        capsys, ["select", "--method", "random", "--ipc", 1, "--out", tmp_path / "o", "--data-dir", where], needle
    )


def test_an_image_folder_with_a_fake_png_or_a_bad_size_is_one_line(capsys, tmp_path: Path) -> None:
    from PIL import Image

    for c in ("a", "b"):
        (tmp_path / "f" / c).mkdir(parents=True)
        Image.new("L", (8, 8)).save(tmp_path / "f" / c / "0.png")
    base = ["select", "--method", "random", "--ipc", 1, "--dataset", "imagefolder", "--data-dir", tmp_path / "f"]
    _one_line(capsys, [*base, "--out", tmp_path / "o", "--image-size", 0], "--image-size must be at least 2")
    _one_line(capsys, [*base, "--out", tmp_path / "o", "--image-size", 10**6], "--image-size must be at most")
    (tmp_path / "f" / "a" / "0.png").write_bytes(b"not a png")
    _one_line(capsys, [*base, "--out", tmp_path / "o"], "cannot read image", "0.png")


# --- the environment: read-only folders, full disks -----------------------------------------------------------


@contextlib.contextmanager
def tmpfs(path: Path, size: str, read_only: bool = False) -> Iterator[None]:
    """A small tmpfs at ``path``; skips the test where it cannot be mounted (not root, no mount)."""
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    if (
        os.geteuid() != 0
        or subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True).returncode
        != 0
    ):
        pytest.skip("mounting a tmpfs needs root")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def test_a_read_only_or_full_disk_is_refused_before_the_work(capsys, tmp_path: Path, fmnist_dir: Path) -> None:
    with tmpfs(tmp_path / "ro", "1m", read_only=True):
        with pytest.raises(UserError, match="read-only file system"):
            check_writable(tmp_path / "ro" / "a" / "b")
        line = _one_line(
            capsys,
            [
                *TINY_DISTILL,
                "--data-dir",
                fmnist_dir,
                "--out",
                tmp_path / "ro" / "x",
            ],
        )
        assert "read-only" in line
    with tmpfs(tmp_path / "full", "64k"):
        _one_line(
            capsys,
            ["select", "--method", "random", "--ipc", 1, "--data-dir", fmnist_dir, "--out", tmp_path / "full" / "x"],
            "MiB free",
        )


def test_a_permission_check_without_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "access", lambda *a, **k: False)
    with pytest.raises(UserError, match="not writable"):
        check_writable(tmp_path / "x")


def test_a_fault_during_the_run_is_one_line_and_keeps_the_checkpoints(
    capsys, tmp_path: Path, fmnist_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gendistill.artifacts.base as base

    def full(*a: object, **k: object) -> None:  # the artifact's write hits a full disk; checkpoints do not
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "o"))

    monkeypatch.setattr(base, "write_folder", full)
    line = _one_line(
        capsys,
        [
            *TINY_DISTILL,
            "--checkpoint-every",
            1,
            "--data-dir",
            fmnist_dir,
            "--out",
            tmp_path / "o",
        ],
    )
    assert "disk is full" in line and "--resume" in line
    assert (tmp_path / "o.partial").is_dir() and not (tmp_path / "o").exists()


def test_environment_faults_are_recognised() -> None:
    assert "read-only" in environment_fault(OSError(errno.EROFS, "Read-only file system", "/x"))
    assert "/x" in environment_fault(OSError(errno.EACCES, "Permission denied", "/x"))

    class SafetensorError(Exception):
        pass

    message = "Error while serializing: I/O error: No space left on device (os error 28)"
    assert "disk is full" in environment_fault(SafetensorError(message))
    assert environment_fault(ValueError("a bug")) is None
    assert environment_fault(OSError(errno.ENOENT, "No such file")) is None


# --- runs that diverge, JSON without NaN ----------------------------------------------------------------------


def test_a_diverging_run_stops_keeps_finite_checkpoints_and_writes_nothing(tiny, tmp_path: Path) -> None:
    options = RunOptions(
        iterations=6,
        lr=1e30,
        model="convnet[width=8]",
        real_batch=8,
        checkpoint_every=1,
        compile=False,
        precision="fp32",
    )
    with pytest.raises(UserError, match=r"diverged at iteration \d+: .*last finite loss") as e:
        distill(tiny, "dm", 1, tmp_path / "o", options=options, progress=False)
    assert "\n" not in str(e.value)
    assert not (tmp_path / "o").exists()
    from gendistill.store.checkpoint import load_checkpoint

    partial = tmp_path / "o.partial"
    if partial.is_dir():  # the first iteration may already go non-finite
        tensors, info = load_checkpoint(partial)
        assert all(torch.isfinite(t).all() for t in tensors.values())
        assert all(math.isfinite(x) for x in info["history"]["losses"])


class _FakePrior:
    """A prior trainer whose loss turns NaN at ``nan_loss_at`` or whose weight does at ``nan_weight_at``."""

    def __init__(self, nan_loss_at: int = 0, nan_weight_at: int = 0) -> None:
        from gendistill.priors.trainer import PriorTrainer

        outer = self

        class Fake(PriorTrainer):
            recipe = type("R", (), {"steps": 10, "batch": 1, "sample_every": 100, "checkpoint_every": 2})()
            device = torch.device("cpu")
            step, seconds = 0, 0.0
            weight = torch.zeros(3)

            def bytes_per_image(self) -> int:
                return 1

            def parameters(self) -> list[torch.Tensor]:
                return [self.weight]

            def train_step(self) -> dict[str, float]:
                self.step += 1
                if self.step == outer.nan_weight_at:
                    self.weight = torch.full((3,), math.inf)
                return {"loss": math.nan if self.step == outer.nan_loss_at else 1.0}

            def sample_grid(self, path: Path) -> None: ...

            def save_checkpoint(self, folder: Path, history: list[dict]) -> None:
                outer.saved.append(self.step)

        self.nan_loss_at, self.nan_weight_at, self.saved, self.trainer = nan_loss_at, nan_weight_at, [], Fake()


def test_a_prior_whose_loss_or_weights_turn_non_finite_stops(tmp_path: Path) -> None:
    fake = _FakePrior(nan_loss_at=3)
    with pytest.raises(UserError, match="diverged at step 3: the loss became non-finite"):
        fake.trainer.run(tmp_path / "p", progress=False)
    assert fake.saved == [2]
    fake = _FakePrior(nan_weight_at=5)  # the loss stays finite; the checkpoint at step 6 is refused
    with pytest.raises(UserError, match="diverged at step 6: the weights became non-finite"):
        fake.trainer.run(tmp_path / "q", progress=False)
    assert fake.saved == [2, 4]


def test_json_written_by_the_project_has_no_nan(tmp_path: Path) -> None:
    write_json(tmp_path / "a.json", {"x": [1.0, math.nan, math.inf], "y": {"z": -math.inf}})
    text = (tmp_path / "a.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"x": [1.0, None, None], "y": {"z": None}}
    assert json_safe((1, math.nan)) == [1, None]


# --- suites checked whole, bounded, and a bench that adopts a finished artifact --------------------------------


def _suite(tmp_path: Path, data_dir: Path, cells: list[dict]) -> Path:
    raw = {
        "suite": "s",
        "data_dir": str(data_dir),
        "protocols": ["quick"],
        "store": "store.jsonl",
        "workdir": "work",
        "defaults": {"models": ["convnet[width=8]"], "runs": 1, "augment": "none", "eval_epochs": 1},
        "cells": cells,
    }
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_a_suite_is_checked_whole_before_its_first_cell(tmp_path: Path, fmnist_dir: Path) -> None:
    from gendistill.bench import ResultStore, load_suite, run_suite

    cells = [
        {"method": "random", "ipc": 1},
        {"method": "dm", "ipc": 1, "budget": {"iterations": 2}, "options": {"no_such": 3}},
    ]
    suite = load_suite(_suite(tmp_path, fmnist_dir, cells))
    with pytest.raises(UserError, match=r"unknown run option\(s\) no_such"):
        run_suite(suite, ResultStore(suite.store), suite.workdir, isolate=False, echo=lambda _: None)
    assert not suite.store.exists()
    cells[1]["options"] = {"objective": {"outer_loop": "abc"}}
    cells[1]["method"] = "dc"
    suite = load_suite(_suite(tmp_path, fmnist_dir, cells))
    with pytest.raises(UserError, match="outer_loop must be a whole number"):
        run_suite(suite, ResultStore(suite.store), suite.workdir, isolate=False, echo=lambda _: None)


@pytest.mark.parametrize(("budget", "needle"), [({"iterations": 10**12}, "at most"), ({"minutes": 1e300}, "at most")])
def test_suite_budgets_have_a_ceiling(tmp_path: Path, fmnist_dir: Path, budget: dict, needle: str) -> None:
    from gendistill.bench import load_suite

    with pytest.raises(UserError, match=needle):
        load_suite(_suite(tmp_path, fmnist_dir, [{"method": "dm", "ipc": 1, "budget": budget}]))


def test_a_yaml_alias_bomb_is_refused_at_once() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    with pytest.raises(UserError, match=f"stands for [0-9,]+ values once its aliases .* more than {MAX_YAML_VALUES:,}"):
        load_yaml("\n".join(lines), "suite x")
    assert load_yaml("a: &a [1]\nb: *a\n", "suite y") == {"a": [1], "b": [1]}


def test_report_refuses_a_file_without_records(capsys, tmp_path: Path) -> None:
    (tmp_path / "b.bin").write_bytes(bytes(range(256)) * 8)
    _one_line(capsys, ["report", tmp_path / "b.bin", "--out", tmp_path / "r"], "not a text file")
    (tmp_path / "s.yaml").write_text("suite: s\ncells:\n  - {method: random, ipc: 1}\n")
    _one_line(capsys, ["report", tmp_path / "s.yaml", "--out", tmp_path / "r"], "holds no store record")
    assert not (tmp_path / "r").exists()


def test_bench_adopts_an_artifact_its_killed_run_finished(tmp_path: Path, fmnist_dir: Path) -> None:
    from gendistill.bench import ResultStore, load_suite, run_suite

    suite = load_suite(_suite(tmp_path, fmnist_dir, [{"method": "dm", "ipc": 1, "budget": {"iterations": 2}}]))
    run_suite(suite, ResultStore(suite.store), suite.workdir, isolate=False, echo=lambda _: None)
    first = ResultStore(suite.store).records("cell")[0]
    suite.store.unlink()  # as if the kill came after the artifact was written and before the store's line
    lines: list[str] = []
    run_suite(suite, ResultStore(suite.store), suite.workdir, isolate=False, echo=lines.append)
    cell = ResultStore(suite.store).records("cell")[0]
    assert any("adopting" in line for line in lines)
    assert cell["adopted"] and cell["iterations"] == first["iterations"] == 2
    assert cell["stored_bytes"] == first["stored_bytes"]
    assert len(ResultStore(suite.store).records("eval")) == 1


KILLED = {
    "distill": [
        *TINY_DISTILL,
        "--iterations",
        8,
        "--checkpoint-every",
        1,
        "--model",
        "convnet[width=8]",
        "--real-batch",
        16,
        "--precision",
        "fp32",
        "--no-compile",
    ],
    "invert": [
        "invert",
        "--prior",
        "fashion-mnist-diffusion",
        "--per-class",
        1,
        "--steps",
        6,
        "--checkpoint-every",
        1,
        "--chunk",
        5,
        "--precision",
        "fp32",
        "--quiet",
    ],
    "prior-gan": [
        "prior",
        "train",
        "--steps",
        6,
        "--batch",
        4,
        "--channel-max",
        8,
        "--checkpoint-every",
        1,
        "--precision",
        "fp32",
        "--quiet",
    ],
    "prior-diffusion": [
        "prior",
        "train",
        "--kind",
        "diffusion",
        "--steps",
        4,
        "--batch",
        4,
        "--channels",
        "8,16",
        "--checkpoint-every",
        1,
        "--sample-every",
        4,
        "--precision",
        "fp32",
        "--quiet",
    ],
}


@pytest.mark.parametrize("command", sorted(KILLED))
def test_a_command_killed_at_a_seeded_random_point_ends_bit_identical(
    tmp_path: Path, fmnist_dir: Path, command: str
) -> None:
    """SIGKILL, not an exception: the process gets no chance to clean up, as when a machine or a user kills it.
    Then the same command again, with --resume where it left a checkpoint folder."""
    import random
    import signal
    import sys
    import time

    from safetensors.numpy import load_file

    argv = [sys.executable, "-m", "gendistill.cli.main", *map(str, KILLED[command]), "--data-dir", str(fmnist_dir)]

    def tensors(out: Path) -> dict[str, bytes]:
        files = sorted(out.rglob("*.safetensors"))
        return {f"{f.relative_to(out)}:{k}": v.tobytes() for f in files for k, v in load_file(str(f)).items()}

    t0 = time.perf_counter()
    subprocess.run([*argv, "--out", str(tmp_path / "whole")], check=True, capture_output=True)
    wall = time.perf_counter() - t0
    out, partial = tmp_path / "killed", tmp_path / "killed.partial"
    p = subprocess.Popen([*argv, "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(random.Random(command).uniform(0.4, 0.95) * wall)  # past start-up, usually mid-run
    p.send_signal(signal.SIGKILL)
    p.wait()
    if not out.is_dir() or partial.exists():  # else the kill came after the run had finished
        again = subprocess.run(
            [*argv, "--out", str(out), *(["--resume"] if partial.is_dir() else [])], capture_output=True, text=True
        )
        assert again.returncode == 0, again.stderr[-1000:]
    assert tensors(out) == tensors(tmp_path / "whole")


def test_a_prior_killed_after_writing_its_folder_resumes(
    capsys, tmp_path: Path, fmnist_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The prior's folder is written before its partial folder is cleared; a kill between the two must leave
    a run that --resume finishes, not one that demands --force."""
    import gendistill.priors.fit as prior_fit

    argv = [
        "prior",
        "train",
        "--steps",
        2,
        "--batch",
        4,
        "--channel-max",
        8,
        "--checkpoint-every",
        1,
        "--quiet",
        "--data-dir",
        fmnist_dir,
        "--out",
        tmp_path / "p",
    ]

    def killed(*a: object, **k: object) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(prior_fit.shutil, "copytree", killed)
        assert main([str(a) for a in argv]) == 130
    assert (tmp_path / "p").is_dir() and (tmp_path / "p.partial").is_dir()
    capsys.readouterr()
    assert main([str(a) for a in [*argv, "--resume"]]) == 0
    assert (tmp_path / "p" / "history.json").is_file() and not (tmp_path / "p.partial").exists()
