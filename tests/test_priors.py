"""Priors (built-in StyleGAN, NVlabs adapters), latent parameterisations, H-GLaD's walk and CRFD."""

from __future__ import annotations

import pickle
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from test_distill import _interrupted

from gendistill import load
from gendistill.data import load_dataset
from gendistill.errors import UserError
from gendistill.evaluate.crfd import CRFD
from gendistill.methods import distill
from gendistill.params import GanLatents, LatentSpace
from gendistill.params.latent import LATENT_LR
from gendistill.priors import StyleGAN, StyleGANConfig, load_prior, prefix, recommended_lr, suffix
from gendistill.priors.nvlabs import adapt, load_network_pickle
from gendistill.priors.train import GanRecipe, GanTrainer

NET = "convnet[width=16]"


@pytest.fixture
def tiny(fmnist_dir: Path):  # noqa: ANN201
    return load_dataset("fashion-mnist", data_dir=fmnist_dir, val_fraction=0.1)


def tiny_prior(seed: int = 0, size: int = 28, channels: int = 1) -> StyleGAN:
    torch.manual_seed(seed)
    cfg = StyleGANConfig(10, size, channels, z_dim=8, w_dim=16, mapping_layers=2, channel_base=64, channel_max=8)
    return StyleGAN(cfg).eval().requires_grad_(False)


def test_stylegan_is_hierarchical_and_splits_exactly() -> None:
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


def test_save_and_load_pretrained(tmp_path: Path) -> None:
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
    with pytest.raises(UserError, match="cannot read the prior weights"):
        load_prior(tmp_path / "p32")
    with pytest.raises(UserError, match="prior"):
        load_prior("no-such-prior")


def test_gan_training_resumes_exactly(tiny, tmp_path: Path) -> None:  # noqa: ANN001
    cfg = StyleGANConfig(10, 28, 1, z_dim=8, w_dim=16, mapping_layers=2, channel_base=64, channel_max=8)
    recipe = dict(batch=8, d_channel_base=64, d_channel_max=8, checkpoint_every=2, sample_every=2, r1_every=2)
    straight = GanTrainer(tiny, cfg, GanRecipe(steps=4, **recipe), 0, torch.device("cpu"))
    straight.run(tmp_path / "a", progress=False)
    first = GanTrainer(tiny, cfg, GanRecipe(steps=2, **recipe), 0, torch.device("cpu"))
    first.run(tmp_path / "b", progress=False)
    resumed = GanTrainer(tiny, cfg, GanRecipe(steps=4, **recipe), 0, torch.device("cpu"))
    resumed.run(tmp_path / "b", progress=False)
    assert resumed.step == 4
    for (name, a), b in zip(straight.G_ema.state_dict().items(), resumed.G_ema.state_dict().values()):
        assert torch.equal(a, b), name
    assert (tmp_path / "b" / "samples" / "step000004.png").is_file()
    # and training did move the weights: an untrained generator differs from the trained ones
    untrained = GanTrainer(tiny, cfg, GanRecipe(steps=4, **recipe), 0, torch.device("cpu"))
    weight = "layers.0.weight"
    assert straight.G_ema.state_dict()[weight].ne(untrained.G_ema.state_dict()[weight]).any()


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
    G = fake_networks.G(kind)  # noqa: N806
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


# --- latent parameterisations ---
def test_glad_renders_the_prior_and_chunked_gradients_match(tiny) -> None:  # noqa: ANN001
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


def test_advance_keeps_the_images(tiny) -> None:  # noqa: ANN001
    p = GanLatents.create(tiny, 1, tiny_prior(), 1, torch.Generator().manual_seed(0), 1.0, 0.01)
    before = p.render().detach()
    while p.can_advance():
        p.advance()
        torch.testing.assert_close(p.render().detach(), before)
    assert p.k == p.prior.num_layers - 1


@pytest.fixture
def saved_prior(tmp_path: Path) -> Path:
    return tiny_prior().save_pretrained(tmp_path / "prior")


def test_hglad_walks_the_layers_and_resumes_exactly(tiny, saved_prior: Path, tmp_path: Path) -> None:  # noqa: ANN001
    space = LatentSpace("hglad", str(saved_prior), select="crfd", select_every=2)
    kw = dict(iterations=14, real_batch=8, model=NET, seed=1, progress=False, checkpoint_every=3, space=space)
    full = distill(tiny, "dm", 2, tmp_path / "full", **kw)
    param = full.meta["config"]["param"]
    assert param["name"] == "hglad" and param["layer"] == 7 and param["prior"] == str(saved_prior)
    assert [s["layer"] for s in full.meta["history"]["selected"]] == [1, 2, 3, 4, 5, 6, 7]
    assert full.extra["latent.f"].shape[0] == 20 and "latent.ws" in full.extra
    with pytest.raises(KeyboardInterrupt):  # killed mid-walk, at layer 4, with a CRFD best held
        _interrupted(tiny, tmp_path / "part", kw, stop_after=6)
    resumed = distill(tiny, "dm", 2, tmp_path / "part", resume=True, **kw)
    assert torch.equal(full.images, resumed.images)
    assert full.meta["history"]["selected"] == resumed.meta["history"]["selected"]
    loaded = load(tmp_path / "part")  # evaluation needs no prior: the images are in the artifact
    assert torch.equal(loaded.images, full.images)


