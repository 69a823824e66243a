"""Reports: progress that reads well in a log file, tables, grids."""

from __future__ import annotations

import io

import numpy as np

from gendistill.report import class_grid, render_table
from gendistill.report.progress import progress


def test_progress_in_a_log_file_is_lines_not_redraws() -> None:
    log = io.StringIO()  # not a terminal, like a redirected background run
    bar = progress(range(1000), desc="distill", file=log)
    for i in bar:
        bar.set_postfix_str(f"loss {i}", refresh=False)  # as the engine reports its loss
    text = log.getvalue()
    assert "\r" not in text and 1 <= len(text.splitlines()) <= 3  # the first and the final line, no redraws
    assert text.splitlines()[-1].startswith("distill: 100%") and "1000/1000" in text


def test_tables_and_grids() -> None:
    table = render_table([{"a": 1, "bb": "x"}, {"a": 22, "bb": "yy"}], markdown=True)
    assert table.splitlines()[0] == "| a  | bb |" and len(table.splitlines()) == 4
    grid = class_grid(np.zeros((6, 4, 4, 1), np.uint8), np.array([0, 0, 1, 1, 2, 2]), 3)
    assert grid.size[1] > grid.size[0] / 2  # three rows of two
