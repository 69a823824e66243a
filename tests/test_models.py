from __future__ import annotations

import pytest
import torch
from torch import nn

from gendistill.errors import UserError
from gendistill.models import MODELS, create_model, parse_model_spec


@pytest.mark.parametrize("name", MODELS.names())
@pytest.mark.parametrize(("channels", "size"), [(1, 28), (3, 32)])
def test_every_model_classifies_embeds_and_exposes_blocks(name: str, channels: int, size: int) -> None:
    torch.manual_seed(0)
    model = create_model(name, channels, 7, size)
    x = torch.randn(3, channels, size, size)
    logits = model(x)
    assert logits.shape == (3, 7)
    emb = model.embed(x)
    assert emb.shape == (3, model.embed_dim)
    assert torch.allclose(model.head(emb), logits, atol=1e-5)
    feats = model.features(x)
    assert len(feats) >= 2 and all(f.shape[0] == 3 for f in feats)
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_convnet3_is_the_fields_network() -> None:
    """3 x [conv3x3 w128, GroupNorm(128,128) affine, ReLU, AvgPool2], linear head; 28 px padded to 32."""
    m = create_model("convnet", 1, 10, 28)
    assert len(m.blocks) == 3
    conv, norm, act, pool = m.blocks[0]
    assert conv.padding == (3, 3) and conv.out_channels == 128 and conv.kernel_size == (3, 3)
    assert isinstance(norm, nn.GroupNorm) and norm.num_groups == 128 and norm.affine
    assert isinstance(act, nn.ReLU) and isinstance(pool, nn.AvgPool2d)
    assert m.head.in_features == 128 * 4 * 4
    assert sum(p.numel() for p in m.parameters()) == 317_706  # the reference ConvNet's count on Fashion-MNIST
    assert len(create_model("convnet", 3, 10, 64).blocks) == 4 and len(create_model("convnet", 3, 10, 128).blocks) == 5


def test_model_spec_overrides() -> None:
    assert parse_model_spec("convnet[depth=4,norm=batch,width=64]") == (
        "convnet",
        {"depth": 4, "norm": "batch", "width": 64},
    )
    m = create_model("convnet[depth=2,width=32]", 3, 10, 32)
    assert len(m.blocks) == 2 and m.blocks[0][0].out_channels == 32


def test_bad_model_names_and_options() -> None:
    with pytest.raises(UserError, match="convnet"):
        create_model("resnet50", 3, 10, 32)
    with pytest.raises(UserError, match="bad options"):
        create_model("convnet[colour=red]", 3, 10, 32)
    with pytest.raises(UserError, match="norm"):
        create_model("convnet[norm=weird]", 3, 10, 32)


def test_resnet18_norm_variants() -> None:
    bn = create_model("resnet18", 3, 10, 32)
    inorm = create_model("resnet18-in", 3, 10, 32)
    assert any(isinstance(m, nn.BatchNorm2d) for m in bn.modules())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in inorm.modules())


# Per-image normalisation learns this toy in 15 steps. The rest get 40: without normalisation (and the ViT) they
# start slowly, and batch-norm networks are tested with running statistics that 15 steps at momentum 0.1 have not
# yet moved off their initial values (they score exactly chance).
FAST_STARTERS = {"convnet", "convnet-ln", "vgg11", "resnet18-in", "alexnet-in"}


@pytest.mark.parametrize("name", MODELS.names())
def test_every_network_trains_well_above_chance_under_its_recipe(name: str, tiny) -> None:
    """A seeded sanity check of the zoo, not a benchmark: one image per class of the toy set, the network's own
    recipe (the preset plus its registered departures), fp32 so every CPU agrees. Chance is 10 %; the slowest
    learner, the ViT, ends near 32 %."""
    from gendistill.evaluate import evaluate, select

    epochs = 15 if name in FAST_STARTERS else 40
    report = evaluate(
        select(tiny, "random", 1, seed=0),
        tiny,
        models=[name],
        runs=1,
        epochs=epochs,
        preset="quick",
        precision="fp32",
        compile=False,
        progress=False,
    )
    assert report.results[0].mean >= 0.25, f"{name} did not train: {report.results[0].mean:.2f}"
