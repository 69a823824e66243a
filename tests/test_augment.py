from __future__ import annotations

import pytest
import torch

from gendistill.augment import DSA, parse_strategy, strategy_for
from gendistill.errors import UserError


def test_siamese_applies_one_draw_to_both_batches() -> None:
    aug = DSA()
    base = torch.randn(1, 3, 16, 16)
    for seed in range(30):  # covers every operation
        g = torch.Generator().manual_seed(seed)
        a, b = aug.siamese(base.expand(5, -1, -1, -1), base.expand(2, -1, -1, -1), generator=g)
        assert torch.allclose(a[0], a[4]) and torch.allclose(a[0], b[1], atol=1e-6)


def test_per_image_draws_differ_and_are_seeded() -> None:
    aug = DSA("rotate")
    x = torch.randn(1, 1, 16, 16).expand(4, -1, -1, -1)
    y1 = aug(x, torch.Generator().manual_seed(1))
    y2 = aug(x, torch.Generator().manual_seed(1))
    assert torch.equal(y1, y2)
    assert not torch.allclose(y1[0], y1[1])


@pytest.mark.parametrize("op", ["color", "crop", "cutout", "flip", "scale", "rotate"])
def test_every_operation_is_differentiable(op: str) -> None:
    x = torch.randn(3, 3, 12, 12, requires_grad=True)
    DSA(op)(x, torch.Generator().manual_seed(0)).square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_crop_translates_by_whole_pixels_with_zero_fill() -> None:
    aug = DSA("crop")
    x = torch.arange(16.0).view(1, 1, 4, 4)
    y = aug._crop(x, torch.tensor([[1, -1]]))
    expected = torch.tensor([[0, 0, 0, 0], [1, 2, 3, 0], [5, 6, 7, 0], [9, 10, 11, 0]], dtype=torch.float32)
    assert torch.equal(y[0, 0], expected)


def test_cutout_zeroes_half_the_side() -> None:
    y = DSA("cutout")._cutout(torch.ones(1, 1, 8, 8), torch.tensor([[4, 4]]))
    assert int((y == 0).sum()) == 16  # a 4x4 square


def test_flip_and_strategy_parsing() -> None:
    x = torch.arange(4.0).view(1, 1, 1, 4)
    assert torch.equal(DSA("flip")._flip(x, torch.tensor([True])), x.flip(3))
    assert "flip" not in strategy_for("mnist") and "flip" in strategy_for("fashion-mnist")
    assert parse_strategy("none") == ()
    with pytest.raises(UserError, match="unknown augmentation"):
        parse_strategy("color_blur")
