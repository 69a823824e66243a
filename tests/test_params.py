"""Parameterisations: pixels, GLaD and H-GLaD latents (rendering, chunked gradients, the walk, configs)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gendistill import load
from gendistill.errors import UserError
from gendistill.methods import RunOptions, distill
from gendistill.params import PARAMS, GanLatents, GladConfig, HGladConfig, Pixels, PixelsConfig
from gendistill.params.latent import LATENT_LR
from gendistill.priors import recommended_lr

NET = "convnet[width=16]"


def test_each_parameterisation_owns_a_frozen_config(tiny) -> None:
    import dataclasses

    assert PARAMS.get("glad").Config is GladConfig and PARAMS.get("hglad").Config is HGladConfig
    assert GladConfig().first_layer() == 2 and HGladConfig().first_layer() == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        GladConfig().layer = 3  # type: ignore[misc]
    with pytest.raises(UserError, match="unknown init"):
        PixelsConfig("zeros")
    with pytest.raises(UserError, match="snapshot selection"):
        HGladConfig(select="best")
    p = Pixels.build(tiny, 2, PixelsConfig("noise"), torch.Generator().manual_seed(0))
    assert p.images.shape == (20, 1, 28, 28) and p.config.to_dict() == {"init": "noise"}
    assert isinstance(p.optimizer(p.param_groups(0.1)), torch.optim.SGD) and p.stages(10).every == 0


def test_glad_renders_the_prior_and_chunked_gradients_match(tiny, tiny_prior) -> None:
    prior = tiny_prior()
    for layer in (-1, 0, 3):
        p = GanLatents.create(tiny, 2, prior, layer, torch.Generator().manual_seed(0), 1.0, 0.01)
        q = GanLatents.create(tiny, 2, prior, layer, torch.Generator().manual_seed(0), 1.0, 0.01, chunk=3)
        with torch.no_grad():
            ref = prior.suffix(prior.synthesis_input(p.ws), p.ws, 0)
        torch.testing.assert_close(p.render(), (ref + 1) / 2 / tiny.std[0] - tiny.mean[0] / tiny.std[0])
        target = torch.randn(20, 1, 28, 28)
        for params in (p, q):
            loss = (params.render_classes([1, 2, 3]) * target[:6]).sum()
            loss.backward()
            params.finish_backward()
        torch.testing.assert_close(p.ws.grad, q.ws.grad)
        if layer >= 0:
            torch.testing.assert_close(p.f.grad, q.f.grad)
            assert p.ws.grad[:, : max(layer, 0)].abs().sum() == 0  # layers before k do not shape the image


def test_advance_keeps_the_images(tiny, tiny_prior) -> None:
    p = GanLatents.create(tiny, 1, tiny_prior(), 1, torch.Generator().manual_seed(0), 1.0, 0.01)
    before = p.render().detach()
    while p.can_advance():
        p.advance()
        torch.testing.assert_close(p.render().detach(), before)
    assert p.k == p.prior.num_layers - 1


def test_hglad_walks_the_layers_and_resumes_exactly(tiny, saved_prior: Path, tmp_path: Path, killer) -> None:
    space = HGladConfig(str(saved_prior), select="crfd", select_every=2)
    opts = RunOptions(iterations=14, real_batch=8, model=NET, seed=1, checkpoint_every=3)
    full = distill(tiny, "dm", 2, tmp_path / "full", space, opts, progress=False)
    param = full.meta["config"]["param"]
    assert param["name"] == "hglad" and param["layer"] == 7 and param["config"]["prior"] == str(saved_prior)
    assert param["config"]["layer"] == 1 and param["config"]["select"] == "crfd"
    assert [s["layer"] for s in full.meta["history"]["selected"]] == [1, 2, 3, 4, 5, 6, 7]
    assert full.extra["latent.f"].shape[0] == 20 and "latent.ws" in full.extra
    with pytest.raises(KeyboardInterrupt):  # killed mid-walk, at layer 4, with a CRFD best held
        distill(tiny, "dm", 2, tmp_path / "part", space, opts, progress=False, on_iteration=killer(6))
    resumed = distill(tiny, "dm", 2, tmp_path / "part", space, opts, resume=True, progress=False)
    assert torch.equal(full.images, resumed.images)
    assert full.meta["history"]["selected"] == resumed.meta["history"]["selected"]
    loaded = load(tmp_path / "part")  # evaluation needs no prior: the images are in the artifact
    assert torch.equal(loaded.images, full.images)


@pytest.mark.parametrize("method", ["dc", "mtt"])
def test_glad_runs_with_other_objectives(tiny, saved_prior: Path, tmp_path: Path, method: str) -> None:
    kw = {}
    if method == "mtt":
        from gendistill.experts import ExpertSpec, train_experts

        train_experts(tiny, tmp_path / "experts", 1, ExpertSpec(tiny.name, NET, epochs=2), progress=False)
        kw = {"experts": str(tmp_path / "experts"), "syn_steps": 2, "expert_epochs": 1, "max_start_epoch": 1}
    else:
        kw = {"outer_loop": 1, "inner_loop": 1}
    space = GladConfig(str(saved_prior), layer=3, chunk=7)
    opts = RunOptions(iterations=2, real_batch=8, model=NET, objective=kw)
    out = distill(tiny, method, 2, tmp_path / method, space, opts, progress=False)
    assert out.images.shape == (20, 1, 28, 28) and torch.isfinite(out.images).all()


def test_a_prior_may_carry_its_own_latent_learning_rates(tiny, tmp_path: Path, tiny_prior) -> None:
    tuned = tiny_prior().save_pretrained(tmp_path / "tuned", extra_config={"latent_lr": {"dm": [0.25, 0.5]}})
    assert recommended_lr(tuned, "dm") == (0.25, 0.5)
    assert recommended_lr(tuned, "dc") is None and recommended_lr(tiny_prior(), "dm") is None

    def used(space: GladConfig, name: str) -> dict:
        out = distill(
            tiny, "dm", 1, tmp_path / name, space, RunOptions(iterations=1, real_batch=8, model=NET), progress=False
        )
        return out.meta["config"]["param"]["config"]

    param = used(GladConfig(str(tuned)), "a")
    assert (param["lr_f"], param["lr_w"]) == (0.25, 0.5)
    assert used(GladConfig(str(tuned), lr_f=3.0), "c")["lr_f"] == 3.0  # the user's choice wins
    plain = tiny_prior().save_pretrained(tmp_path / "plain")
    assert used(GladConfig(str(plain)), "d")["lr_f"] == LATENT_LR["dm"][0]  # GLaD's published default


def test_latent_space_refuses_a_mismatched_prior(tiny, tmp_path: Path, tiny_prior) -> None:
    tiny_prior(size=32, channels=3).save_pretrained(tmp_path / "rgb")
    with pytest.raises(UserError, match="use a prior trained on it"):
        distill(
            tiny, "dm", 2, tmp_path / "x", GladConfig(str(tmp_path / "rgb")), RunOptions(iterations=1), progress=False
        )
    with pytest.raises(UserError, match="layer must be in"):
        GanLatents.create(tiny, 1, tiny_prior(), 8, torch.Generator(), 1.0, 0.01)
    assert not (tmp_path / "x").exists()


def test_glad_keeps_its_lowest_crfd_snapshot(tiny, saved_prior: Path, tmp_path: Path) -> None:
    space = GladConfig(str(saved_prior), layer=3, select="crfd", select_every=2)
    out = distill(
        tiny, "dm", 2, tmp_path / "g", space, RunOptions(iterations=6, real_batch=8, model=NET), progress=False
    )
    (selected,) = out.meta["history"]["selected"]
    assert selected["layer"] == 3 and selected["iteration"] in (2, 4, 6)


def test_latent_rendering_under_bf16_stays_close_and_fp32_valued(tiny, tiny_prior) -> None:
    p = GanLatents.create(tiny, 1, tiny_prior(), 2, torch.Generator().manual_seed(0), 1.0, 0.01)
    ref = p.render().detach()
    p.set_precision(torch.bfloat16)
    low = p.render()
    assert low.dtype == torch.float32 and (low.detach() - ref).abs().max() < 0.1 * ref.abs().max()
    low.sum().backward()
    assert p.ws.grad.dtype == torch.float32 and p.f.grad.dtype == torch.float32  # the learnables stay fp32


# --- the generator parameterisation (DCGM) ---
def _generator(tiny, saved_prior: Path, **config):
    from gendistill.params import GeneratorCodes, GeneratorConfig

    return GeneratorCodes.build(
        tiny, 3, GeneratorConfig(prior=str(saved_prior), **config), torch.Generator().manual_seed(0)
    )


def test_generator_renders_its_codes_and_mixes_fresh_rows_only_inside_an_iteration(tiny, saved_prior) -> None:
    params = _generator(tiny, saved_prior, fresh=0.5)
    assert params.generator.training and all(p.requires_grad for p in params.generator.parameters())
    stored = params.render().detach()
    assert stored.shape == (30, 1, 28, 28) and torch.equal(params.labels, torch.arange(10).repeat_interleave(3))
    params.begin_iteration(4)
    mixed = params.render().detach()
    mask = params._fresh[0]
    assert 0 < int(mask.sum()) < 30
    changed = (mixed - stored).flatten(1).abs().amax(1) > 0
    assert torch.equal(changed, mask)  # exactly the fresh rows differ
    params.begin_iteration(4)
    assert torch.equal(params.render().detach(), mixed)  # a pure function of the iteration
    params.end_iteration()
    assert torch.equal(params.render().detach(), stored)


def test_generator_chunked_gradients_equal_whole_ones(tiny, saved_prior) -> None:
    grads = []
    for chunk in (None, 7):
        params = _generator(tiny, saved_prior, chunk=chunk)
        params.begin_iteration(0)
        (params.render() ** 2).mean().backward()
        params.finish_backward()
        grads.append([p.grad.clone() for p in params.parameters()])
    for a, b in zip(*grads):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-4)


def test_generator_from_scratch_differs_from_the_prior_and_is_seeded(tiny, saved_prior) -> None:
    tuned, scratch, again = (_generator(tiny, saved_prior, from_scratch=s) for s in (False, True, True))
    w = "layers.0.weight"
    assert not torch.equal(tuned.generator.state_dict()[w], scratch.generator.state_dict()[w])
    assert torch.equal(scratch.generator.state_dict()[w], again.generator.state_dict()[w])


def test_teacher_screened_codes_keep_each_rows_most_confident_draw(tiny, saved_prior, tmp_path, monkeypatch) -> None:
    """Each stored code is the candidate the real-data judge finds most like its class: never less so than
    the first candidate (the code a plain draw would have given), seeded, and with one candidate the plain
    draw itself."""
    from gendistill.evaluate.teacher import JUDGE, teacher
    from gendistill.params.generator import random_codes, teacher_screened_codes
    from gendistill.priors import load_prior, to_normalized
    from gendistill.priors.base import decode

    monkeypatch.setenv("GENDISTILL_CACHE", str(tmp_path))
    prior = load_prior(str(saved_prior), image_size=28)
    labels = torch.arange(10).repeat_interleave(2)

    def confidence(codes: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            images = to_normalized(decode(prior, codes, labels).float(), tiny.mean, tiny.std)
            return judge(images).softmax(1)[torch.arange(len(labels)), labels]

    def screened(k: int) -> torch.Tensor:
        return teacher_screened_codes(prior, labels, tiny, k, torch.Generator().manual_seed(3))

    pool = torch.randn(len(labels), 4, prior.z_dim, generator=torch.Generator().manual_seed(3))
    best = screened(4)  # the cache is empty here: this trains the judge on first use
    judge = teacher(tiny, JUDGE, torch.device("cpu"))[0].eval()
    assert torch.equal(best, screened(4))  # seeded
    assert all(any(torch.equal(best[i], pool[i, j]) for j in range(4)) for i in range(len(labels)))
    assert bool((confidence(best) >= confidence(pool[:, 0]) - 1e-6).all())
    plain = random_codes(prior, labels, tiny, 1, torch.Generator().manual_seed(3))
    assert torch.equal(screened(1), plain)


def test_generator_config_refuses_bad_values() -> None:
    from gendistill.params import GeneratorConfig

    for bad, match in (
        ({"fresh": 1.0}, "fresh must be in"),
        ({"lr_g": 0.0}, "must be greater than 0"),
        ({"weights_dtype": "int8"}, "unknown weights_dtype"),
        ({"chunk": 0}, "chunk must"),
        ({"code_init": "best"}, "unknown code_init"),
        ({"candidates": 0}, "candidates must"),
    ):
        with pytest.raises(UserError, match=match):
            GeneratorConfig(**bad)
