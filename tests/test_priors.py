"""Priors (built-in StyleGAN, NVlabs adapters), latent parameterisations, H-GLaD's walk and CRFD."""

from __future__ import annotations

import pickle
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from gendistill.errors import UserError
from gendistill.priors import FAMILIES, StyleGAN, StyleGANConfig, load_prior, prefix, suffix
from gendistill.priors.nvlabs import adapt, load_network_pickle
from gendistill.priors.train import GanRecipe, GanTrainer


def test_stylegan_is_hierarchical_and_splits_exactly(tiny_prior) -> None:
    prior = tiny_prior()
    assert prior.num_layers == 8  # 4x4 conv, then (up, conv) at 8, 16, 32, then to-pixels
    labels = torch.arange(10)
    ws = prior.mapping(torch.randn(10, prior.z_dim), labels)
    assert ws.shape == (10, prior.num_ws, prior.w_dim)
    full = suffix(prior, prior.synthesis_input(ws), ws, 0)
    assert full.shape == (10, 1, 28, 28)  # generated at 32 px, centre-cropped
    for k in range(prior.num_layers + 1):
        torch.testing.assert_close(suffix(prior, prefix(prior, ws, k), ws, k), full)
    # the class matters: the same z under two labels gives two images
    z = torch.randn(1, prior.z_dim).repeat(2, 1)
    assert not torch.allclose(*prior.mapping(z, torch.tensor([0, 1])))


def test_save_and_load_pretrained(tmp_path: Path, tiny_prior) -> None:
    prior = tiny_prior()
    prior.save_pretrained(tmp_path / "p32")
    prior.save_pretrained(tmp_path / "p16", dtype=torch.float16)
    labels = torch.arange(10)
    ref = prior.sample(labels, torch.Generator().manual_seed(0))
    torch.testing.assert_close(load_prior(tmp_path / "p32").sample(labels, torch.Generator().manual_seed(0)), ref)
    half = load_prior(str(tmp_path / "p16")).sample(labels, torch.Generator().manual_seed(0))
    assert (half - ref).abs().max() < 0.05
    with pytest.raises(UserError, match="already exists"):
        prior.save_pretrained(tmp_path / "p32")
    weights = tmp_path / "p32" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(UserError, match="truncated or corrupted"):
        load_prior(tmp_path / "p32")
    with pytest.raises(UserError, match="prior"):
        load_prior("no-such-prior")


@pytest.mark.parametrize("amp", [None, torch.bfloat16], ids=["fp32", "bf16"])
def test_gan_training_resumes_exactly(tiny, tmp_path: Path, amp: torch.dtype | None) -> None:
    cfg = StyleGANConfig(10, 28, 1, z_dim=8, w_dim=16, mapping_layers=2, channel_base=64, channel_max=8)
    recipe = dict(batch=8, d_channel_base=64, d_channel_max=8, checkpoint_every=2, sample_every=2, r1_every=2)
    cpu = torch.device("cpu")
    straight = GanTrainer(tiny, cfg, GanRecipe(steps=4, **recipe), 0, cpu, amp)
    straight.run(tmp_path / "a", progress=False)
    first = GanTrainer(tiny, cfg, GanRecipe(steps=2, **recipe), 0, cpu, amp)
    first.run(tmp_path / "b", progress=False)
    if amp is not None:  # a checkpoint trained in one precision is not continued in another
        with pytest.raises(UserError, match="trained in bf16; resume it with --precision bf16"):
            GanTrainer(tiny, cfg, GanRecipe(steps=4, **recipe), 0, cpu).run(tmp_path / "b", progress=False)
    resumed = GanTrainer(tiny, cfg, GanRecipe(steps=4, **recipe), 0, cpu, amp)
    resumed.run(tmp_path / "b", progress=False)
    assert resumed.step == 4
    for (name, a), b in zip(straight.G_ema.state_dict().items(), resumed.G_ema.state_dict().values()):
        assert torch.equal(a, b), name
    assert (tmp_path / "b" / "samples" / "step000004.png").is_file()
    # and training did move the weights: an untrained generator differs from the trained ones
    untrained = GanTrainer(tiny, cfg, GanRecipe(steps=4, **recipe), 0, cpu)
    weight = "layers.0.weight"
    assert straight.G_ema.state_dict()[weight].ne(untrained.G_ema.state_dict()[weight]).any()


