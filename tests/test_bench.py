"""gendistill bench: suites, the cached store, resume, bad input, DD-Ranking scores in the rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from gendistill.bench import ResultStore, load_suite, parse_suite, run_suite
from gendistill.bench.imports import describe_entry
from gendistill.bench.summary import bench_rows, imported_rows
from gendistill.cli.main import main
from gendistill.errors import UserError


def suite_file(tmp_path: Path, data_dir: Path, net: str, **extra: object) -> Path:
    raw = {
        "suite": "tiny",
        "dataset": "fashion-mnist",
        "data_dir": str(data_dir),
        "protocols": ["quick"],
        "defaults": {"models": [net], "runs": 1, "augment": "none"},
        "cells": [
            {"method": "random", "ipc": 2},
            {"method": "dm", "ipc": 2, "budget": {"iterations": 2}},
            {"method": "full", "budget": {"epochs": 1}},
        ],
        "store": "store.jsonl",
        "workdir": "work",
        **extra,
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_suite_runs_caches_and_scores(tmp_path: Path, fmnist_dir: Path, net: str) -> None:
    suite = load_suite(suite_file(tmp_path, fmnist_dir, net))
    store = ResultStore(suite.store)
    lines: list[str] = []
    added = run_suite(suite, store, suite.workdir, isolate=False, echo=lines.append)
    assert added == 6  # 3 cells made + 3 evaluations
    assert any("3/3 cells done" in line for line in lines)
    cell = store.find("cell", name="dm-ipc2-2it")
    assert cell["iterations"] == 2 and cell["stored_bytes"] > 0 and cell["peak_rss_mb"] > 0
    assert cell["machine"]["threads"] >= 1 and cell["commit"]
    # warm: nothing runs again, from a fresh read of the file
    again = ResultStore(suite.store)
    assert run_suite(suite, again, suite.workdir, isolate=False, echo=lambda _: None) == 0
    rows = {r.method: r for r in bench_rows(again)}
    dm, rnd, full = rows["dm"], rows["random"], rows["full"]
    assert dm.ior == pytest.approx(dm.mean - rnd.mean)
    assert dm.hlr == pytest.approx(full.mean - dm.mean)
    assert dm.score is not None and 0.0 <= dm.score <= 1.0
    assert rnd.ior is None  # a reference is not scored against itself


def test_adding_a_protocol_runs_only_it(tmp_path: Path, fmnist_dir: Path, net: str) -> None:
    path = suite_file(tmp_path, fmnist_dir, net, cells=[{"method": "random", "ipc": 2}])
    suite = load_suite(path)
    run_suite(suite, ResultStore(suite.store), suite.workdir, isolate=False, echo=lambda _: None)
    raw = yaml.safe_load(path.read_text())
    raw["protocols"] = ["quick", "eccv24"]
    raw["defaults"]["options"] = {}  # not a change of the cell's config
    path.write_text(yaml.safe_dump(raw))
    suite = load_suite(path)
    store = ResultStore(suite.store)
    assert run_suite(suite, store, suite.workdir, isolate=False, echo=lambda _: None) == 1
    assert {r["protocol"] for r in store.records("eval")} == {"quick", "eccv24"}


def test_isolated_worker_and_budget_in_minutes(
    tmp_path: Path, fmnist_dir: Path, net: str, capfd: pytest.CaptureFixture
) -> None:
    cells = [{"method": "dm", "ipc": 1, "budget": {"minutes": 1e-6, "iterations": 50}}]
    suite = load_suite(suite_file(tmp_path, fmnist_dir, net, cells=cells))
    store = ResultStore(suite.store)
    run_suite(suite, store, suite.workdir, isolate=True, echo=lambda _: None, progress=True)
    cell = store.records("cell")[0]
    assert cell["iterations"] == 1  # the minutes budget stopped it after the first iteration
    assert cell["peak_rss_mb"] > 50  # the worker's own peak: torch alone is more
    err = capfd.readouterr().err  # the worker's distillation bar and the evaluation's, as log lines
    assert "it/s" in err or "s/it" in err
    assert "evaluate" in err and "\r" not in err


def test_changed_cell_under_the_same_name_is_refused(tmp_path: Path, fmnist_dir: Path, net: str) -> None:
    cells = [{"method": "random", "ipc": 2, "name": "base"}]
    suite = load_suite(suite_file(tmp_path, fmnist_dir, net, cells=cells))
    store = ResultStore(suite.store)
    run_suite(suite, store, suite.workdir, isolate=False, echo=lambda _: None)
    before = suite.store.read_text()
    changed = load_suite(suite_file(tmp_path, fmnist_dir, net, cells=[{**cells[0], "seed": 1}]))
    with pytest.raises(UserError, match="cell 'base' .* changed \\(seed\\)"):
        run_suite(changed, ResultStore(changed.store), changed.workdir, isolate=False, echo=lambda _: None)
    assert suite.store.read_text() == before


def test_store_survives_a_cut_off_line_and_refuses_a_newer_format(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "s.jsonl"
    store = ResultStore(path)
    store.append({"type": "note", "n": 1})
    with open(path, "a") as f:
        f.write('{"type": "note", "n": 2')  # a kill in mid-write
    store = ResultStore(path)
    assert [r["n"] for r in store.records()] == [1]
    assert "cut off" in caplog.text
    store.append({"type": "note", "n": 3})
    assert [r["n"] for r in ResultStore(path).records()] == [1, 3]
    path.write_text(json.dumps({"type": "note", "format": 99}) + "\n")
    with pytest.raises(UserError, match="newer gendistill"):
        ResultStore(path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"cells": [{"method": "nope", "ipc": 1}]}, "unknown method"),
        ({"cells": [{"method": "dm", "ipc": 1, "colour": 1}]}, "unknown key"),
        ({"protocols": ["fast"]}, "unknown protocol"),
        ({"dataset": "imagenet-42"}, "unknown dataset"),
        ({"cells": [{"method": "dm", "ipc": 0}]}, "ipc must be"),
        ({"cells": [{"method": "dm", "ipc": 1, "budget": {"minutes": -1}}]}, "positive"),
        ({"cells": [{"method": "full", "ipc": 1}]}, "full-data cell"),
        ({"cells": [{"method": "dm", "ipc": 1}, {"method": "dm", "ipc": 1}]}, "two cells are named"),
        ({"wat": 1}, "unknown key"),
    ],
)
def test_bad_suites_are_one_line(change: dict, message: str) -> None:
    raw = {"suite": "s", "cells": [{"method": "random", "ipc": 1}], **change}
    with pytest.raises(UserError, match=message):
        parse_suite(raw)


def test_cli_bad_suite_exits_2_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("suite: bad\ncells:\n  - {method: dm, ipc: 1, protocols: [nope]}\n")
    assert main(["bench", str(path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "unknown protocol" in err
    assert not (tmp_path / "bad.jsonl").exists()


def test_committed_results_are_imported_once(tmp_path: Path, fmnist_dir: Path, net: str) -> None:
    report = {
        "dataset": "fashion-mnist",
        "preset": "paper",
        "stored_bytes": 7840,
        "results": [
            {"model": "convnet", "accuracies": [0.8, 0.82], "mean": 0.81, "std": 0.01, "recipe": {"epochs": 300}}
        ],
    }
    results = tmp_path / "methods.json"
    results.write_text(
        json.dumps(
            {
                "entries": {
                    "dm-ipc10-30min": {
                        "method": "dm",
                        "ipc": 10,
                        "report": report,
                        "distill_seconds": 1800.0,
                        "budget_minutes": 30,
                        "finished": "t1",
                    },
                    "prior": {"steps": 4},
                }
            }
        )
    )
    suite = load_suite(suite_file(tmp_path, fmnist_dir, net, cells=[], **{"import": ["methods.json"]}))
    store = ResultStore(suite.store)
    assert run_suite(suite, store, suite.workdir, isolate=False, echo=lambda _: None) == 2
    assert run_suite(suite, store, suite.workdir, isolate=False, echo=lambda _: None) == 0
    (row,) = imported_rows(store)
    assert (row.method, row.ipc, row.protocol, row.mean, row.budget) == ("dm", 10, "paper", 0.81, "30min")
    # keys are names, never parsed: an entry that records nothing is described by its file alone
    assert describe_entry("dsa-ipc1-bf16-30min", {}, "methods.json") == {
        "method": "methods",
        "ipc": None,
        "protocol": None,
        "dataset": None,
        "inferred": True,
    }


def test_a_committed_cell_is_satisfied_by_its_import(
    tmp_path: Path, fmnist_dir: Path, net: str, capsys: pytest.CaptureFixture
) -> None:
    (tmp_path / "baselines.json").write_text(json.dumps({"entries": {"random-ipc2": {"finished": "t1"}}}))
    cells = [
        {"method": "random", "ipc": 2, "committed": "baselines.json:random-ipc2"},
        {"method": "random", "ipc": 1, "eval_epochs": 1},
    ]
    path = suite_file(tmp_path, fmnist_dir, net, cells=cells, **{"import": ["baselines.json"]})
    suite = load_suite(path)
    store = ResultStore(suite.store)
    lines: list[str] = []
    assert run_suite(suite, store, suite.workdir, isolate=False, echo=lines.append) == 3  # import + 1 cell + 1 eval
    assert "2 cells, 1 done (1 by committed results), 1 to run" in lines[0]
    assert [r["name"] for r in store.records("cell")] == ["random-ipc1"]
    (evaluation,) = store.records("eval")
    assert evaluation["report"]["results"][0]["recipe"]["epochs"] == 1  # eval_epochs overrides the protocol's
    assert main(["bench", str(path), "--list"]) == 0
    assert "committed: baselines.json:random-ipc2" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ({"committed": "other.json:random-ipc1"}, "does not import"),
        ({"committed": "baselines.json:random-ipc7"}, "has no entry"),
        ({"committed": "random-ipc1"}, "FILE:KEY"),
        ({"eval_epochs": 0}, "eval_epochs"),
    ],
)
def test_bad_committed_links_are_one_line(tmp_path: Path, cell: dict, message: str) -> None:
    (tmp_path / "baselines.json").write_text(json.dumps({"entries": {"random-ipc1": {}}}))
    raw = {"suite": "s", "import": ["baselines.json"], "cells": [{"method": "random", "ipc": 1, **cell}]}
    with pytest.raises(UserError, match=message):
        parse_suite(raw, tmp_path / "s.yaml")


SUITES = sorted((Path(__file__).resolve().parent.parent / "benchmarks" / "suites").glob("*.yaml"))


@pytest.mark.parametrize("path", SUITES, ids=[p.stem for p in SUITES])
def test_the_projects_suites_are_valid(path: Path) -> None:
    """Every suite under benchmarks/suites parses, and every cell's parameterisation config builds."""
    from gendistill.params import PARAMS

    suite = load_suite(path)
    for cell in suite.cells:
        if cell.param:
            settings = dict(cell.param)
            PARAMS.get(settings.pop("name")).Config(**settings)