@pytest.mark.parametrize("method", ["dc", "mtt"])
def test_glad_runs_with_other_objectives(tiny, saved_prior: Path, tmp_path: Path, method: str) -> None:  # noqa: ANN001
    kw = {}
    if method == "mtt":
        from gendistill.experts import ExpertSpec, train_experts

        train_experts(tiny, tmp_path / "experts", 1, ExpertSpec(tiny.name, NET, epochs=2), progress=False)
        kw["objective_options"] = {"experts": str(tmp_path / "experts"), "syn_steps": 2, "expert_epochs": 1,
                                   "max_start_epoch": 1}  # fmt: skip
    else:
        kw["objective_options"] = {"outer_loop": 1, "inner_loop": 1}
    space = LatentSpace("glad", str(saved_prior), layer=3, chunk=7)
    out = distill(tiny, method, 2, tmp_path / method, iterations=2, real_batch=8, model=NET, progress=False,
                  space=space, **kw)  # fmt: skip
    assert out.images.shape == (20, 1, 28, 28) and torch.isfinite(out.images).all()


def test_a_prior_may_carry_its_own_latent_learning_rates(tiny, tmp_path: Path) -> None:  # noqa: ANN001
    tuned = tiny_prior().save_pretrained(tmp_path / "tuned", extra_config={"latent_lr": {"dm": [0.25, 0.5]}})
    assert recommended_lr(tuned, "dm") == (0.25, 0.5)
    assert recommended_lr(tuned, "dc") is None and recommended_lr(tiny_prior(), "dm") is None

    def used(space: LatentSpace, name: str) -> dict:
        out = distill(tiny, "dm", 1, tmp_path / name, iterations=1, real_batch=8, model=NET, progress=False,
                      space=space)  # fmt: skip
        return out.meta["config"]["param"]

    param = used(LatentSpace("glad", str(tuned)), "a")
    assert (param["lr_f"], param["lr_w"]) == (0.25, 0.5)
    assert used(LatentSpace("glad", str(tuned), lr_f=3.0), "c")["lr_f"] == 3.0  # the user's choice wins
    plain = tiny_prior().save_pretrained(tmp_path / "plain")
    assert used(LatentSpace("glad", str(plain)), "d")["lr_f"] == LATENT_LR["dm"][0]  # GLaD's published default


def test_latent_space_refuses_a_mismatched_prior(tiny, tmp_path: Path) -> None:  # noqa: ANN001
    tiny_prior(size=32, channels=3).save_pretrained(tmp_path / "rgb")
    with pytest.raises(UserError, match="use a prior trained on it"):
        distill(tiny, "dm", 2, tmp_path / "x", iterations=1, progress=False,
                space=LatentSpace("glad", str(tmp_path / "rgb")))  # fmt: skip
    with pytest.raises(UserError, match="layer must be in"):
        GanLatents.create(tiny, 1, tiny_prior(), 8, torch.Generator(), 1.0, 0.01)
    assert not (tmp_path / "x").exists()


def test_crfd_prefers_real_images_to_noise(tiny) -> None:  # noqa: ANN001
    crfd = CRFD(tiny, NET, nets=2, real_per_class=8)
    idx = torch.cat([i[:2] for i in tiny.class_indices("train")])
    real, labels = tiny.train_images[idx], tiny.train_labels[idx]
    noise = torch.randn_like(real)
    assert crfd(real, labels) < crfd(noise, labels)
    assert crfd(real, labels) == CRFD(tiny, NET, nets=2, real_per_class=8)(real, labels)  # deterministic


def test_glad_keeps_its_lowest_crfd_snapshot(tiny, saved_prior: Path, tmp_path: Path) -> None:  # noqa: ANN001
    space = LatentSpace("glad", str(saved_prior), layer=3, select="crfd", select_every=2)
    out = distill(tiny, "dm", 2, tmp_path / "g", iterations=6, real_batch=8, model=NET, progress=False, space=space)
    (selected,) = out.meta["history"]["selected"]
    assert selected["layer"] == 3 and selected["iteration"] in (2, 4, 6)


def test_shipped_name_wins_over_a_same_named_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gendistill.priors as priors

    weights = tmp_path / "weights"
    weights.mkdir()
    tiny_prior().save_pretrained(weights / "fashion-mnist")
    monkeypatch.setattr(priors, "WEIGHTS", weights)
    (tmp_path / "cwd" / "fashion-mnist").mkdir(parents=True)  # e.g. the dataset's own folder
    monkeypatch.chdir(tmp_path / "cwd")
    assert isinstance(load_prior("fashion-mnist"), StyleGAN)
    with pytest.raises(UserError, match="not a saved prior"):
        load_prior("./fashion-mnist")
