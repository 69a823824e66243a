from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from gendistill import load
from gendistill.artifacts import CONFIG_FILE, GRID_FILE, TENSORS_FILE, ImageSet, check_fits
from gendistill.data import load_dataset
from gendistill.errors import UserError
from gendistill.evaluate import select


@pytest.fixture
def subset(fmnist_dir: Path) -> ImageSet:
    return select(load_dataset("fashion-mnist", data_dir=fmnist_dir), "random", 3, seed=5)


def test_roundtrip_is_exact_and_carries_metadata(subset: ImageSet, tmp_path: Path) -> None:
    subset.soft_labels = torch.rand(len(subset), 10)
    subset.lr = torch.tensor(0.02)
    subset.extra = {"latents": torch.randn(len(subset), 8)}
    subset.save(tmp_path / "a")
    assert {p.name for p in (tmp_path / "a").iterdir()} == {TENSORS_FILE, CONFIG_FILE, GRID_FILE}
    back = load(tmp_path / "a")
    assert torch.equal(back.images, subset.images) and torch.equal(back.labels, subset.labels)
    assert torch.equal(back.soft_labels, subset.soft_labels) and back.learned_lr == pytest.approx(0.02)
    assert torch.equal(back.extra["latents"], subset.extra["latents"])
    meta = json.loads((tmp_path / "a" / CONFIG_FILE).read_text())
    for key in (
        "method",
        "dataset",
        "dataset_identity",
        "ipc",
        "image_shape",
        "normalization",
        "config",
        "seed",
        "_gendistill_version",
        "_class_name",
        "storage_bytes",
        "created",
    ):
        assert key in meta
    assert meta["storage_bytes"] == 30 * 28 * 28 * 4 + 30 * 8 + 30 * 10 * 4 + 4
    image, label = back[0]  # a torch Dataset
    assert image.shape == (1, 28, 28) and int(label) == int(subset.labels[0]) and len(back) == 30


def test_existing_output_needs_force(subset: ImageSet, tmp_path: Path) -> None:
    subset.save(tmp_path / "a")
    before = (tmp_path / "a" / TENSORS_FILE).read_bytes()
    other = ImageSet(subset.images * 0, subset.labels, dict(subset.meta))
    with pytest.raises(UserError, match="--force"):
        other.save(tmp_path / "a")
    assert (tmp_path / "a" / TENSORS_FILE).read_bytes() == before
    other.save(tmp_path / "a", force=True)
    assert load(tmp_path / "a").images.abs().sum() == 0
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folders left behind


def test_truncated_and_corrupted_artifacts(subset: ImageSet, tmp_path: Path) -> None:
    subset.save(tmp_path / "a")
    f = tmp_path / "a" / TENSORS_FILE
    f.write_bytes(f.read_bytes()[:-50])
    with pytest.raises(UserError, match="truncated or corrupted"):
        load(tmp_path / "a")
    subset.save(tmp_path / "b")
    (tmp_path / "b" / CONFIG_FILE).write_text("{not json")
    with pytest.raises(UserError, match="corrupted"):
        load(tmp_path / "b")
    with pytest.raises(UserError, match="not found"):
        load(tmp_path / "missing")
    (tmp_path / "c").mkdir()
    with pytest.raises(UserError, match="no config.json"):
        load(tmp_path / "c")


def test_artifact_must_fit_the_dataset(subset: ImageSet, fmnist_dir: Path) -> None:
    data = load_dataset("fashion-mnist", data_dir=fmnist_dir)
    check_fits(subset, data)
    wrong = ImageSet(torch.zeros(2, 3, 32, 32), torch.tensor([0, 1]), {"num_classes": 10})
    with pytest.raises(UserError, match=r"\[3, 32, 32\]"):
        check_fits(wrong, data)
    with pytest.raises(UserError, match="classes"):
        check_fits(ImageSet(subset.images, subset.labels, {"num_classes": 100}), data)


def test_files_get_ordinary_permissions(subset: ImageSet, tmp_path: Path) -> None:
    """safetensors creates 0600 files; an artifact must be as readable as any file its user writes."""
    import os

    mask = os.umask(0o022)
    try:
        subset.save(tmp_path / "a")
    finally:
        os.umask(mask)
    for name in (TENSORS_FILE, CONFIG_FILE, GRID_FILE):
        assert (tmp_path / "a" / name).stat().st_mode & 0o777 == 0o644, name


