"""Diffusion priors on diffusers, inversion and generation, on tiny randomly initialised models."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from gendistill.artifacts import EmbeddingSet, ImageSet, load
from gendistill.cli.main import main
from gendistill.errors import UserError

WIDTH, TOKENS = 8, 2


def tiny_unet(sample_size: int = 28, channels: int = 1):
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    return UNet2DConditionModel(
        sample_size=sample_size,
        in_channels=channels,
        out_channels=channels,
        block_out_channels=(8, 16),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=WIDTH,
        attention_head_dim=2,
        norm_num_groups=4,
    )


SCHEDULE = {
    "num_train_timesteps": 100,
    "beta_schedule": "squaredcos_cap_v2",
    "prediction_type": "epsilon",
    "clip_sample": False,
}


def pixel_prior():
    from gendistill.priors.diffusion import DiffusionPrior
    from gendistill.priors.token_encoder import TokenEncoder, TokenEncoderConfig

    torch.manual_seed(1)
    encoder = TokenEncoder(TokenEncoderConfig(1, TOKENS, WIDTH, channels=8))
    return DiffusionPrior(tiny_unet(), SCHEDULE, encoder=encoder)


@pytest.fixture
def diffusion_dir(tmp_path: Path) -> Path:
    """gendistill's own layout: a pixel-space UNet, its scheduler and its token encoder."""
    return pixel_prior().save_pretrained(tmp_path / "diffusion")


