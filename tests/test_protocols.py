"""The named evaluation protocols (paper, eccv24, soft) and the cached real-data teacher."""

from __future__ import annotations

import pytest
import torch

from gendistill.artifacts import ImageSet
from gendistill.data import random_subset
from gendistill.errors import UserError
from gendistill.evaluate import PRESETS, TrainRecipe, evaluate, train_classifier
from gendistill.evaluate import teacher as teacher_module
from gendistill.evaluate.teacher import SoftLabels, TeacherSpec, cache_root, teacher
from gendistill.evaluate.trainer import _loss
from gendistill.models import create_model

SMALL = "convnet[width=16]"


def test_eccv24_is_the_challenge_evaluator() -> None:
    p = PRESETS.get("eccv24")
    for asked in ("none", "color_crop", "dsa"):  # the protocol pins its augmentation whatever is asked
        r = p.recipe(asked)
        assert r.epochs == 100 and r.augment == "color_crop_cutout_flip_scale_rotate"
    assert (r.optimizer, r.lr, r.momentum, r.weight_decay, r.batch_size) == ("sgd", 0.01, 0.9, 5e-4, 256)
    # "lr x0.1 at epoch 51": epochs counted from 1 there, from 0 here
    assert r.lr_at(49) == 0.01 and r.lr_at(50) == pytest.approx(0.001)
    assert p.labels == "hard" and p.source


def test_soft_protocol_recipe() -> None:
    p = PRESETS.get("soft")
    r = p.recipe("color_crop")
    assert (r.epochs, r.optimizer, r.lr, r.weight_decay, r.schedule) == (300, "adamw", 1e-3, 0.01, "cosine")
    assert r.lr_at(0) == pytest.approx(1e-3) and r.lr_at(150) == pytest.approx(5e-4) and r.lr_at(299) < 1e-6
    assert p.labels == "soft" and p.temperature > 1


def test_teacher_is_trained_once_then_loaded(tiny, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = TeacherSpec(SMALL, epochs=2)
    first, record = teacher(tiny, spec, torch.device("cpu"))
    assert 0.0 <= record["test_acc"] <= 1.0 and record["train_seconds"] >= 0
    assert (cache_root() / spec.key(tiny) / "model.safetensors").is_file()

    def no_training(*args, **kwargs) -> None:
        raise AssertionError("a cached teacher was trained again")

    monkeypatch.setattr(teacher_module, "trained_with_progress", no_training)
    again, record_again = teacher(tiny, spec, torch.device("cpu"))
    assert record_again["test_acc"] == record["test_acc"]
    for a, b in zip(first.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)
    # another spec or another dataset is another teacher
    assert TeacherSpec(SMALL, epochs=3).key(tiny) != spec.key(tiny)
    with pytest.raises(AssertionError, match="trained again"):
        teacher(tiny, TeacherSpec(SMALL, epochs=3), torch.device("cpu"))


def test_soft_labels_are_tempered_probabilities(tiny) -> None:
    model, _ = teacher(tiny, TeacherSpec(SMALL, epochs=1), torch.device("cpu"))
    x = tiny.test_images[:16]
    cold, hot = SoftLabels(model, 1.0)(x), SoftLabels(model, 8.0)(x)
    assert torch.allclose(cold.sum(1), torch.ones(16)) and torch.allclose(hot.sum(1), torch.ones(16))
    with torch.no_grad():
        expected = torch.softmax(model(x) / 8.0, dim=1)
    assert torch.allclose(hot, expected, atol=1e-6)
    # a higher temperature flattens the distribution: lower max, higher entropy
    assert (hot.max(1).values <= cold.max(1).values + 1e-6).all()
    # the soft cross-entropy is minimised (at the labels' entropy) by logits reproducing the labels
    logits = torch.log(hot)
    entropy = -(hot * torch.log(hot)).sum(1).mean()
    assert _loss(logits, hot) == pytest.approx(float(entropy), abs=1e-5)
    with pytest.raises(UserError, match="temperature"):
        SoftLabels(model, 0.0)


def test_soft_protocol_trains_on_teacher_labels(tiny) -> None:
    idx = random_subset(tiny, 2, torch.Generator().manual_seed(0))
    subset = ImageSet(tiny.train_images[idx], tiny.train_labels[idx])
    soft = evaluate(subset, tiny, models=[SMALL], runs=1, preset="soft", epochs=3, progress=False)
    hard = evaluate(subset, tiny, models=[SMALL], runs=1, preset="eccv24", epochs=3, progress=False)
    assert soft.teacher is not None and soft.teacher["model"] == "convnet" and hard.teacher is None
    assert soft.to_dict()["teacher"]["test_acc"] == soft.teacher["test_acc"]
    assert soft.results[0].recipe["optimizer"] == "adamw" and hard.results[0].recipe["optimizer"] == "sgd"


def test_relabeling_replaces_the_sets_labels(tiny) -> None:
    """A relabeler that calls every image class 3 makes a network that answers 3, whatever the set says."""

    class Always3:
        temperature = 1.0

        def __call__(self, images: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.one_hot(torch.full((len(images),), 3), tiny.num_classes).float()

    full = ImageSet(tiny.train_images, tiny.train_labels)
    torch.manual_seed(0)
    model = create_model(SMALL, tiny.channels, tiny.num_classes, tiny.image_size)
    train_classifier(
        model, full, TrainRecipe(epochs=5), torch.Generator().manual_seed(0), torch.device("cpu"), relabel=Always3()
    )
    with torch.no_grad():
        assert (model.eval()(tiny.test_images).argmax(1) == 3).all()