def test_gan_training_in_bf16_runs_in_bf16_and_stays_close(tiny) -> None:
    cfg = StyleGANConfig(10, 28, 1, z_dim=8, w_dim=16, mapping_layers=2, channel_base=64, channel_max=8)
    recipe = GanRecipe(steps=2, batch=8, d_channel_base=64, d_channel_max=8, r1_every=2)
    losses = {}
    for amp in (None, torch.bfloat16):
        trainer = GanTrainer(tiny, cfg, recipe, 0, torch.device("cpu"), amp)
        losses[trainer.precision] = [trainer.train_step() for _ in range(2)]  # an R1 step, then a plain one
    for fp32, bf16 in zip(losses["fp32"], losses["bf16"]):
        for key in ("loss_d", "loss_g"):
            assert fp32[key] != bf16[key] and bf16[key] == pytest.approx(fp32[key], rel=0.05)


# --- NVlabs adapters, on tiny look-alikes of their module structure ---
FAKE_NVLABS = textwrap.dedent("""
    import pickle
    import torch
    from torch import nn

    class Mapping(nn.Module):
        def __init__(self, z_dim, c_dim, w_dim, num_ws):
            super().__init__()
            self.fc = nn.Linear(z_dim + c_dim, w_dim)
            self.num_ws = num_ws
        def forward(self, z, c, truncation_psi=1.0):
            return self.fc(torch.cat([z, c], 1)).unsqueeze(1).repeat(1, self.num_ws, 1)

    class Layer(nn.Module):  # StyleGAN3-like: layer(x, w)
        def __init__(self, w_dim, c_in, c_out, up):
            super().__init__()
            self.affine, self.conv, self.up = nn.Linear(w_dim, c_in), nn.Conv2d(c_in, c_out, 3, padding=1), up
        def forward(self, x, w, update_emas=False):
            x = x * self.affine(w)[:, :, None, None]
            if self.up:
                x = nn.functional.interpolate(x, scale_factor=2)
            return self.conv(x)

    class Input(nn.Module):
        def __init__(self, w_dim, c):
            super().__init__()
            self.fc = nn.Linear(w_dim, c * 16)
            self.c = c
        def forward(self, w):
            return self.fc(w).view(len(w), self.c, 4, 4)

    class Synthesis3(nn.Module):
        def __init__(self, w_dim):
            super().__init__()
            self.input = Input(w_dim, 4)
            self.layer_names = ["L0", "L1", "L2", "L3_rgb"]
            self.L0, self.L1 = Layer(w_dim, 4, 4, False), Layer(w_dim, 4, 4, True)
            self.L2, self.L3_rgb = Layer(w_dim, 4, 4, True), Layer(w_dim, 4, 3, False)
            self.output_scale = 0.5

    class Block(nn.Module):  # StyleGAN2-like: block(x, img, ws) -> (x, img)
        def __init__(self, w_dim, c_in, c_out, first):
            super().__init__()
            self.first, self.num_conv, self.num_torgb = first, 1 if first else 2, 1
            self.const = nn.Parameter(torch.randn(c_out, 4, 4))
            self.conv = Layer(w_dim, c_out if first else c_in, c_out, not first)
            self.torgb = nn.Conv2d(c_out, 3, 1)
        def forward(self, x, img, ws, noise_mode="random"):
            if self.first:
                x = self.const.unsqueeze(0).repeat(len(ws), 1, 1, 1)
            x = self.conv(x, ws[:, 0])
            y = self.torgb(x)
            img = y if img is None else nn.functional.interpolate(img, scale_factor=2) + y
            return x, img

    class Synthesis2(nn.Module):
        def __init__(self, w_dim):
            super().__init__()
            self.block_resolutions = [4, 8, 16]
            self.b4, self.b8, self.b16 = Block(w_dim, 0, 4, True), Block(w_dim, 4, 4, False), Block(w_dim, 4, 4, False)

    class G(nn.Module):
        def __init__(self, kind):
            super().__init__()
            self.z_dim, self.c_dim, self.w_dim, self.img_channels, self.img_resolution = 6, 10, 8, 3, 16
            self.synthesis = Synthesis3(8) if kind == 3 else Synthesis2(8)
            self.num_ws = 5 if kind == 3 else 6
            self.mapping = Mapping(6, 10, 8, self.num_ws)
""")


