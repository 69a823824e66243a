"""Try gendistill as a careless user on a bad day would: wrong values, options that do not apply, missing
or damaged files, a read-only folder, a full disk. Each case runs the real command in a fresh process and
is *clean* when it exits 2 with one error line, no traceback, and nothing left at its output path.

    python benchmarks/mistakes.py                    # this checkout; writes results/mistakes.{json,md}
    python benchmarks/mistakes.py --src OTHER/src --tag before   # another checkout, e.g. an older commit

The read-only folder and the full disk are small tmpfs mounts, so those cases need root (they are
reported as skipped otherwise). Every case runs under a 12 GB address-space limit and a time limit, so a
mistake that asks for 31 GB fails instead of taking the machine down.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
MEMORY_LIMIT = 12 * 2**30


@dataclass
class Case:
    name: str
    kind: str  # environment | unchecked value | accepted nonsense | not applicable | damaged input | suite
    argv: list[str]
    out: str | None = None  # a path (under the workspace) that must not exist afterwards
    timeout: float = 180.0
    needs: tuple[str, ...] = ()  # fixtures: ro, full, art, emb, gan


@dataclass
class Outcome:
    name: str
    kind: str
    clean: bool
    rc: int | None
    seconds: float
    why: str = ""
    last_line: str = ""
    extra: dict = field(default_factory=dict)


def cases(w: Path) -> list[Case]:
    """The mistakes, by command. ``w`` is the workspace; fixtures live there under fixed names."""
    fm = ["--dataset", "fashion-mnist"]
    tiny = ["--method", "dm", "--ipc", "1", "--iterations", "3", "--quiet", *fm]
    d = lambda name, *a, **k: Case(name, k.pop("kind", "unchecked value"), ["distill", *tiny, *a], **k)  # noqa: E731
    out = str(w / "o")
    invert_run = ["--prior", "fashion-mnist-diffusion", "--per-class", "1", "--steps", "2", "--quiet"]

    def on(disk: str, label: str, argv: list[str], flag: str = "--out", needs: tuple[str, ...] = ()) -> Case:
        """``argv`` writing its output onto the read-only folder (``ro``) or the full disk (``full``)."""
        where = "a read-only folder" if disk == "ro" else "a full disk"
        target = str(w / disk / "x")
        return Case(f"{label} on {where}", "environment", [*argv, flag, target], out=target, needs=(disk, *needs))

    folder_run = [
        "distill",
        "--method",
        "dm",
        "--ipc",
        "1",
        "--iterations",
        "2",
        "--quiet",
        "--dataset",
        "imagefolder",
        "--data-dir",
    ]
    cs = [
        # distill: values
        d("distill --set outer_loop=abc", "--method", "dc", "--set", "outer_loop=abc", "--out", out, out=out),
        d("distill --method dim --param glad", "--method", "dim", "--param", "glad", "--out", out, out=out),
        d("distill --lr -1", "--lr", "-1", "--out", out, out=out, kind="accepted nonsense"),
        d("distill --lr inf", "--lr", "inf", "--out", out, out=out, kind="accepted nonsense"),
        d("distill --lr nan", "--lr", "nan", "--out", out, out=out, kind="accepted nonsense"),
        d("distill --lr 1e30 (diverges)", "--lr", "1e30", "--out", out, out=out, kind="accepted nonsense"),
        d(
            "distill --param glad --lr-f -1",
            "--param",
            "glad",
            "--lr-f",
            "-1",
            "--out",
            out,
            out=out,
            kind="accepted nonsense",
        ),
        d(
            "distill --param glad --lr-w nan",
            "--param",
            "glad",
            "--lr-w",
            "nan",
            "--out",
            out,
            out=out,
            kind="accepted nonsense",
        ),
        d("distill --checkpoint-every -1", "--checkpoint-every", "-1", "--out", out, out=out, kind="accepted nonsense"),
        d("distill --eval-every -1", "--eval-every", "-1", "--out", out, out=out, kind="accepted nonsense"),
        d(
            "distill --select-every -1",
            "--param",
            "hglad",
            "--select",
            "crfd",
            "--select-every",
            "-1",
            "--out",
            out,
            out=out,
            kind="accepted nonsense",
        ),
        d("distill --ipc 0", "--ipc", "0", "--out", out, out=out),
        d("distill --ipc -3", "--ipc", "-3", "--out", out, out=out),
        d("distill --real-batch 0", "--real-batch", "0", "--out", out, out=out),
        d("distill --chunk 0", "--param", "glad", "--chunk", "0", "--out", out, out=out),
        d("distill --method dcgm --fresh 2", "--method", "dcgm", "--fresh", "2", "--out", out, out=out),
        d(
            "distill --method dcgm --lr-g inf",
            "--method",
            "dcgm",
            "--lr-g",
            "inf",
            "--out",
            out,
            out=out,
            kind="accepted nonsense",
        ),
        d("distill --method dcgm --candidates 0", "--method", "dcgm", "--candidates", "0", "--out", out, out=out),
        d(
            "distill --set net_lr=-1 (dc)",
            "--method",
            "dc",
            "--set",
            "net_lr=-1",
            "--out",
            out,
            out=out,
            kind="accepted nonsense",
        ),
        d("distill --set net_batch=0 (dc)", "--method", "dc", "--set", "net_batch=0", "--out", out, out=out),
        d("distill --set inner_loop=1.5 (dc)", "--method", "dc", "--set", "inner_loop=1.5", "--out", out, out=out),
        d("distill --set nosuch=1", "--set", "nosuch=1", "--out", out, out=out),
        d("distill --model nosuch", "--model", "nosuch", "--out", out, out=out),
        d("distill --reg intra=abc", "--reg", "intra=abc", "--out", out, out=out),
        d("distill --reg nosuch=1", "--reg", "nosuch=1", "--out", out, out=out),
        d("distill --reg intra=nan", "--reg", "intra=nan", "--out", out, out=out, kind="accepted nonsense"),
        d("distill --val-fraction 2", "--val-fraction", "2", "--out", out, out=out),
        d("distill --val-fraction nan", "--val-fraction", "nan", "--out", out, out=out, kind="accepted nonsense"),
        d("distill --device cuda (none here)", "--device", "cuda", "--out", out, out=out),
        d("distill --device tpu", "--device", "tpu", "--out", out, out=out),
        d("distill --resume with nothing to resume", "--resume", "--out", out, out=out),
        d(
            "distill --recipe missing.yaml",
            "--recipe",
            str(w / "missing.yaml"),
            "--out",
            out,
            out=out,
            kind="damaged input",
        ),
        d("distill --recipe binary", "--recipe", str(w / "binary.bin"), "--out", out, out=out, kind="damaged input"),
        # distill: data
        d(
            "distill --data-dir missing",
            "--data-dir",
            str(w / "nowhere"),
            "--out",
            out,
            out=out,
            kind="accepted nonsense",
        ),
        d(
            "distill --data-dir empty folder",
            "--data-dir",
            str(w / "empty"),
            "--out",
            out,
            out=out,
            kind="accepted nonsense",
        ),
        d(
            "distill --data-dir a file",
            "--data-dir",
            str(w / "binary.bin"),
            "--out",
            out,
            out=out,
            kind="accepted nonsense",
        ),
        Case(
            "distill imagefolder with a fake .png",
            "damaged input",
            [
                *folder_run,
                str(w / "fakepng"),
                "--out",
                out,
            ],
            out=out,
        ),
        Case(
            "distill imagefolder --image-size 0",
            "unchecked value",
            [
                *folder_run,
                str(w / "folder"),
                "--image-size",
                "0",
                "--out",
                out,
            ],
            out=out,
        ),
        Case(
            "distill imagefolder --image-size 100000",
            "unchecked value",
            [
                *folder_run,
                str(w / "folder"),
                "--image-size",
                "100000",
                "--out",
                out,
            ],
            out=out,
        ),
        # distill: environment
        on("ro", "distill --out", ["distill", *tiny]),
        on("full", "distill --out", ["distill", *tiny]),
        # select
        Case(
            "select --method random --features pixels",
            "not applicable",
            ["select", "--method", "random", "--features", "pixels", "--ipc", "1", "--out", out, *fm],
            out=out,
        ),
        Case(
            "select --ipc 0",
            "unchecked value",
            ["select", "--method", "random", "--ipc", "0", "--out", out, *fm],
            out=out,
        ),
        Case(
            "select --feature-epochs -1",
            "accepted nonsense",
            ["select", "--method", "herding", "--feature-epochs", "-1", "--ipc", "1", "--out", out, *fm],
            out=out,
        ),
        on("ro", "select --out", ["select", "--method", "random", "--ipc", "1", *fm]),
        on("full", "select --out", ["select", "--method", "random", "--ipc", "50", *fm]),
        # prior train
        *[
            Case(
                f"prior train {' '.join(a)}",
                k,
                ["prior", "train", "--out", out, "--steps", "2", "--quiet", *a, *fm],
                out=out,
            )
            for a, k in [
                (["--channel-base", "1"], "unchecked value"),
                (["--lr", "-1"], "unchecked value"),
                (["--lr", "nan"], "accepted nonsense"),
                (["--batch", "10000000"], "unchecked value"),
                (["--steps", "0"], "unchecked value"),
                (["--checkpoint-every", "-1"], "accepted nonsense"),
                (["--kind", "diffusion", "--z-dim", "32"], "not applicable"),
                (["--kind", "diffusion", "--mapping-layers", "3"], "not applicable"),
                (["--kind", "gan", "--tokens", "3"], "not applicable"),
                (["--kind", "gan", "--channels", "16,32"], "not applicable"),
                (["--kind", "diffusion", "--channels", "16,abc"], "unchecked value"),
            ]
        ],
        on("ro", "prior train --out", ["prior", "train", "--steps", "2", "--quiet", *fm]),
        Case("prior eval of a missing folder", "damaged input", ["prior", "eval", str(w / "nowhere"), *fm]),
        Case("prior eval of a binary file", "damaged input", ["prior", "eval", str(w / "binary.bin"), *fm]),
        # invert
        *[
            Case(
                f"invert {' '.join(a)}",
                k,
                ["invert", *invert_run, "--out", out, *a, *fm],
                out=out,
            )
            for a, k in [
                (["--per-class", "0"], "unchecked value"),
                (["--lr", "-1"], "accepted nonsense"),
                (["--lr", "inf"], "accepted nonsense"),
                (["--steps", "0"], "unchecked value"),
                (["--chunk", "0"], "unchecked value"),
                (["--checkpoint-every", "-1"], "accepted nonsense"),
                (["--prior", str(w / "nowhere")], "damaged input"),
                (["--prior", str(w / "binary.bin")], "damaged input"),
            ]
        ],
        on("ro", "invert --out", ["invert", *invert_run, *fm]),
        # generate
        *[
            Case(
                f"generate {' '.join(a)}",
                k,
                ["generate", str(w / "emb"), "--quiet", "--out", out, *a],
                out=out,
                needs=("emb",),
            )
            for a, k in [
                (["--modes", "kmeans"], "not applicable"),
                (["--per-image", "2", "--ipc", "2"], "not applicable"),
                (["--noise", "-1"], "accepted nonsense"),
                (["--noise", "nan"], "accepted nonsense"),
                (["--steps", "0"], "unchecked value"),
                (["--guidance", "inf"], "accepted nonsense"),
                (["--size", "0"], "unchecked value"),
            ]
        ],
        Case(
            "generate from a pixel set",
            "damaged input",
            ["generate", str(w / "art"), "--out", out],
            out=out,
            needs=("art",),
        ),
        on("ro", "generate --out", ["generate", str(w / "emb"), "--quiet"], needs=("emb",)),
        # evaluate
        *[
            Case(f"evaluate {' '.join(a)}", k, ["evaluate", str(w / "art"), "--quiet", *a], needs=("art",))
            for a, k in [
                (["--runs", "0"], "unchecked value"),
                (["--epochs", "0"], "unchecked value"),
                (["--models", "nosuch"], "unchecked value"),
                (["--data-dir", str(w / "empty")], "accepted nonsense"),
                (["--train-on", "both"], "not applicable"),
            ]
        ],
        Case("evaluate a binary file", "damaged input", ["evaluate", str(w / "binary.bin")]),
        Case(
            "evaluate into a read-only artifact",
            "environment",
            ["evaluate", str(w / "ro" / "art"), "--quiet", "--epochs", "1", "--runs", "1"],
            needs=("ro", "art"),
        ),
        # export, sample, crfd, full-data, experts
        on("ro", "export --png", ["export", str(w / "art")], flag="--png", needs=("art",)),
        Case("export a missing artifact", "damaged input", ["export", str(w / "nowhere"), "--png", out], out=out),
        Case(
            "sample a pixel set",
            "damaged input",
            ["sample", str(w / "art"), "--ipc", "2", "--out", out],
            out=out,
            needs=("art",),
        ),
        Case("crfd --nets 0", "unchecked value", ["crfd", str(w / "art"), "--nets", "0", *fm], needs=("art",)),
        Case("full-data --epochs 0", "unchecked value", ["full-data", "--epochs", "0", "--quiet", *fm]),
        Case(
            "full-data --json on a read-only folder",
            "environment",
            [
                "full-data",
                "--epochs",
                "1",
                "--runs",
                "1",
                "--models",
                "convnet[width=8]",
                "--quiet",
                "--json",
                str(w / "ro" / "r.json"),
                *fm,
            ],
            needs=("ro",),
        ),
        *[
            Case(f"experts {' '.join(a)}", k, ["experts", "--out", out, "--quiet", *a, *fm], out=out)
            for a, k in [
                (["--num", "0"], "unchecked value"),
                (["--epochs", "-1"], "unchecked value"),
                (["--lr", "-1"], "accepted nonsense"),
                (["--lr", "nan"], "accepted nonsense"),
            ]
        ],
        # report
        Case("report a binary file", "damaged input", ["report", str(w / "binary.bin"), "--out", out], out=out),
        Case(
            "report a suite file (no records)",
            "damaged input",
            ["report", str(w / "suite-ok.yaml"), "--out", out],
            out=out,
        ),
        on("ro", "report --out", ["report", str(w / "store.jsonl")]),
        # bench
        Case(
            "bench: the second cell's options are unknown",
            "suite",
            ["bench", str(w / "suite-badopt.yaml"), "--quiet"],
            out=str(w / "bench-work" / "badopt"),
        ),
        Case("bench: a budget of 10^12 iterations", "suite", ["bench", str(w / "suite-huge.yaml"), "--list"]),
        Case("bench: a budget of 10^300 minutes", "suite", ["bench", str(w / "suite-forever.yaml"), "--list"]),
        Case("bench: a YAML alias bomb", "suite", ["bench", str(w / "suite-bomb.yaml"), "--list"], timeout=60),
        Case(
            "bench: the store on a read-only folder",
            "environment",
            ["bench", str(w / "suite-ro.yaml"), "--quiet"],
            needs=("ro",),
        ),
    ]
    return cs


def run_case(case: Case, python: list[str], env: dict, w: Path) -> Outcome:
    t0 = time.perf_counter()

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))

    try:
        p = subprocess.run(
            [*python, *case.argv],
            capture_output=True,
            text=True,
            env=env,
            timeout=case.timeout,
            preexec_fn=limit,
            cwd=w,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return Outcome(case.name, case.kind, False, None, time.perf_counter() - t0, f"ran past {case.timeout:.0f} s")
    took = time.perf_counter() - t0
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    last = lines[-1] if lines else ""
    why = ""
    left = case.out and (Path(case.out).exists() or Path(case.out + ".partial").exists())
    errors = [ln for ln in lines if "error:" in ln]
    if "Traceback" in p.stderr:
        why = "traceback"
    elif p.returncode == 0:
        why = "accepted (exit 0)"
    elif p.returncode != 2:
        why = f"exit {p.returncode}"
    elif len(errors) != 1:
        why = f"{len(errors)} error lines"
    elif left:
        why = "left files at its output"
    if left and case.out:  # the next case starts clean
        for path in (Path(case.out), Path(case.out + ".partial")):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            elif path.exists():
                path.unlink()
    return Outcome(case.name, case.kind, not why, p.returncode, round(took, 1), why, last[:300])


@contextlib.contextmanager
def tmpfs(path: Path, size: str, read_only: bool = False) -> Iterator[bool]:
    """A small tmpfs at ``path`` (root only); yields whether it was mounted."""
    path.mkdir(parents=True, exist_ok=True)
    ok = (
        os.geteuid() == 0
        and subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
        ).returncode
        == 0
    )
    try:
        yield ok
    finally:
        if ok:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)


def write_fixtures(w: Path, python: list[str], env: dict) -> dict[str, bool]:
    """Files every case may use, and the artifacts made with the code under test."""
    (w / "empty").mkdir()
    (w / "binary.bin").write_bytes(os.urandom(4096))
    fake = w / "fakepng"
    for c in ("a", "b"):
        (fake / c).mkdir(parents=True)
        (fake / c / "x.png").write_bytes(b"this is not a png")
    _write_folder(w / "folder")
    suite = "suite: {name}\nstore: store.jsonl\nworkdir: bench-work\nprotocols: [quick]\ncells:\n{cells}"
    ok = "  - {method: random, ipc: 1, runs: 1, eval_epochs: 1}\n"
    (w / "suite-ok.yaml").write_text(suite.format(name="ok", cells=ok))
    bad = ok + "  - {method: dm, ipc: 1, budget: {iterations: 2}, options: {no_such_option: 3}}\n"
    (w / "suite-badopt.yaml").write_text(suite.format(name="badopt", cells=bad))
    huge = "  - {method: dm, ipc: 1, budget: {iterations: 1000000000000}}\n"
    (w / "suite-huge.yaml").write_text(suite.format(name="huge", cells=huge))
    forever = "  - {method: dm, ipc: 1, budget: {minutes: 1.0e+300}}\n"
    (w / "suite-forever.yaml").write_text(suite.format(name="forever", cells=forever))
    bomb = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    bomb += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 7)]
    (w / "suite-bomb.yaml").write_text("\n".join(bomb) + "\nsuite: bomb\ncells:\n  - {method: random, ipc: 1}\n")
    (w / "suite-ro.yaml").write_text(suite.format(name="ro", cells=ok).replace("store.jsonl", "ro/store.jsonl"))
    made = {}
    for name, argv in {
        "art": ["distill", "--method", "dm", "--ipc", "1", "--iterations", "2", "--quiet", "--out", str(w / "art")],
        "emb": [
            "invert",
            "--prior",
            "fashion-mnist-diffusion",
            "--per-class",
            "2",
            "--steps",
            "2",
            "--quiet",
            "--out",
            str(w / "emb"),
        ],
    }.items():
        p = subprocess.run([*python, *argv], capture_output=True, text=True, env=env, cwd=w)
        made[name] = p.returncode == 0
        if p.returncode != 0:
            print(f"[mistakes] fixture {name} could not be made: {p.stderr.strip()[-300:]}", flush=True)
    store = {"type": "cell", "suite": "s", "name": "c", "key": "k", "method": "random"}
    (w / "store.jsonl").write_text(json.dumps(store) + "\n")
    return made


def _write_folder(root: Path) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(rng.integers(0, 255, (12, 12), dtype=np.uint8)).save(root / c / f"{i}.png")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", default=str(ROOT / "src"), help="the src/ folder of the checkout to try")
    ap.add_argument("--tag", default="after", help="the name of this run in results/mistakes.json")
    ap.add_argument("--only", nargs="*", help="case names containing any of these")
    args = ap.parse_args()
    env = {**os.environ, "PYTHONPATH": args.src, "GENDISTILL_THREADS": "2"}
    python = [sys.executable, "-m", "gendistill.cli.main"]
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="gd-mistakes-") as tmp:
        w = Path(tmp)
        made = write_fixtures(w, python, env)
        with tmpfs(w / "ro", "4m") as ro, tmpfs(w / "full", "64k") as full:
            if ro and made.get("art"):
                shutil.copytree(w / "art", w / "ro" / "art")
            if ro:
                subprocess.run(["mount", "-o", "remount,ro", str(w / "ro")], check=True)
            have = {"ro": ro, "full": full, **made}
            chosen = [c for c in cases(w) if not args.only or any(s in c.name for s in args.only)]
            for i, case in enumerate(chosen, 1):
                missing = [n for n in case.needs if not have.get(n)]
                if missing:
                    outcomes.append(Outcome(case.name, case.kind, False, None, 0.0, f"skipped: no {missing}"))
                    continue
                o = run_case(case, python, env, w)
                outcomes.append(o)
                mark = "clean" if o.clean else f"NOT CLEAN ({o.why})"
                print(
                    f"[mistakes] {i}/{len(chosen)} {case.name}: {mark} in {o.seconds:.0f} s | {o.last_line[:160]}",
                    flush=True,
                )
    record(args.tag, args.src, outcomes, partial=bool(args.only))


def record(tag: str, src: str, outcomes: list[Outcome], partial: bool) -> None:
    import platform

    tried = [o for o in outcomes if not o.why.startswith("skipped")]
    clean = sum(o.clean for o in tried)
    print(f"[mistakes] {tag}: {clean}/{len(tried)} clean ({len(outcomes) - len(tried)} skipped)")
    if partial:
        return
    path = RESULTS / "mistakes.json"
    book = json.loads(path.read_text()) if path.exists() else {}
    commit = subprocess.run(
        ["git", "-C", str(Path(src).parent), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    book[tag] = {
        "commit": commit,
        "date": time.strftime("%Y-%m-%d"),
        "machine": platform.processor() or "",
        "cases": len(tried),
        "clean": clean,
        "outcomes": [o.__dict__ for o in outcomes],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(book, indent=1) + "\n")
    render(book)


def plain(name: str) -> str:
    """A case's name without its run's temporary workspace (``W``), so runs compare case by case."""
    return re.sub(r"/tmp/gd-mistakes-[^/ ]+", "W", name)


def render(book: dict) -> None:
    tags = list(book)
    names = [plain(o["name"]) for o in book[tags[-1]]["outcomes"]]
    by = {t: {plain(o["name"]): o for o in book[t]["outcomes"]} for t in tags}
    lines = [
        "# Mistakes and faults, tried as a user would",
        "",
        "`python benchmarks/mistakes.py` (see its docstring). Clean: exit 2, one error line, no traceback, "
        "nothing left at the output path.",
        "",
    ]
    lines += [
        f"- **{t}** (commit {book[t]['commit']}, {book[t]['date']}): {book[t]['clean']}/{book[t]['cases']} clean"
        for t in tags
    ]
    lines += [
        "",
        "| case | kind | " + " | ".join(tags) + " | last line (" + tags[-1] + ") |",
        "|---|---|" + "---|" * len(tags) + "---|",
    ]
    for n in names:
        cells = []
        for t in tags:
            o = by[t].get(n)
            cells.append("—" if o is None else ("clean" if o["clean"] else o["why"]))
        last = by[tags[-1]][n]
        text = last["last_line"].replace("|", "\\|")[:140]
        lines.append(f"| {n} | {last['kind']} | " + " | ".join(cells) + f" | {text} |")
    (RESULTS / "mistakes.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