@pytest.fixture
def sd_like_dir(tmp_path: Path) -> Path:
    """Stable Diffusion's layout, in miniature: RGB VAE, a latent UNet, a scheduler, an unused text encoder."""
    from diffusers import AutoencoderKL, PNDMScheduler

    root = tmp_path / "sd"
    torch.manual_seed(2)
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        block_out_channels=(8, 16),
        latent_channels=4,
        norm_num_groups=4,
        sample_size=32,
    )
    vae.save_pretrained(root / "vae")
    tiny_unet(sample_size=16, channels=4).save_pretrained(root / "unet")
    PNDMScheduler(num_train_timesteps=100, skip_prk_steps=True).save_pretrained(root / "scheduler")
    (root / "text_encoder").mkdir()
    (root / "text_encoder" / "config.json").write_text("{}")
    (root / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    return root


def test_both_layouts_load_as_diffusion_priors(diffusion_dir: Path, sd_like_dir: Path) -> None:
    from gendistill.priors import load_prior

    pixel = load_prior(diffusion_dir)
    assert pixel.prior_family == "diffusion" and (pixel.image_size, pixel.image_channels) == (28, 1)
    assert (pixel.tokens, pixel.width) == (TOKENS, WIDTH) and pixel.encoder is not None
    latent = load_prior(sd_like_dir)
    assert latent.vae is not None and (latent.image_size, latent.image_channels) == (32, 3)
    grey = torch.rand(3, 1, 28, 28) * 2 - 1
    z = latent.to_model(grey)  # grey images are repeated over the RGB channels and resized to 32 px
    assert z.shape == (3, 4, 16, 16)
    cond = torch.randn(3, 5, WIDTH)  # any number of tokens enters cross-attention
    out = latent.sample(torch.randn_like(z), cond, cond.mean(0, keepdim=True), guidance=2.0, steps=2)
    assert latent.to_pixels(out, 28, 1).shape == (3, 1, 28, 28)
    loss = pixel.denoising_loss(grey, torch.randn(3, TOKENS, WIDTH), torch.tensor([1, 50, 99]), torch.randn_like(grey))
    assert loss.shape == (3,) and torch.isfinite(loss).all()


def test_diffusion_prior_refused_where_a_gan_is_needed(diffusion_dir: Path, tiny) -> None:
    from gendistill.params.latent import GanLatents, LatentConfig

    with pytest.raises(UserError, match="needs a prior that can do 'layers'; the diffusion prior"):
        GanLatents.build(tiny, 1, LatentConfig(prior=str(diffusion_dir)), torch.Generator())


def test_bad_diffusers_folders_are_one_line(tmp_path: Path, diffusion_dir: Path) -> None:
    from diffusers import UNet2DModel

    from gendistill.priors.diffusion import load_diffusers

    with pytest.raises(UserError, match="no unet/config.json"):
        load_diffusers(tmp_path)
    plain = tmp_path / "plain"
    unet = UNet2DModel(
        sample_size=8,
        in_channels=1,
        out_channels=1,
        block_out_channels=(8, 8),
        norm_num_groups=4,
        down_block_types=("DownBlock2D",) * 2,
        up_block_types=("UpBlock2D",) * 2,
    )
    unet.save_pretrained(plain / "unet")
    with pytest.raises(UserError, match="UNet2DModel, which has no cross-attention"):
        load_diffusers(plain)
    no_sched = tmp_path / "nosched"
    tiny_unet().save_pretrained(no_sched / "unet")
    with pytest.raises(UserError, match="scheduler_config.json"):
        load_diffusers(no_sched)


class _Exploit:
    """Unpickling this object would create the file ``path`` (what a malicious .bin would do)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def test_pickle_weights_never_run_code(tmp_path: Path, diffusion_dir: Path) -> None:
    from gendistill.priors.diffusion import load_diffusers

    unet = diffusion_dir / "unet"
    (unet / "diffusion_pytorch_model.safetensors").unlink()
    marker = tmp_path / "pwned"
    torch.save({"x": _Exploit(marker)}, unet / "diffusion_pytorch_model.bin")
    with pytest.raises(UserError, match=r"only pickle weights \(.bin\).*--trust-pickle"):
        load_diffusers(diffusion_dir)
    with pytest.raises(UserError):  # trusted, diffusers reads it with weights_only=True, which refuses the object
        load_diffusers(diffusion_dir, trust_pickle=True)
    assert not marker.exists()


def _inverter(tiny, classes=None, steps: int = 3, per_class: int = 2, **kw):
    from gendistill.inversion.invert import InversionConfig, Inverter, choose, real_images

    kw = {"lr": 0.05, "chunk": 250, **kw}
    config = InversionConfig(per_class=per_class, steps=steps, **kw)
    indices = choose(tiny, per_class, "train", 0)
    images, labels = real_images(tiny, "train", indices)
    return Inverter(pixel_prior(), images, labels, config, classes, keys=indices)


def test_inversion_lowers_the_loss_on_fixed_draws(tiny) -> None:
    inv = _inverter(tiny, steps=8, init="zeros", lr=0.2)
    draws = [inv._draws(s) for s in range(3)]

    def loss() -> float:
        with torch.no_grad():
            return sum(float(inv.prior.denoising_loss(inv.z0, inv.embeddings, t, n).sum()) for t, n in draws)

    before = loss()
    inv.run(progress=False)
    assert loss() < before


def test_inversion_shards_and_chunks_equal_one_run(tiny) -> None:
    whole = _inverter(tiny).run(progress=False)
    chunked = _inverter(tiny, chunk=1).run(progress=False)
    torch.testing.assert_close(chunked, whole, rtol=1e-5, atol=1e-6)
    even, odd = _inverter(tiny, classes=[0, 2, 4, 6, 8]), _inverter(tiny, classes=[1, 3, 5, 7, 9])
    merged = torch.zeros_like(whole)
    for part in (even, odd):
        merged[part.rows] = part.run(progress=False)
    torch.testing.assert_close(merged, whole, rtol=1e-5, atol=1e-6)


def test_the_first_n_per_class_are_the_inversion_of_n(tiny) -> None:
    from gendistill.artifacts import EmbeddingSet

    three = _inverter(tiny, per_class=3, init="random")
    one = _inverter(tiny, per_class=1, init="random")
    whole = EmbeddingSet(three.run(progress=False), three.labels, {}, {}, torch.arange(len(three.labels)))
    assert torch.equal(whole.first(1).labels, one.labels)
    torch.testing.assert_close(whole.first(1).embeddings, one.run(progress=False), rtol=1e-5, atol=1e-6)


def test_inversion_resume_equals_uninterrupted(tiny, tmp_path: Path) -> None:
    straight = _inverter(tiny, steps=4).run(progress=False)
    _inverter(tiny, steps=2, checkpoint_every=1).run(tmp_path / "ckpt", progress=False)
    resumed = _inverter(tiny, steps=4, checkpoint_every=1).run(tmp_path / "ckpt", progress=False)
    assert torch.equal(resumed, straight)


def _cli(*args: str) -> int:
    return main([str(a) for a in args])


def _invert_args(diffusion_dir: Path, fmnist_dir: Path, out: Path) -> list:
    return [
        "invert",
        "--prior",
        diffusion_dir,
        "--data-dir",
        fmnist_dir,
        "--per-class",
        "2",
        "--steps",
        "2",
        "--out",
        out,
        "--quiet",
        "--precision",
        "fp32",
    ]


def test_invert_and_generate_commands(diffusion_dir: Path, fmnist_dir: Path, tmp_path: Path) -> None:
    inv = tmp_path / "inv"
    assert _cli(*_invert_args(diffusion_dir, fmnist_dir, inv)) == 0
    emb = load(inv)
    assert isinstance(emb, EmbeddingSet) and emb.embeddings.shape == (20, TOKENS, WIDTH)
    assert torch.equal(torch.bincount(emb.labels), torch.full((10,), 2))
    assert emb.meta["images_per_minute"] > 0 and len(emb.meta["loss"]) == 2 and emb.indices is not None
    common = ["generate", inv, "--per-image", "2", "--steps", "2", "--quiet", "--precision", "fp32"]
    assert _cli(*common, "--out", tmp_path / "a", "--batch", "40") == 0
    assert _cli(*common, "--out", tmp_path / "b", "--batch", "3") == 0
    a, b = load(tmp_path / "a"), load(tmp_path / "b")
    assert isinstance(a, ImageSet) and a.images.shape == (40, 1, 28, 28)
    torch.testing.assert_close(a.images, b.images, rtol=0, atol=1e-5)  # each image has its own seed
    settings = a.meta["config"]["generate"]
    assert (settings["noise"], settings["interp"], settings["guidance"], settings["uncond"]) == (0.1, 0.1, 2.0, "mean")
    assert settings["scheduler"] == "dpm" and a.meta["method"] == "diffusion-inversion"
    assert torch.equal(a.extra["real_indices"], emb.indices)
    assert (
        _cli(
            "evaluate",
            tmp_path / "a",
            "--train-on",
            "both",
            "--steps",
            "2",
            "--models",
            "convnet[width=8]",
            "--runs",
            "1",
            "--data-dir",
            fmnist_dir,
            "--quiet",
            "--precision",
            "fp32",
        )
        == 0
    )
    assert (
        _cli("generate", inv, "--ipc", "2", "--modes", "kmeans", "--steps", "2", "--quiet", "--out", tmp_path / "ipc")
        == 0
    )
    ipc = load(tmp_path / "ipc")
    assert len(ipc) == 20 and torch.equal(torch.bincount(ipc.labels), torch.full((10,), 2))
    assert _cli("generate", inv, "--ipc", "3", "--quiet", "--out", tmp_path / "too-many") == 2  # 2 inverted per class
    assert not (tmp_path / "too-many").exists()


def test_generate_variants_follow_the_recipe() -> None:
    from gendistill.inversion.generate import GenerateConfig, per_image_plan

    e = torch.randn(6, TOKENS, WIDTH)
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    plain = per_image_plan(e, labels, GenerateConfig(per_image=2, noise=0.0, interp=0.0))
    assert torch.equal(plain.conditionings, e.repeat_interleave(2, 0))
    mixed = per_image_plan(e, labels, GenerateConfig(per_image=4, noise=0.0, interp=0.5))
    for cond, label, src in zip(mixed.conditionings, mixed.labels, mixed.sources):
        partners = [(e[src] + e[j]) / 2 for j in range(6) if labels[j] == label]
        assert any(torch.allclose(cond, p) for p in partners)  # halfway to a same-class partner


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--noise", "1.5", "noise must be at most 1, got 1.5"),
        ("--per-image", "0", "per_image must be at least 1, got 0"),
        ("--interp", "-0.1", "interp must be at least 0, got -0.1"),
    ],
)
def test_generate_bad_settings_exit_2(tmp_path: Path, capsys, flag: str, value: str, message: str) -> None:
    assert _cli("generate", tmp_path, "--out", tmp_path / "x", flag, value) == 2
    assert message in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_generate_refuses_another_prior_and_an_existing_output(
    diffusion_dir: Path, fmnist_dir: Path, tmp_path: Path, capsys
) -> None:
    inv = tmp_path / "inv"
    assert _cli(*_invert_args(diffusion_dir, fmnist_dir, inv)) == 0
    other = pixel_prior()
    torch.nn.init.normal_(next(other.unet.parameters()))
    other.save_pretrained(tmp_path / "other")
    assert _cli("generate", inv, "--prior", tmp_path / "other", "--quiet", "--out", tmp_path / "x") == 2
    assert "not the one these embeddings were inverted with" in capsys.readouterr().err
    (tmp_path / "exists").mkdir()
    assert _cli("generate", inv, "--quiet", "--out", tmp_path / "exists") == 2
    assert "already exists" in capsys.readouterr().err
    assert _cli(*_invert_args(diffusion_dir, fmnist_dir, inv)) == 2  # the inversion's output exists too


def test_invert_refuses_a_gan_prior(saved_prior: Path, fmnist_dir: Path, tmp_path: Path, capsys) -> None:
    assert _cli(*_invert_args(saved_prior, fmnist_dir, tmp_path / "inv")) == 2
    assert "invert needs a prior that can do 'conditionings'" in capsys.readouterr().err
    assert not (tmp_path / "inv").exists()


def test_prior_train_diffusion_resumes_exactly(fmnist_dir: Path, tmp_path: Path) -> None:
    common = [
        "prior",
        "train",
        "--kind",
        "diffusion",
        "--data-dir",
        fmnist_dir,
        "--batch",
        "8",
        "--channels",
        "8,16",
        "--tokens",
        "2",
        "--width",
        "8",
        "--quiet",
        "--precision",
        "fp32",
    ]
    assert _cli(*common, "--steps", "4", "--out", tmp_path / "straight") == 0
    partial = tmp_path / "resumed.partial"
    # two steps into a partial run, then continued to four, as a kill after step 2 would leave it
    from gendistill.data import load_dataset
    from gendistill.priors.diffusion_train import DiffusionRecipe, DiffusionTrainer

    recipe = DiffusionRecipe(steps=2, batch=8, block_channels=(8, 16), tokens=2, width=8)
    data = load_dataset("fashion-mnist", data_dir=fmnist_dir, val_fraction=0.05)
    DiffusionTrainer(data, recipe, 0, torch.device("cpu")).run(partial, progress=False)
    assert _cli(*common, "--steps", "4", "--resume", "--out", tmp_path / "resumed") == 0
    a, b = load_prior_pair(tmp_path / "straight", tmp_path / "resumed")
    for (name, p), q in zip(a.unet.state_dict().items(), b.unet.state_dict().values()):
        assert torch.equal(p, q), name
    info = json.loads((tmp_path / "straight" / "gendistill.json").read_text())
    assert info["labels_used"] is False and info["steps"] == 4
    assert (tmp_path / "straight" / "samples" / "step000004.png").is_file()


def load_prior_pair(*folders: Path) -> list:
    from gendistill.priors import load_prior

    return [load_prior(f) for f in folders]


def test_torchrun_inversion_and_generation_equal_one_process(
    diffusion_dir: Path, fmnist_dir: Path, tmp_path: Path, cli_procs
) -> None:
    for procs in (1, 2):
        inv = tmp_path / f"inv{procs}"
        cli_procs(procs, *_invert_args(diffusion_dir, fmnist_dir, inv))
        cli_procs(
            procs,
            "generate",
            inv,
            "--per-image",
            "1",
            "--steps",
            "2",
            "--quiet",
            "--precision",
            "fp32",
            "--out",
            tmp_path / f"gen{procs}",
        )
    one, two = load(tmp_path / "inv1"), load(tmp_path / "inv2")
    torch.testing.assert_close(two.embeddings, one.embeddings, rtol=1e-5, atol=1e-6)
    assert two.meta["processes"] == 2
    torch.testing.assert_close(load(tmp_path / "gen2").images, load(tmp_path / "gen1").images, rtol=0, atol=1e-4)


def test_mixes_train_on_the_recorded_real_images_for_a_fixed_number_of_steps(tiny) -> None:
    from gendistill.evaluate.mixtures import StepStream, mix, real_subset

    idx = torch.tensor([0, 5, 9, 14])
    generated = ImageSet(
        torch.randn(6, 1, 28, 28), torch.arange(6) % 2, {"method": "diffusion-inversion"}, extra={"real_indices": idx}
    )
    real = mix(generated, tiny, "real")
    assert torch.equal(real.images, tiny.train_images[idx]) and torch.equal(real.labels, tiny.train_labels[idx])
    alone = real_subset(tiny, idx)  # the same images from the indices alone, nothing generated
    assert torch.equal(alone.images, real.images) and alone.meta["ipc"] == real.meta["ipc"]
    assert len(mix(generated, tiny, "both")) == 10 and mix(generated, tiny, "generated") is generated
    with pytest.raises(UserError, match="records no real images"):
        mix(ImageSet(torch.randn(2, 1, 28, 28), torch.arange(2)), tiny, "both")
    stream = StepStream(torch.arange(10.0), torch.arange(10), batch=4, seed=3)
    seen = torch.cat([stream.epoch(e)[1] for e in range(5)])  # 20 positions: two whole shuffles
    assert all(len(stream.epoch(e)[0]) == 4 for e in range(5))
    assert sorted(seen[:10].tolist()) == list(range(10)) and sorted(seen[10:].tolist()) == list(range(10))
    assert torch.equal(StepStream(torch.arange(10.0), torch.arange(10), 4, 3).epoch(3)[1], stream.epoch(3)[1])


def test_diffusion_inversion_is_a_bench_cell(diffusion_dir: Path, fmnist_dir: Path, tmp_path: Path) -> None:
    """A suite cell inverts per_class images per class for `iterations` steps, samples IPC per class from
    k-means modes, and is evaluated like any set; a rerun finds it in the store."""
    import yaml

    from gendistill.bench import ResultStore, load_suite, run_suite

    cell = {
        "method": "diffusion-inversion",
        "ipc": 2,
        "budget": {"iterations": 2},
        "options": {"prior": str(diffusion_dir), "per_class": 3, "precision": "fp32", "generate": {"steps": 2}},
    }
    raw = {
        "suite": "di",
        "data_dir": str(fmnist_dir),
        "protocols": ["quick"],
        "cells": [cell],
        "defaults": {"models": ["convnet[width=8]"], "runs": 1, "augment": "none"},
    }
    path = tmp_path / "di.yaml"
    path.write_text(yaml.safe_dump(raw))
    suite = load_suite(path)
    store = ResultStore(suite.store)
    assert run_suite(suite, store, tmp_path / "work", isolate=False, echo=lambda _: None) == 2
    made = store.records("cell")[0]
    images = load(Path(made["artifact"]))
    assert made["iterations"] == 2 and made["stored_bytes"] == images.storage_bytes() and made["distill_seconds"] > 0
    assert torch.equal(torch.bincount(images.labels), torch.full((10,), 2))
    assert images.meta["config"]["inversion"]["per_class"] == 3
    assert run_suite(suite, ResultStore(suite.store), tmp_path / "work", isolate=False, echo=lambda _: None) == 0
    raw["cells"][0]["options"]["colour"] = 1
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(UserError, match="unknown diffusion-inversion option"):
        run_suite(
            load_suite(path), ResultStore(tmp_path / "other.jsonl"), tmp_path / "w2", isolate=False, echo=lambda _: None
        )