def test_a_worker_ends_when_its_bench_is_killed(tmp_path: Path) -> None:
    """SIGKILL gives the bench no chance to stop its worker; the worker notices and exits by itself."""
    import os
    import subprocess
    import sys
    import time

    script = tmp_path / "parent.py"
    script.write_text(
        "import multiprocessing, os, sys, time\n"
        "from gendistill.bench.runner import exit_with_parent\n"
        "def child(parent):\n"
        "    exit_with_parent(parent, every=0.2)\n"
        "    time.sleep(60)\n"
        "if __name__ == '__main__':\n"
        "    p = multiprocessing.get_context('spawn').Process(target=child, args=(os.getpid(),))\n"
        "    p.start()\n"
        "    print(p.pid, flush=True)\n"
        "    time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    parent.kill()
    parent.wait()

    def gone() -> bool:  # exited: reaped, or a zombie where no init reaps orphans (some containers)
        try:
            return Path(f"/proc/{child}/stat").read_text().split(")")[-1].split()[0] in ("Z", "X")
        except OSError:
            return True

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if gone():
            return
        time.sleep(0.2)
    os.kill(child, 9)
    pytest.fail("the worker outlived its killed parent by 30 s")


def test_isolated_runs_a_function_in_a_fresh_process_and_measures_its_peak() -> None:
    """The one place a measured run is spawned: its value comes back with the worker's peak memory, and a
    user mistake in the worker comes back as the same one-line error."""
    import math

    from gendistill.bench.runner import isolated
    from gendistill.validate import finite_number

    value, peak = isolated(math.factorial, 5)
    assert value == 120 and peak["peak_rss_mb"] > 0
    with pytest.raises(UserError, match="x must be a number"):
        isolated(finite_number, "x", "abc")
