"""The matching objectives (DM, DC/DSA, MTT) and the regulariser hook, on tiny data."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gendistill.augment import DSA
from gendistill.distill import Schedule, run
from gendistill.errors import UserError
from gendistill.experts import ExpertSpec, train_experts
from gendistill.methods import RunOptions, distill
from gendistill.objectives import OBJECTIVES, MatchContext, Regulariser
from gendistill.objectives.dc import default_loops, gradient_distance
from gendistill.params import Pixels

NET = "convnet[width=16]"


def _setup(tiny, objective: str, augment: bool = True, classes=None):
    params = Pixels.create(tiny, 2, "real", torch.Generator().manual_seed(0))
    ctx = MatchContext(tiny, NET, DSA() if augment else None, seed=3, real_batch=8, classes=classes)
    options = {"outer_loop": 2, "inner_loop": 1} if objective == "dc" else {}
    return params, OBJECTIVES.get(objective).from_options(2, options), ctx


@pytest.mark.parametrize("objective", ["dm", "dc"])
def test_objective_loss_decreases(tiny, objective: str) -> None:
    params, obj, ctx = _setup(tiny, objective, augment=False)
    schedule = Schedule(iterations=12, lr=0.5 if objective == "dm" else 0.1)
    hist = run(params, obj, ctx, schedule, progress=False)
    assert len(hist.losses) == 12 and all(torch.isfinite(torch.tensor(hist.losses)))
    first, last = sum(hist.losses[:3]), sum(hist.losses[-3:])
    assert last < first


def test_dm_batched_forward_equals_per_class(tiny) -> None:
    """All classes in one pass gives the per-class reference loss (instance norm keeps samples independent)."""
    params, obj, ctx = _setup(tiny, "dm")
    loss = next(obj.losses(params, ctx, 5))
    net = ctx.fresh_model(5)
    ref = 0.0
    for c in range(10):
        g = ctx.rng(5, c)
        real, syn = ctx.real_batch_of(c, g), params.images[params.labels == c]
        real, syn = ctx.augment.siamese(real, syn, generator=g)
        with torch.no_grad():
            ref += float(((net.embed(real).mean(0) - net.embed(syn).mean(0)) ** 2).sum())
    assert float(loss.detach()) == pytest.approx(ref, rel=1e-4)


def test_gradient_distance_is_dc_layerwise_cosine() -> None:
    a = [torch.ones(4, 3, 3, 3), torch.ones(4)]
    assert float(gradient_distance(a, a)) == pytest.approx(0.0, abs=1e-5)
    assert float(gradient_distance(a, [-t for t in a])) == pytest.approx(8.0, abs=1e-4)  # 4 channels x (1 - -1)
    assert default_loops(1) == (1, 1) and default_loops(10) == (10, 50) and default_loops(50) == (50, 10)


def test_objectives_record_every_setting_and_refuse_unknown_ones() -> None:
    dc = OBJECTIVES.get("dc").from_options(10, {"net_lr": 0.05})
    assert dc.config() == {"outer_loop": 10, "inner_loop": 50, "net_lr": 0.05, "net_batch": 256}
    assert OBJECTIVES.get("dm").from_options(10).config() == {}
    with pytest.raises(UserError, match="dm takes no option"):
        OBJECTIVES.get("dm").from_options(10, {"outer_loop": 2})
    with pytest.raises(UserError, match="it takes: outer_loop"):
        OBJECTIVES.get("dc").from_options(10, {"syn_steps": 2})


class _PixelEnergy(Regulariser):
    """A test term: the mean squared pixel, which pulls every image toward 0."""

    name = "energy"

    def term(self, params, ctx, iteration):
        return params.render().square().mean()


def test_regularisers_add_weighted_terms(tiny) -> None:
    """Weight 0 is the plain run, bit for bit; a positive weight changes it toward the term's optimum."""
    results = {}
    for weight in (None, 0.0, 100.0):
        params, obj, ctx = _setup(tiny, "dm", augment=False)
        regs = [] if weight is None else [_PixelEnergy(weight)]
        run(params, obj, ctx, Schedule(iterations=3, lr=0.5), progress=False, regularisers=regs)
        results[weight] = params.images.detach()
    assert torch.equal(results[None], results[0.0])
    assert results[100.0].square().mean() < results[None].square().mean()
    with pytest.raises(UserError, match=">= 0"):
        _PixelEnergy(-1.0)


