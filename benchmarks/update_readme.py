"""Fill the generated parts of README.md and docs/ (registry lists, the headline and cheat-sheet tables,
result tables), or check that they are current and that every link resolves.

    python benchmarks/update_readme.py           # rewrite README.md and docs/*.md
    python benchmarks/update_readme.py --check   # exit 1 when a file lags, a link is broken or the store
                                                 # lacks a committed result

What each marker receives is documented in :mod:`gendistill.bench.docs`.
"""

from __future__ import annotations

import argparse
import sys

from gendistill.bench.docs import broken_links, doc_files, fill, missing_from_store
from gendistill.cli.flags import flags_table


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    problems = []
    for path in doc_files():
        text = path.read_text()
        new = fill(text, {"flags": flags_table})
        if new != text and not args.check:
            path.write_text(new)
        elif new != text:
            problems.append(f"{path.name}'s generated parts are stale: run python benchmarks/update_readme.py")
        problems += [f"broken link in {link}" for link in broken_links(path)]
    missing = missing_from_store()
    if missing:
        problems.append(
            f"{len(missing)} committed result(s) not in the store (e.g. {missing[0]}): run "
            "gendistill bench benchmarks/suites/committed.yaml"
        )
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
