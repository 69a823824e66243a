"""The engine and the method layer: resume, refusals, sharding over processes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gendistill import load
from gendistill.errors import UserError
from gendistill.methods import RunOptions, distill
from gendistill.params import Parameterisation, Pixels, PixelsConfig

NET = "convnet[width=16]"
OPTS = RunOptions(iterations=6, lr=1.0, real_batch=8, model=NET, seed=1, checkpoint_every=2)


def test_resume_gives_the_same_tensors(tiny, tmp_path: Path, killer) -> None:
    full = distill(tiny, "dm", 2, tmp_path / "full", None, OPTS, progress=False)
    # killed after iteration 4's checkpoint, then resumed to the end
    with pytest.raises(KeyboardInterrupt):
        distill(tiny, "dm", 2, tmp_path / "part", None, OPTS, progress=False, on_iteration=killer(4))
    assert (tmp_path / "part.partial").is_dir() and not (tmp_path / "part").exists()
    resumed = distill(tiny, "dm", 2, tmp_path / "part", None, OPTS, resume=True, progress=False)
    assert torch.equal(full.images, resumed.images)
    assert full.meta["history"]["loss"] == resumed.meta["history"]["loss"]
    assert not (tmp_path / "part.partial").exists()
    assert torch.equal(load(tmp_path / "part").images, full.images)


def test_resume_under_other_settings_is_refused(tiny, tmp_path: Path, killer) -> None:
    with pytest.raises(KeyboardInterrupt):
        distill(tiny, "dm", 2, tmp_path / "part", None, OPTS, progress=False, on_iteration=killer(2))
    with pytest.raises(UserError, match=r"other settings: ipc \(2 -> 3\)"):
        distill(tiny, "dm", 3, tmp_path / "part", None, OPTS, resume=True, progress=False)
    with pytest.raises(UserError, match=r"run.seed \(1 -> 2\)"):
        distill(
            tiny,
            "dm",
            2,
            tmp_path / "part",
            None,
            RunOptions(**{**OPTS.__dict__, "seed": 2}),
            resume=True,
            progress=False,
        )
    assert (tmp_path / "part.partial").is_dir()  # nothing lost: the original run can still resume


def test_a_stale_partial_run_is_not_deleted_silently(tiny, tmp_path: Path, killer) -> None:
    with pytest.raises(KeyboardInterrupt):
        distill(tiny, "dm", 2, tmp_path / "x", None, OPTS, progress=False, on_iteration=killer(2))
    with pytest.raises(UserError, match="--resume to continue it or --force"):
        distill(tiny, "dm", 2, tmp_path / "x", None, OPTS, progress=False)
    assert (tmp_path / "x.partial").is_dir()
    distill(tiny, "dm", 2, tmp_path / "x", None, OPTS, force=True, progress=False)
    assert not (tmp_path / "x.partial").exists() and (tmp_path / "x").is_dir()


def test_dsa_and_dc_methods_write_artifacts(tiny, tmp_path: Path) -> None:
    opts = RunOptions(iterations=2, model=NET, real_batch=8, objective={"outer_loop": 2, "inner_loop": 1})
    s = distill(tiny, "dsa", 1, tmp_path / "deep" / "dsa", None, opts, progress=False)  # parents are created
    config = s.meta["config"]
    assert s.meta["eval_augment"] == "dsa" and config["objective"] == {
        "name": "dc",
        "outer_loop": 2,
        "inner_loop": 1,
        "net_lr": 0.01,
        "net_batch": 256,
    }
    assert config["run"]["real_batch"] == 8 and config["param"] == {"name": "pixels", "config": {"init": "real"}}
    assert (tmp_path / "deep" / "dsa" / "grid.png").is_file() and len(load(tmp_path / "deep" / "dsa")) == 10


def test_distill_refuses_bad_input(tiny, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="unknown method"):
        distill(tiny, "kip", 1, tmp_path / "x")
    with pytest.raises(UserError, match="ipc"):
        distill(tiny, "dm", 0, tmp_path / "x", None, RunOptions(iterations=1))
    with pytest.raises(UserError, match="nothing to resume"):
        distill(tiny, "dm", 1, tmp_path / "x", None, RunOptions(iterations=1), resume=True)
    with pytest.raises(UserError, match="iterations must be at least 1"):
        RunOptions(iterations=0)
    assert not (tmp_path / "x").exists()


class _Hungry(Pixels):
    """Pixels whose rendering fails the way an over-large run does on a CPU."""

    def render_classes(self, classes: list[int]) -> torch.Tensor:
        raise RuntimeError(
            "DefaultCPUAllocator: can't allocate memory: you tried to allocate 96337920000 bytes. "
            "Error code 12 (Cannot allocate memory)"
        )


def test_running_out_of_memory_is_one_line_naming_the_knobs(tiny) -> None:
    from gendistill.distill import Schedule, run
    from gendistill.objectives import OBJECTIVES, MatchContext

    params: Parameterisation = _Hungry.build(tiny, 1, PixelsConfig(), torch.Generator())
    ctx = MatchContext(tiny, NET, real_batch=8)
    with pytest.raises(UserError, match=r"out of memory at iteration 1 .*--chunk K.*--real-batch"):
        run(params, OBJECTIVES.get("dm").from_options(1), ctx, Schedule(2, 1.0), progress=False)


def test_torchrun_two_processes_equal_one(fmnist_dir: Path, tmp_path: Path, cli_procs) -> None:
    """DM sharded over classes by torchrun (gloo) writes the artifact a single process writes. The sharding
    tests pin fp32: under bf16 a rank with one thread and a process with two round differently, so their
    sets agree only to bf16's precision, not to 1e-5."""
    common = [
        "distill",
        "--method",
        "dm",
        "--ipc",
        "2",
        "--iterations",
        "3",
        "--real-batch",
        "8",
        "--model",
        NET,
        "--data-dir",
        str(fmnist_dir),
        "--quiet",
        "--seed",
        "4",
        "--precision",
        "fp32",
    ]
    for procs, name in ((1, "one"), (2, "two")):
        cli_procs(procs, *common, "--out", tmp_path / name)
    a, b = load(tmp_path / "one"), load(tmp_path / "two")
    assert b.meta["world_size"] == 2 and a.meta["world_size"] == 1
    assert torch.allclose(a.images, b.images, atol=1e-5)
    assert a.meta["history"]["loss"] == pytest.approx(b.meta["history"]["loss"], rel=1e-5)


