"""``gendistill export DIR --png OUT``: the images as PNG files and one grid, one row per class."""

from __future__ import annotations

import argparse

from PIL import Image

from gendistill.artifacts import load
from gendistill.io import atomic_dir, check_new_dir


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="write an artifact's images as PNG files plus a class grid",
        description="Export a synthetic set to PNG files (OUT/<class>/<i>.png and OUT/grid.png).",
    )
    p.add_argument("artifact", help="artifact folder")
    p.add_argument("--png", required=True, help="output folder to create")
    p.add_argument("--force", action="store_true", help="replace the output folder if it exists")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    check_new_dir(args.png, args.force, create_parents=True, flag="--png")
    synthetic = load(args.artifact).training_set()
    classes = synthetic.meta.get("classes") or [str(i) for i in range(int(synthetic.labels.max()) + 1)]
    pixels = synthetic.pixels()
    with atomic_dir(args.png, args.force) as tmp:
        for i, (img, label) in enumerate(zip(pixels, synthetic.labels.tolist())):
            folder = tmp / f"{label:03d}_{_safe(classes[label])}"
            folder.mkdir(exist_ok=True)
            Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img).save(folder / f"{i:05d}.png")
        synthetic.grid().save(tmp / "grid.png")
    print(f"wrote {len(pixels)} images and grid.png to {args.png}")
    return 0


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in name)