@pytest.fixture
def experts(tiny, tmp_path: Path) -> Path:
    return train_experts(
        tiny, tmp_path / "experts", 2, ExpertSpec(tiny.name, "convnet[width=8]", epochs=3), progress=False
    )


def test_mtt_distills_and_stores_the_learned_lr(tiny, experts: Path, tmp_path: Path) -> None:
    opts = {"experts": str(experts), "syn_steps": 3, "expert_epochs": 1, "max_start_epoch": 2, "lr_lr": 1e-6}
    options = RunOptions(iterations=5, lr=10.0, model="convnet[width=8]", objective=opts)
    s = distill(tiny, "mtt", 1, tmp_path / "m", None, options, progress=False)
    assert s.lr is not None and float(s.lr) != pytest.approx(0.01)  # it learned
    losses = s.meta["history"]["loss"]
    assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] < losses[0]
    assert s.meta["eval_augment"] == "dsa" and s.meta["config"]["objective"]["syn_steps"] == 3
    assert s.meta["config"]["objective"]["num_experts"] == 2 and s.meta["config"]["objective"]["lr_init"] == 0.01


def test_student_must_match_the_experts(tiny, experts: Path, tmp_path: Path) -> None:
    opts = {"experts": str(experts), "syn_steps": 1, "expert_epochs": 1, "max_start_epoch": 1}

    def attempt(model: str, objective: dict) -> None:
        distill(
            tiny,
            "mtt",
            1,
            tmp_path / "m",
            None,
            RunOptions(iterations=1, model=model, objective=objective),
            progress=False,
        )

    with pytest.raises(UserError, match="differ from the experts"):
        attempt("convnet[width=4]", opts)
    with pytest.raises(UserError, match="exceeds"):
        attempt("convnet[width=8]", {**opts, "max_start_epoch": 3})
    with pytest.raises(UserError, match="--experts"):
        attempt("convnet[width=8]", {})


# --- DCGM's regularisers: formulas checked by hand ---
def _published(tiny, features: torch.Tensor, labels: list[int]) -> MatchContext:
    ctx = MatchContext(tiny, NET)
    ctx.publish_features(5, features, torch.tensor(labels))
    return ctx


def test_intra_class_term_is_the_mean_pairwise_cosine_within_classes(tiny) -> None:
    from gendistill.objectives import REGULARISERS

    # class 0: orthogonal pair (cos 0); class 1: the same direction twice (cos 1); class 2: one sample (skipped)
    features = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0], [1.0, 0.0], [0.5, 0.5]])
    ctx = _published(tiny, features, [0, 0, 1, 1, 2])
    assert float(REGULARISERS.get("intra")(1.0).term(None, ctx, 5)) == pytest.approx(0.5)
    # three samples at 120 degrees: every pair has cos -1/2
    tri = torch.tensor([[1.0, 0.0], [-0.5, 3**0.5 / 2], [-0.5, -(3**0.5) / 2]])
    assert float(REGULARISERS.get("intra")(1.0).term(None, _published(tiny, tri, [0, 0, 0]), 5)) == pytest.approx(-0.5)


def test_inter_class_term_is_the_mean_cosine_between_class_centres(tiny) -> None:
    from gendistill.objectives import REGULARISERS

    # centres of the normalised features: class 0 -> (1, 0), class 1 -> (0, 1), class 2 -> (1, 1)/2
    features = torch.tensor([[2.0, 0.0], [1.0, 0.0], [0.0, 5.0], [1.0, 0.0], [0.0, 1.0]])
    ctx = _published(tiny, features, [0, 0, 1, 2, 2])
    s = 2**-0.5  # cos((1,0), (1,1)) = cos((0,1), (1,1))
    expected = (0.0 + s + s) * 2 / 6  # ordered pairs over 3 classes
    assert float(REGULARISERS.get("inter")(1.0).term(None, ctx, 5)) == pytest.approx(expected)


def test_regularisers_pull_gradients_the_right_way(tiny) -> None:
    """A step down the intra term spreads a class; a step down the inter term separates the centres."""
    from gendistill.objectives import REGULARISERS

    x = torch.tensor([[1.0, 0.1], [1.0, -0.1], [0.1, 1.0], [-0.1, 1.0]], requires_grad=True)
    for name in ("intra", "inter"):
        reg = REGULARISERS.get(name)(1.0)
        before = reg.term(None, _published(tiny, x, [0, 0, 1, 1]), 5)
        (g,) = torch.autograd.grad(before, x)
        after = reg.term(None, _published(tiny, (x - 0.1 * g).detach(), [0, 0, 1, 1]), 5)
        assert float(after) < float(before.detach()), name


