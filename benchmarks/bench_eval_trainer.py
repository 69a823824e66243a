"""Speed of the evaluation trainer against a textbook fp32 PyTorch loop, in one run.

    python benchmarks/bench_eval_trainer.py [--epochs 300] [--ipc 10]

Both train ConvNet-3 from the same initial weights on the same 100 Fashion-MNIST images (IPC 10) with
the protocol's recipe, then test on the 10,000 test images; the time of each includes that test pass
(and, for gendistill, any compile). The textbook loop runs in a fresh child process, so it gets the
default allocator settings, as in any user's script. Writes results/eval_trainer_speed.json and .md.
"""

from __future__ import annotations

import argparse
import copy
import multiprocessing
import time

import torch
import torch.nn.functional as F
from common import ResultBook
from torch.utils.data import DataLoader, TensorDataset

from gendistill import create_model, load_dataset
from gendistill.evaluate import PRESETS, accuracy, select, train_classifier
from gendistill.evaluate.trainer import maybe_compile


def textbook(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, tx: torch.Tensor, ty: torch.Tensor, epochs: int
) -> float:
    """The loop as tutorials and the reference repos write it: DataLoader, fp32, eager, no_grad test."""
    loader = DataLoader(TensorDataset(x, y), batch_size=256, shuffle=True)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[epochs // 2], gamma=0.1)
    model.train()
    for _ in range(epochs):
        for xb, yb in loader:
            opt.zero_grad()
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
        sched.step()
    model.eval()
    correct = 0
    with torch.no_grad():
        for xb, yb in DataLoader(TensorDataset(tx, ty), batch_size=256):
            correct += int((model(xb).argmax(1) == yb).sum())
    return correct / len(ty)


def timed_textbook(state: dict, x, y, tx, ty, epochs: int) -> tuple[float, float]:
    torch.manual_seed(1)
    model = create_model("convnet", 1, 10, 28)
    model.load_state_dict(state)
    t0 = time.perf_counter()
    acc = textbook(model, x, y, tx, ty, epochs)
    return acc, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=300)
    ap.add_argument("--ipc", type=int, default=10)
    args = ap.parse_args()
    ds = load_dataset("fashion-mnist")
    data = select(ds, "random", args.ipc, seed=0)
    torch.manual_seed(0)
    init = create_model("convnet", 1, 10, 28)
    recipe = PRESETS.get("paper").recipe("none", epochs=args.epochs)
    cpu = torch.device("cpu")

    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        acc_textbook, t_textbook = pool.apply(
            timed_textbook, (init.state_dict(), data.images, data.labels, ds.test_images, ds.test_labels, args.epochs)
        )

    m = copy.deepcopy(init)
    t0 = time.perf_counter()
    fwd = maybe_compile(m, "auto", recipe, len(data), cpu)
    train_classifier(m, data, recipe, torch.Generator().manual_seed(1), cpu, None, forward=fwd)
    acc_ours = accuracy(fwd, ds.test_images, ds.test_labels, cpu)
    t_ours = time.perf_counter() - t0

    ratio = t_textbook / t_ours
    print(f"textbook fp32 loop: {t_textbook:.1f} s, acc {100 * acc_textbook:.2f}%")
    print(f"gendistill trainer: {t_ours:.1f} s, acc {100 * acc_ours:.2f}%")
    print(f"speed-up: {ratio:.2f}x")
    book = ResultBook("eval_trainer_speed")
    key = f"convnet3-ipc{args.ipc}-{args.epochs}ep"
    book.add(
        key,
        {
            "textbook_s": t_textbook,
            "gendistill_s": t_ours,
            "speedup": ratio,
            "textbook_acc": acc_textbook,
            "gendistill_acc": acc_ours,
            "epochs": args.epochs,
            "images": len(data),
            "precision": "fp32",
            "compiled": fwd is not m,
        },
    )
    rows = [
        {
            "setting": k,
            "textbook s": f"{e['textbook_s']:.1f}",
            "gendistill s": f"{e['gendistill_s']:.1f}",
            "speed-up": f"{e['speedup']:.2f}x",
            "acc textbook %": f"{100 * e['textbook_acc']:.2f}",
            "acc gendistill %": f"{100 * e['gendistill_acc']:.2f}",
            "cpu": e["machine"]["cpu"],
        }
        for k, e in book.data["entries"].items()
    ]
    book.write_table(rows, "Evaluation trainer vs a textbook fp32 loop", "python benchmarks/bench_eval_trainer.py")


if __name__ == "__main__":
    main()
