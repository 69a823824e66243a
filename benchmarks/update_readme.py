"""Copy the rendered result tables (results/*.md) into the README between their markers.

    python benchmarks/update_readme.py

A marker pair ``<!-- results:NAME -->`` ... ``<!-- /results:NAME -->`` in README.md receives
``results/NAME.md`` without its title line.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    readme = ROOT / "README.md"
    text = readme.read_text()
    for table in sorted((ROOT / "benchmarks" / "results").glob("*.md")):
        name = table.stem
        body = "\n".join(line for line in table.read_text().splitlines() if not line.startswith("# ")).strip()
        pattern = re.compile(rf"(<!-- results:{name} -->\n).*?(<!-- /results:{name} -->)", re.S)
        text = pattern.sub(lambda m, body=body: m.group(1) + body + "\n" + m.group(2), text)
    readme.write_text(text)


if __name__ == "__main__":
    main()