def test_torchrun_hglad_with_crfd_selection_equals_one_process(
    fmnist_dir: Path, saved_prior: Path, tmp_path: Path, cli_procs
) -> None:
    """Each rank scores CRFD over its own classes and the scores are summed, so every rank keeps the
    snapshot one process keeps (each rank used to score all classes and keep its own)."""
    common = [
        "distill",
        "--method",
        "dm",
        "--param",
        "hglad",
        "--prior",
        str(saved_prior),
        "--select",
        "crfd",
        "--select-every",
        "1",
        "--ipc",
        "1",
        "--iterations",
        "14",
        "--real-batch",
        "8",
        "--model",
        NET,
        "--data-dir",
        str(fmnist_dir),
        "--quiet",
        "--seed",
        "2",
        "--no-compile",
        "--precision",
        "fp32",
    ]
    for procs, name in ((1, "one"), (2, "two")):
        cli_procs(procs, *common, "--out", tmp_path / name)
    a, b = load(tmp_path / "one"), load(tmp_path / "two")
    assert [s["iteration"] for s in a.meta["history"]["selected"]] == [
        s["iteration"] for s in b.meta["history"]["selected"]
    ]
    assert torch.allclose(a.images, b.images, atol=1e-5)


def test_a_run_too_large_for_memory_is_refused_before_it_starts(tiny, tiny_prior) -> None:
    from gendistill.distill.memory import check_fits_in_memory, step_bytes
    from gendistill.objectives import OBJECTIVES, MatchContext
    from gendistill.params import GanLatents

    ctx = MatchContext(tiny, NET, real_batch=8)
    dc, dm = OBJECTIVES.get("dc").from_options(2), OBJECTIVES.get("dm").from_options(2)
    whole = GanLatents.create(tiny, 2, tiny_prior(), 1, torch.Generator().manual_seed(0), 1.0, 0.01)
    chunked = GanLatents.create(tiny, 2, tiny_prior(), 1, torch.Generator().manual_seed(0), 1.0, 0.01, chunk=2)
    assert step_bytes(whole, dc, ctx) > step_bytes(chunked, dc, ctx) > 0  # chunking bounds the rendering's share
    assert step_bytes(whole, dc, ctx) > step_bytes(whole, dm, ctx)  # DC back-propagates through a gradient
    need = check_fits_in_memory(whole, dc, ctx, free=2**40)
    with pytest.raises(UserError, match=r"needs about .* GB .*--chunk K.*--ipc"):
        check_fits_in_memory(whole, dc, ctx, free=need // 2)


@pytest.mark.parametrize("method", ["dm", "dsa"])
def test_bf16_is_deterministic_resumes_exactly_and_is_recorded(tiny, tmp_path: Path, killer, method: str) -> None:
    objective = {"outer_loop": 1, "inner_loop": 1} if method == "dsa" else {}  # one loss per iteration
    opts = RunOptions(**{**OPTS.__dict__, "precision": "bf16", "objective": objective})
    a = distill(tiny, method, 2, tmp_path / "a", None, opts, progress=False)
    b = distill(tiny, method, 2, tmp_path / "b", None, opts, progress=False)
    assert torch.equal(a.images, b.images) and a.meta["config"]["precision"] == "bf16"
    with pytest.raises(KeyboardInterrupt):
        distill(tiny, method, 2, tmp_path / "c", None, opts, progress=False, on_iteration=killer(4))
    resumed = distill(tiny, method, 2, tmp_path / "c", None, opts, resume=True, progress=False)
    assert torch.equal(resumed.images, a.images)
    fp32 = distill(
        tiny, method, 2, tmp_path / "f", None, RunOptions(**{**opts.__dict__, "precision": "fp32"}), progress=False
    )
    assert fp32.meta["config"]["precision"] == "fp32" and not torch.equal(fp32.images, a.images)
    assert a.meta["history"]["loss"][0] == pytest.approx(fp32.meta["history"]["loss"][0], rel=0.05)
    with pytest.raises(KeyboardInterrupt):
        distill(tiny, method, 2, tmp_path / "d", None, opts, progress=False, on_iteration=killer(2))
    with pytest.raises(UserError, match="other settings: precision"):  # a bf16 checkpoint does not resume in fp32
        distill(
            tiny,
            method,
            2,
            tmp_path / "d",
            None,
            RunOptions(**{**opts.__dict__, "precision": "fp32"}),
            resume=True,
            progress=False,
        )


# --- DCGM: a generator set from the engine ---
def _dcgm_opts(**kw) -> RunOptions:
    return RunOptions(
        **{"iterations": 4, "real_batch": 8, "model": NET, "seed": 3, "checkpoint_every": 1, "precision": "fp32", **kw}
    )


def test_dcgm_writes_a_generator_set_that_samples_any_ipc(tiny, saved_prior: Path, tmp_path: Path) -> None:
    from gendistill.artifacts import GeneratorSet
    from gendistill.params import GeneratorConfig

    param = GeneratorConfig(prior=str(saved_prior))
    out = distill(tiny, "dcgm", 2, tmp_path / "g", param, _dcgm_opts(), progress=False)
    assert isinstance(out, GeneratorSet)
    config = out.meta["config"]
    assert config["param"]["name"] == "generator" and config["objective"]["name"] == "dm"
    assert config["regularisers"] == [
        {"name": "intra", "weight": 1.0},
        {"name": "inter", "weight": 1.0},
        {"name": "classify", "weight": 10.0},
    ]
    loaded = load(tmp_path / "g")
    assert isinstance(loaded, GeneratorSet) and loaded.weights_dtype == torch.float16
    assert (
        loaded.meta["storage_bytes"]
        == loaded.storage_bytes()
        < (tmp_path / "g" / "generator.safetensors").stat().st_size + 10_000
    )
    fixed = loaded.training_set()
    assert len(fixed) == 20 and torch.allclose(fixed.images, out.training_set().images, atol=1e-6)
    five = loaded.sample(5, seed=1)
    assert len(five) == 50 and torch.equal(five.labels, torch.arange(10).repeat_interleave(5))
    # stored codes come first: the fixed set's images, rendered from the fp16-stored weights
    first_two = five.images.view(10, 5, 1, 28, 28)[:, :2].reshape(20, 1, 28, 28)
    assert torch.allclose(first_two, fixed.images, atol=1e-5)
    assert torch.equal(loaded.sample(5, seed=1).images, five.images)


def test_dcgm_resume_is_bit_identical(tiny, saved_prior: Path, tmp_path: Path, killer) -> None:
    from gendistill.params import GeneratorConfig

    param = GeneratorConfig(prior=str(saved_prior))
    full = distill(tiny, "dcgm", 2, tmp_path / "full", param, _dcgm_opts(), progress=False)
    with pytest.raises(KeyboardInterrupt):
        distill(tiny, "dcgm", 2, tmp_path / "part", param, _dcgm_opts(), progress=False, on_iteration=killer(2))
    resumed = distill(tiny, "dcgm", 2, tmp_path / "part", param, _dcgm_opts(), resume=True, progress=False)
    assert full.meta["history"]["loss"] == resumed.meta["history"]["loss"]
    assert torch.equal(full.codes, resumed.codes)
    for (k, a), b in zip(full.generator.state_dict().items(), resumed.generator.state_dict().values()):
        assert torch.equal(a, b), k


def test_torchrun_dcgm_two_processes_equal_one(fmnist_dir: Path, saved_prior: Path, tmp_path: Path, cli_procs) -> None:
    """Classes sharded over 2 ranks, the generator's gradients summed over them, the inter-class centres
    gathered: the same generator and codes as one process, to float tolerance."""
    common = [
        "distill",
        "--method",
        "dcgm",
        "--prior",
        str(saved_prior),
        "--ipc",
        "2",
        "--iterations",
        "3",
        "--real-batch",
        "8",
        "--model",
        NET,
        "--data-dir",
        str(fmnist_dir),
        "--quiet",
        "--seed",
        "4",
        "--no-compile",
        "--precision",
        "fp32",
    ]
    for procs, name in ((1, "one"), (2, "two")):
        cli_procs(procs, *common, "--out", tmp_path / name)
    a, b = load(tmp_path / "one"), load(tmp_path / "two")
    assert b.meta["world_size"] == 2
    assert torch.allclose(a.codes, b.codes, atol=1e-5)
    for (k, x), y in zip(a.generator.state_dict().items(), b.generator.state_dict().values()):
        assert torch.allclose(x.float(), y.float(), atol=2e-3), k  # stored as fp16
    assert a.meta["history"]["loss"] == pytest.approx(b.meta["history"]["loss"], rel=1e-4)


# --- DiM-style baseline: carried state (the online pool network, the critic) through checkpoints ---
def _dim_opts(**kw) -> RunOptions:
    objective = {"pool": NET, "redraw_every": 2, "train_batch": 16}
    return _dcgm_opts(objective=objective, **kw)


@pytest.fixture
def short_warmup(monkeypatch: pytest.MonkeyPatch) -> None:
    from gendistill.objectives import AdversarialRealism

    monkeypatch.setattr(AdversarialRealism, "WARMUP", 3)


def test_dim_fine_tunes_the_generator_and_keeps_its_seeded_codes(
    tiny, saved_prior: Path, tmp_path: Path, short_warmup
) -> None:
    from gendistill.methods import METHODS
    from gendistill.params import GeneratorCodes

    param = METHODS.get("dim").param_config(prior=str(saved_prior))
    out = distill(tiny, "dim", 2, tmp_path / "d", param, _dim_opts(), progress=False)
    config = out.meta["config"]
    assert config["objective"]["name"] == "pool" and config["objective"]["networks"] == [NET]
    assert config["regularisers"] == [{"name": "gan", "weight": 1.0}]
    assert config["param"]["config"]["train_codes"] is False and config["param"]["config"]["fresh"] == 1.0
    # the codes are the seeded draw they started as; the generator's weights moved
    start = GeneratorCodes.build(tiny, 2, param, torch.Generator().manual_seed(3))
    assert torch.equal(out.codes, start.codes.detach())
    moved = [
        not torch.allclose(a.float(), b.float(), atol=1e-3)
        for a, b in zip(out.generator.state_dict().values(), start.generator.state_dict().values())
    ]
    assert any(moved)


def test_dim_resume_is_bit_identical_across_a_redraw(
    tiny, saved_prior: Path, tmp_path: Path, killer, short_warmup
) -> None:
    """Killed after iteration 3 (the pool network drawn at 2 has trained one step, the critic four): the
    resumed run restores both from the checkpoint and ends with the uninterrupted run's tensors."""
    from gendistill.methods import METHODS

    param = METHODS.get("dim").param_config(prior=str(saved_prior))
    full = distill(tiny, "dim", 2, tmp_path / "full", param, _dim_opts(iterations=5), progress=False)
    with pytest.raises(KeyboardInterrupt):
        distill(
            tiny, "dim", 2, tmp_path / "part", param, _dim_opts(iterations=5), progress=False, on_iteration=killer(3)
        )
    resumed = distill(tiny, "dim", 2, tmp_path / "part", param, _dim_opts(iterations=5), resume=True, progress=False)
    assert full.meta["history"]["loss"] == resumed.meta["history"]["loss"]
    for (k, a), b in zip(full.generator.state_dict().items(), resumed.generator.state_dict().values()):
        assert torch.equal(a, b), k


def test_a_resume_that_lost_the_carried_state_would_differ(
    tiny, saved_prior: Path, tmp_path: Path, killer, short_warmup, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check above has teeth: without restoring the critic and the pool network the losses differ."""
    from gendistill.methods import METHODS
    from gendistill.objectives import AdversarialRealism, PoolMatching

    param = METHODS.get("dim").param_config(prior=str(saved_prior))
    full = distill(tiny, "dim", 2, tmp_path / "full", param, _dim_opts(iterations=4), progress=False)
    with pytest.raises(KeyboardInterrupt):
        distill(
            tiny, "dim", 2, tmp_path / "part", param, _dim_opts(iterations=4), progress=False, on_iteration=killer(2)
        )
    monkeypatch.setattr(AdversarialRealism, "restore_state", lambda self, state, ctx: None)
    monkeypatch.setattr(PoolMatching, "restore_state", lambda self, state, ctx: None)
    resumed = distill(tiny, "dim", 2, tmp_path / "part", param, _dim_opts(iterations=4), resume=True, progress=False)
    assert full.meta["history"]["loss"][3:] != resumed.meta["history"]["loss"][3:]
