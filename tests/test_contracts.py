"""Contracts over the registries, so a new entry is held to what every entry promises:

- every method x parameterisation the command line allows takes a step, checkpoints, and resumes to the
  uninterrupted run's tensors, bit for bit;
- every method builds its default config, and its settings survive the artifact's ``spec``;
- every artifact kind round-trips through the store.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gendistill.artifacts import KINDS, load
from gendistill.experts import ExpertSpec, train_experts
from gendistill.methods import METHODS, RunOptions, distill, settings
from gendistill.objectives import AdversarialRealism
from gendistill.params import PARAMS

NET = "convnet[width=8]"
OBJECTIVE_OPTIONS = {  # the smallest settings of each objective that still exercise all of it
    "dc": {"outer_loop": 1, "inner_loop": 1},
    "dm": {},
    "mtt": {"syn_steps": 2, "expert_epochs": 1, "max_start_epoch": 1},
    "pool": {"pool": NET, "redraw_every": 2, "train_batch": 8, "train_steps": 1},
}
PAIRS = [(m, p) for m in METHODS.names() for p in PARAMS.names()]


@pytest.fixture(scope="module")
def experts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from conftest import make_idx_dataset

    from gendistill.data import load_dataset

    root = make_idx_dataset(tmp_path_factory.mktemp("data") / "fashion-mnist")
    data = load_dataset("fashion-mnist", data_dir=root, val_fraction=0.1)
    out = tmp_path_factory.mktemp("experts") / "e"
    spec = ExpertSpec("fashion-mnist", NET, epochs=2, batch_size=32)
    return train_experts(data, out, 1, spec, progress=False)


def _options(method: str, experts: Path, iterations: int) -> RunOptions:
    objective = dict(OBJECTIVE_OPTIONS[METHODS.get(method).objective])
    if METHODS.get(method).objective == "mtt":
        objective["experts"] = str(experts)
    return RunOptions(
        iterations=iterations,
        real_batch=4,
        model=NET,
        seed=2,
        checkpoint_every=1,
        compile=False,
        precision="fp32",
        objective=objective,
    )


def _param(method: str, name: str, prior: Path):
    """The param's config as the command line builds it (``--param NAME``), with a tiny prior and, for
    GAN latents, explicit rates (the tiny prior records none)."""
    given = {} if name == "pixels" else {"prior": str(prior)}
    if name in ("glad", "hglad"):
        given.update(lr_f=0.01, lr_w=0.01)
    config, _ = settings(method, {"name": name, **given}, {})
    return config


def _tensors(artifact) -> dict[str, torch.Tensor]:
    state = {}
    for name in ("images", "labels", "codes", "lr"):
        value = getattr(artifact, name, None)
        if isinstance(value, torch.Tensor):
            state[name] = value
    if hasattr(artifact, "generator"):
        state.update({f"g.{k}": v for k, v in artifact.generator.state_dict().items()})
    return state


@pytest.mark.parametrize(("method", "param"), PAIRS, ids=[f"{m}-{p}" for m, p in PAIRS])
def test_every_pair_steps_checkpoints_and_resumes_exactly(
    method: str, param: str, tiny, saved_prior: Path, experts: Path, tmp_path: Path, killer, monkeypatch
) -> None:
    monkeypatch.setattr(AdversarialRealism, "WARMUP", 1)
    config = _param(method, param, saved_prior)
    options = _options(method, experts, iterations=3)
    full = distill(tiny, method, 1, tmp_path / "full", config, options, progress=False)
    with pytest.raises(KeyboardInterrupt):
        distill(tiny, method, 1, tmp_path / "part", config, options, progress=False, on_iteration=killer(1))
    resumed = distill(tiny, method, 1, tmp_path / "part", config, options, resume=True, progress=False)
    a, b = _tensors(full), _tensors(resumed)
    assert a.keys() == b.keys() and a, "the artifact holds no tensors to compare"
    for k in a:
        assert torch.equal(a[k], b[k]), f"{method} x {param}: {k} differs after a resume"
    assert full.meta["history"]["loss"] == resumed.meta["history"]["loss"]


@pytest.mark.parametrize("method", METHODS.names())
def test_every_method_builds_its_default_config(method: str) -> None:
    spec = METHODS.get(method)
    param, options = settings(method)
    assert type(param) is PARAMS.get(spec.param).Config and options == RunOptions()
    assert param == spec.param_config()


@pytest.mark.parametrize("kind", KINDS.names())
def test_every_artifact_kind_round_trips(kind: str, tiny, saved_prior: Path, tmp_path: Path) -> None:
    from gendistill import EmbeddingSet, GeneratorSet, ImageSet
    from gendistill.priors import load_prior

    labels = torch.tensor([0, 1])
    made = {
        "ImageSet": lambda: ImageSet(torch.randn(2, 1, 28, 28), labels, {"num_classes": 10}, lr=torch.tensor(0.1)),
        "GeneratorSet": lambda: GeneratorSet(load_prior(saved_prior), torch.randn(2, 8), labels, {"num_classes": 10}),
        "EmbeddingSet": lambda: EmbeddingSet.for_prior(torch.randn(2, 5, 8), labels, saved_prior),
    }
    assert set(made) == set(KINDS.names()), "a new artifact kind needs a case here"
    artifact = made[kind]()
    artifact.save(tmp_path / "a")
    again = load(tmp_path / "a")
    assert type(again) is type(artifact) and again.class_name == kind
    a, b = _tensors(artifact), _tensors(again)
    if kind == "EmbeddingSet":
        a, b = {"e": artifact.embeddings}, {"e": again.embeddings}
    assert a.keys() == b.keys() and all(torch.equal(a[k].float(), b[k].float()) for k in a)
