"""The README's Python example runs as written in a fresh folder (only its budget line is made smaller)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).parents[1] / "README.md"
BUDGET = "ITERATIONS, EPOCHS = 100, None"


def test_the_python_example_runs(fmnist_dir: Path, tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks and BUDGET in blocks[0], "the README's first Python block sets its budget in one line"
    script = blocks[0].replace(BUDGET, "ITERATIONS, EPOCHS = 2, 2")
    env = {**os.environ, "GENDISTILL_DATA": str(fmnist_dir.parent), "OMP_NUM_THREADS": "2"}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "runs" / "h10" / "config.json").is_file() and (tmp_path / "runs" / "hglad10").is_dir()