FIXTURES = Path(__file__).parent / "fixtures"


def test_format_1_artifact_and_prior_still_load() -> None:
    """Folders written by gendistill 0.1 before the store (meta.json; a prior tagged "class")."""
    from gendistill.priors import load_prior

    old = load(FIXTURES / "format1-artifact")
    assert isinstance(old, ImageSet) and old.images.shape == (10, 1, 28, 28) and old.meta["method"] == "random"
    prior = load_prior(FIXTURES / "format1-prior")
    assert prior.sample(torch.arange(3)).shape == (3, 1, 28, 28)


def test_generator_set_renders_any_ipc_and_round_trips(tmp_path: Path, tiny, tiny_prior) -> None:
    from gendistill import GeneratorSet
    from gendistill.artifacts import make_meta

    prior = tiny_prior()
    labels = torch.arange(10).repeat_interleave(2)
    codes = torch.randn(20, prior.z_dim, generator=torch.Generator().manual_seed(0))
    gs = GeneratorSet(prior, codes, labels, make_meta("test", tiny, 2, {}, 0), weights_dtype=torch.float16)
    fixed = gs.training_set()
    assert fixed.images.shape == (20, 1, 28, 28) and torch.equal(fixed.labels, labels)
    five = gs.sample(5, seed=1)
    assert five.images.shape == (50, 1, 28, 28)
    torch.testing.assert_close(five.images[five.labels == 3][:2], fixed.images[labels == 3])  # stored codes first
    assert torch.equal(gs.sample(5, seed=1).images, five.images)  # fresh codes come from the seed
    weights = sum(v.numel() for v in prior.state_dict().values())
    assert gs.storage_bytes() == weights * 2 + codes.numel() * 4 + 20 * 8  # fp16 weights + codes + labels
    gs.save(tmp_path / "g")
    back = load(tmp_path / "g")
    assert isinstance(back, GeneratorSet) and back.meta["storage_bytes"] == gs.storage_bytes()
    assert torch.equal(back.training_set().images, fixed.images)  # stored rendered: no generator needed
    torch.testing.assert_close(back.sample(5, seed=1).images, five.images, atol=0.05, rtol=0)  # fp16 weights
    with pytest.raises(UserError, match="ipc must be at least 1"):
        back.sample(0)


def test_evaluate_takes_a_generator_set_as_its_fixed_set(tiny, tiny_prior) -> None:
    from gendistill import GeneratorSet
    from gendistill.artifacts import make_meta
    from gendistill.evaluate import evaluate

    labels = torch.arange(10).repeat_interleave(2)
    codes = torch.randn(20, tiny_prior().z_dim, generator=torch.Generator().manual_seed(0))
    gs = GeneratorSet(tiny_prior(), codes, labels, make_meta("test", tiny, 2, {}, 0))
    run = {"runs": 1, "epochs": 2, "augment": "none", "progress": False, "split": "val"}
    direct, fixed = evaluate(gs, tiny, **run), evaluate(gs.training_set(), tiny, **run)
    assert direct.results[0].accuracies == fixed.results[0].accuracies


def test_embedding_set_records_its_prior(tmp_path: Path, saved_prior: Path) -> None:
    import shutil

    from gendistill import EmbeddingSet

    e = EmbeddingSet.for_prior(torch.randn(4, 5, 8), torch.tensor([0, 0, 1, 1]), saved_prior)
    e.save(tmp_path / "e")
    back = load(tmp_path / "e")
    assert isinstance(back, EmbeddingSet) and torch.equal(back.embeddings, e.embeddings)
    assert back.check_prior() == saved_prior.resolve()
    w = saved_prior / "model.safetensors"
    data = w.read_bytes()
    w.write_bytes(data[:-4] + bytes(b ^ 0xFF for b in data[-4:]))  # other weights, same size
    with pytest.raises(UserError, match="weights differ"):
        back.check_prior()
    shutil.rmtree(saved_prior)
    with pytest.raises(UserError, match="which is gone"):
        back.check_prior()


def test_load_names_what_a_folder_holds(tmp_path: Path, saved_prior: Path) -> None:
    with pytest.raises(UserError, match="holds a StyleGAN, not an artifact"):
        load(saved_prior)