def test_a_regulariser_without_published_features_embeds_the_images_itself(tiny) -> None:
    from gendistill.objectives import REGULARISERS

    params = Pixels.create(tiny, 3, "real", torch.Generator().manual_seed(0))
    ctx = MatchContext(tiny, NET, seed=1)
    term = REGULARISERS.get("intra")(1.0).term(params, ctx, 0)
    term.backward()
    assert -1.0 <= float(term.detach()) <= 1.0 and params.images.grad is not None and params.images.grad.abs().sum() > 0


def test_classify_term_is_the_real_teachers_cross_entropy_and_descends(tiny, tmp_path, monkeypatch) -> None:
    """The class anchor: mean cross-entropy of the cached real-data teacher on the synthetic images (checked
    against the teacher called by hand), and a step down it makes the images more their class."""
    import torch.nn.functional as F

    from gendistill.evaluate.teacher import teacher
    from gendistill.objectives import REGULARISERS

    monkeypatch.setenv("GENDISTILL_CACHE", str(tmp_path))
    params = Pixels.create(tiny, 2, "noise", torch.Generator().manual_seed(0))
    ctx = MatchContext(tiny, NET, seed=1)
    reg = REGULARISERS.get("classify")(1.0)
    term = reg.term(params, ctx, 0)
    t = teacher(tiny, reg.TEACHER, ctx.device)[0]
    with torch.no_grad():
        by_hand = F.cross_entropy(t(params.render()), params.labels)
    assert float(term.detach()) == pytest.approx(float(by_hand), rel=1e-5)
    term.backward()
    with torch.no_grad():
        params.images -= 5.0 * params.images.grad
    assert float(reg.term(params, ctx, 1).detach()) < float(term.detach())
    assert list((tmp_path / "teachers").iterdir())  # trained once, cached where GENDISTILL_CACHE says


def test_dm_shares_its_rendered_images_so_regularisers_render_nothing_again(tiny) -> None:
    params = Pixels.create(tiny, 2, "real", torch.Generator().manual_seed(0))
    ctx = MatchContext(tiny, NET, seed=1, real_batch=4)
    calls = []
    render = params.render_classes
    params.render_classes = lambda classes: calls.append(classes) or render(classes)
    next(OBJECTIVES.get("dm").from_options(2).losses(params, ctx, 3))
    images, labels = ctx.synthetic_images(params, 3)
    assert len(calls) == 1 and images.shape[0] == len(labels) == 20
    ctx.synthetic_images(params, 4)  # another iteration: nothing published for it, so it renders
    assert len(calls) == 2


def test_pool_matching_trains_its_network_on_real_data_and_redraws_it(tiny) -> None:
    """DiM's matching network learns online: after a few iterations it classifies the real images far
    above chance; at ``redraw_every`` a fresh network replaces it."""
    params = Pixels.create(tiny, 2, "real", torch.Generator().manual_seed(0))
    ctx = MatchContext(tiny, NET, None, seed=3, real_batch=8)
    obj = OBJECTIVES.get("pool").from_options(
        2, {"pool": NET, "train_steps": 3, "train_batch": 32, "redraw_every": 8, "net_lr": 0.05}
    )
    hist = run(params, obj, ctx, Schedule(iterations=8, lr=0.1), progress=False)
    assert all(torch.isfinite(torch.tensor(hist.losses)))
    with torch.no_grad():
        acc = (obj._net.eval()(tiny.train_images).argmax(1) == tiny.train_labels).float().mean()
    assert acc > 0.5, acc  # chance is 0.1
    trained = obj._net
    next(obj.losses(params, ctx, 8))  # iteration 8 starts a new block: a fresh draw
    assert obj._net is not trained


def test_pool_names_split_outside_brackets_and_unknown_ones_are_refused() -> None:
    from gendistill.objectives import PoolConfig

    assert PoolConfig(pool="convnet[width=16,depth=2]+resnet18").networks == ["convnet[width=16,depth=2]", "resnet18"]
    with pytest.raises(UserError, match="unknown model 'nonet'"):
        PoolConfig(pool="nonet")