@pytest.fixture
def nvlabs_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    code = tmp_path / "stylegan-xl"
    code.mkdir()
    (code / "fake_networks.py").write_text(FAKE_NVLABS)
    (code / "dnnlib.py").write_text("")
    (code / "legacy.py").write_text("import pickle\ndef load_network_pkl(f):\n    return pickle.load(f)\n")
    monkeypatch.syspath_prepend(str(code))
    for name in ("fake_networks", "dnnlib", "legacy"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    return code


@pytest.mark.parametrize("kind", [3, 2])
def test_nvlabs_pickle_adapter(nvlabs_code: Path, tmp_path: Path, kind: int) -> None:
    import fake_networks

    torch.manual_seed(0)
    G = fake_networks.G(kind)
    pkl = tmp_path / "network.pkl"
    pkl.write_bytes(pickle.dumps({"G_ema": G}))
    with pytest.raises(UserError, match="trust-pickle"):
        load_network_pickle(pkl)
    prior = load_prior(str(pkl), trust_pickle=True, image_size=12)
    assert prior.num_classes == 10 and prior.image_channels == 3
    ws = prior.mapping(torch.randn(4, 6), torch.tensor([0, 1, 2, 3]))
    full = suffix(prior, prior.synthesis_input(ws), ws, 0)
    assert full.shape == (4, 3, 12, 12)
    for k in range(prior.num_layers + 1):
        torch.testing.assert_close(suffix(prior, prefix(prior, ws, k), ws, k), full)


def test_nvlabs_errors(tmp_path: Path) -> None:
    pkl = tmp_path / "network.pkl"
    pkl.write_bytes(b"not used")
    sys.modules.pop("legacy", None)
    with pytest.raises(UserError, match="NVlabs' code"):
        load_network_pickle(pkl, trust_pickle=True)
    with pytest.raises(UserError, match="neither"):
        adapt(torch.nn.Linear(2, 2))


def test_shipped_name_wins_over_a_same_named_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_prior
) -> None:
    import gendistill.priors as priors

    weights = tmp_path / "weights"
    weights.mkdir()
    tiny_prior().save_pretrained(weights / "fashion-mnist")
    monkeypatch.setattr(priors, "WEIGHTS", weights)
    (tmp_path / "cwd" / "fashion-mnist").mkdir(parents=True)  # e.g. the dataset's own folder
    monkeypatch.chdir(tmp_path / "cwd")
    assert isinstance(load_prior("fashion-mnist"), StyleGAN)
    with pytest.raises(UserError, match="not a prior written by gendistill"):
        load_prior("./fashion-mnist")


def test_load_prior_dispatches_on_the_saved_tag(tmp_path: Path, tiny_prior) -> None:
    """Format 1 priors (``"class": "StyleGAN"``) still load; another family's folder, an artifact or a
    diffusers folder is one line naming what it holds."""
    import json

    from gendistill import ImageSet

    saved = tiny_prior().save_pretrained(tmp_path / "new")
    config = json.loads((saved / "config.json").read_text())
    assert config["_class_name"] == "StyleGAN" and config["_format_version"] == 2
    old = tmp_path / "old"  # the format-1 layout: the tag under "class", no reserved keys
    old.mkdir()
    (old / "model.safetensors").write_bytes((saved / "model.safetensors").read_bytes())
    legacy = {"class": "StyleGAN", **{k: v for k, v in config.items() if not k.startswith("_")}}
    (old / "config.json").write_text(json.dumps(legacy))
    labels = torch.arange(10)
    torch.testing.assert_close(
        load_prior(old).sample(labels, torch.Generator().manual_seed(1)),
        load_prior(saved).sample(labels, torch.Generator().manual_seed(1)),
    )
    assert load_prior(saved).prior_family == "hierarchical-gan" and "hierarchical-gan" in FAMILIES
    ImageSet(torch.zeros(2, 1, 28, 28), torch.tensor([0, 1]), {"num_classes": 2}).save(tmp_path / "art")
    with pytest.raises(UserError, match="holds an ImageSet, not a prior"):
        load_prior(tmp_path / "art")
    unet = tmp_path / "unet"
    unet.mkdir()
    (unet / "config.json").write_text(json.dumps({"_class_name": "UNet2DConditionModel", "sample_size": 28}))
    with pytest.raises(UserError, match="diffusers model"):
        load_prior(unet)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "config.json").write_text(json.dumps({"hidden_size": 8}))
    with pytest.raises(UserError, match="names no _class_name"):
        load_prior(foreign)


def test_sample_scale_is_as_documented(tiny_prior) -> None:
    """``sample`` is unclipped (the data range is [-1, 1], samples may overshoot); decode(draw_codes) is sample."""
    from gendistill.priors.base import decode, draw_codes

    prior = tiny_prior()
    labels = torch.arange(10)
    images = prior.sample(labels, torch.Generator().manual_seed(3))
    again = decode(prior, draw_codes(prior, 10, torch.Generator().manual_seed(3)), labels)
    assert torch.equal(images, again) and torch.isfinite(images).all()
