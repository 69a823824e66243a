"""gendistill report: the static page, its markdown twin and plots, opened in a real headless browser."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from gendistill.bench import ResultStore, load_suite, run_suite
from gendistill.bench.page import write_report
from gendistill.cli.main import main

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.fixture
def store(tmp_path: Path, fmnist_dir: Path, net: str) -> Path:
    raw = {
        "suite": "tiny",
        "data_dir": str(fmnist_dir),
        "protocols": ["quick"],
        "defaults": {"models": [net], "runs": 1, "augment": "none"},
        "cells": [
            {"method": "random", "ipc": 1},
            {"method": "dm", "ipc": 1, "budget": {"iterations": 1}},
            {"method": "full", "budget": {"epochs": 1}},
        ],
        "store": "store.jsonl",
        "workdir": "work",
    }
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(raw))
    suite = load_suite(tmp_path / "tiny.yaml")
    run_suite(suite, ResultStore(suite.store), suite.workdir, isolate=False, echo=lambda _: None)
    return suite.store


def test_report_files(store: Path, tmp_path: Path) -> None:
    out = write_report(store, tmp_path / "report")
    names = {p.name for p in out.rglob("*")}
    assert {"index.html", "report.md", "rows.json", "acc_vs_ipc.png", "acc_vs_time.png", "acc_vs_bytes.png"} <= names
    page = (out / "index.html").read_text()
    assert "dm-ipc1-1it" in page and "<details id=" in page and "http" not in page.split("<body>")[0]
    assert len(list((out / "grids").glob("*.png"))) == 2  # dm and random have grids; full data has none
    md = (out / "report.md").read_text()
    assert "| suite" in md and "IOR" in md


def test_report_refuses_an_existing_folder(store: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "keep.txt").write_text("mine")
    assert main(["report", str(store), "--out", str(tmp_path / "r")]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (tmp_path / "r" / "keep.txt").read_text() == "mine"
    assert main(["report", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "r2")]) == 2


@pytest.mark.skipif(
    BROWSER is None and not os.environ.get("GENDISTILL_REQUIRE_BROWSER"),
    reason="no chromium here (.ci/run installs it)",
)
def test_report_in_a_headless_browser(store: Path, tmp_path: Path) -> None:
    assert BROWSER is not None, "GENDISTILL_REQUIRE_BROWSER is set but no chromium is installed"
    out = write_report(store, tmp_path / "report")
    url = (out / "index.html").resolve().as_uri()
    flags = [
        BROWSER,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--virtual-time-budget=5000",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    body = re.search(r"<body[^>]*>", dom)
    assert body, dom[:500]
    found = dict(re.findall(r'data-(images|broken|errors)="(\d+)"', body.group(0)))
    assert int(found["images"]) == 5 and found["broken"] == "0" and found["errors"] == "0", body.group(0)
    shot = tmp_path / "shot.png"
    subprocess.run([*flags, f"--screenshot={shot}", "--window-size=1280,1600", url], capture_output=True, timeout=120)
    assert shot.is_file() and shot.stat().st_size > 10_000


COMMITTED = Path(__file__).parent.parent / "benchmarks" / "results"


def test_the_committed_report_is_the_committed_store_rendered(tmp_path: Path) -> None:
    """The page in the repository is current: rendering the committed store gives it again, byte for byte
    (the plots aside, whose bytes depend on matplotlib's version)."""
    committed = COMMITTED / "report"
    fresh = write_report(COMMITTED / "store.jsonl", tmp_path / "report", grids_from=committed)
    for name in ("index.html", "report.md", "rows.json"):
        assert (fresh / name).read_text() == (committed / name).read_text(), (
            f"{name} is stale: gendistill report benchmarks/results/store.jsonl --out benchmarks/results/report --force"
        )
    grids = sorted(p.relative_to(fresh).as_posix() for p in (fresh / "grids").rglob("*.png"))
    assert grids == sorted(p.relative_to(committed).as_posix() for p in (committed / "grids").rglob("*.png"))
    assert "<h2>Headline</h2>" in (fresh / "index.html").read_text()
