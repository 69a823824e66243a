"""``gendistill report``: a store's results as a static HTML page and its markdown twin.

The folder holds ``index.html`` (no server, no network: styles inline, images beside it), ``report.md``,
the plots (accuracy against IPC, against distillation time, against stored bytes), the image grid of every
cell whose artifact has one, and ``rows.json``. Every row links to its cell's full settings, folded under
the table. A small script on the page counts images that failed to load and page errors, shows a banner
when there are any, and leaves the counts on ``<body>`` (``data-images``, ``data-broken``, ``data-errors``)
where a headless browser can read them.
"""

from __future__ import annotations

import html
import json
import os
import shutil
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path

from PIL import Image

from gendistill.bench.store import ResultStore
from gendistill.bench.summary import Row, bench_rows, imported_rows
from gendistill.data import KNOWN_CLASS_NAMES, class_names
from gendistill.errors import UserError
from gendistill.io import atomic_dir
from gendistill.report.grid import with_row_labels
from gendistill.report.plots import line_plot
from gendistill.report.table import render_table

PLOTS = {
    "acc_vs_ipc.png": "accuracy against images per class",
    "acc_vs_time.png": "accuracy against distillation time (time to accuracy)",
    "acc_vs_bytes.png": "accuracy against stored bytes",
}

_CHECK = """<script>
window.__errors = [];
window.addEventListener("error", e => window.__errors.push(String(e.message || (e.target && e.target.src))), true);
window.addEventListener("load", () => {
  const broken = [...document.images].filter(i => !(i.complete && i.naturalWidth > 0));
  Object.assign(document.body.dataset, {images: document.images.length, broken: broken.length,
                                        errors: window.__errors.length});
  if (broken.length || window.__errors.length) {
    const p = document.createElement("p"); p.className = "warn";
    p.textContent = `${broken.length} image(s) did not load, ${window.__errors.length} page error(s)`;
    document.body.prepend(p);
  }
});
</script>"""

_STYLE = """<style>
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1400px;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:12.5px;margin:1em 0}th,td{border:1px solid #ccc;padding:3px 7px;
text-align:right}th{background:#f3f3f3}td.l,th.l{text-align:left}.plots img{width:49%;min-width:480px}
.grids figure{display:inline-block;margin:0 1em 1em 0}.grids img{max-width:420px;image-rendering:pixelated}
details{margin:.3em 0}pre{background:#f7f7f7;padding:.6em;overflow:auto;font-size:12px}.warn{background:#fdd;
padding:.5em}.muted{color:#777}</style>"""


def _pct(x: float | None, signed: bool = False) -> str:
    return "" if x is None else (f"{100 * x:+.2f}" if signed else f"{100 * x:.2f}")


def table_rows(rows: list[Row], imported: bool = False) -> list[dict]:
    """The report's table as plain rows (for markdown and the README)."""
    out = []
    for r in rows:
        row = {
            "source" if imported else "suite": r.source.removesuffix(".json") if imported else r.suite,
            "cell": r.name,
            "method": r.method,
            "ipc": r.ipc if r.ipc is not None else "all",
            "protocol": r.protocol,
            "network": r.model,
            "acc %": f"{100 * r.mean:.2f} ± {100 * r.std:.2f}",
            "runs": r.runs,
        }
        if not imported:
            row.update(
                {"IOR": _pct(r.ior, True), "HLR": _pct(r.hlr), "score": "" if r.score is None else f"{r.score:.3f}"}
            )
        row.update(
            {
                "budget": r.budget,
                "distill s": "" if r.distill_seconds is None else f"{r.distill_seconds:.0f}",
                "stored bytes": "" if r.stored_bytes is None else f"{r.stored_bytes:,}",
            }
        )
        if not imported:
            row["peak MB"] = "" if r.peak_rss_mb is None else f"{r.peak_rss_mb:.0f}"
        row.update({"machine": r.machine, "commit": r.commit})
        out.append(row)
    return out


def _convnet(rows: list[Row]) -> list[Row]:
    """The rows every summary compares on: ConvNet-3, a set of a given IPC (not full data)."""
    return [r for r in rows if r.model == "convnet" and r.ipc is not None and r.method != "full"]


def _series(rows: list[Row], x: str) -> dict[str, list[tuple[float, float]]]:
    """One series per method: at each x its best ConvNet-3 accuracy over protocols and sources, so the
    legend has one entry per method (the table holds every row)."""
    best: dict[str, dict[float, float]] = defaultdict(dict)
    for r in _convnet(rows):
        value = getattr(r, x)
        if value is None:
            continue
        points = best[r.method]
        points[float(value)] = max(points.get(float(value), 0.0), 100 * r.mean)
    return {method: sorted(points.items()) for method, points in best.items()}


def _plots(rows: list[Row], folder: Path) -> None:
    def plot(x: str, xlabel: str, name: str, title: str, joined: bool = True) -> None:
        line_plot(_series(rows, x), xlabel, "test accuracy %", folder / name, title, logx=True, joined=joined)

    plot("ipc", "images per class", "acc_vs_ipc.png", "ConvNet-3, best of each method at each IPC")
    plot("distill_seconds", "distillation seconds", "acc_vs_time.png", "ConvNet-3: time to accuracy", False)
    plot("stored_bytes", "stored bytes", "acc_vs_bytes.png", "ConvNet-3: accuracy against stored bytes", False)


def headline_rows(rows: list[Row], protocol: str = "paper") -> list[dict]:
    """Each method's best ConvNet-3 accuracy at each IPC under one protocol (the field's hard-label one by
    default: soft labels lift every set, so mixing them would rank protocols, not methods), full data last."""
    rows = [r for r in rows if r.protocol == protocol]
    ipcs = sorted({r.ipc for r in _convnet(rows)})
    best: dict[str, dict[int, Row]] = defaultdict(dict)
    for r in _convnet(rows):
        held = best[r.method].get(r.ipc)
        if held is None or r.mean > held.mean:
            best[r.method][r.ipc] = r
    out = []
    for method in sorted(best, key=lambda m: (m not in ("random", "herding"), m)):
        row: dict = {"method": method}
        for ipc in ipcs:
            r = best[method].get(ipc)
            row[f"IPC {ipc}"] = "" if r is None else f"{100 * r.mean:.2f}"
        out.append(row)
    full = [r for r in rows if r.method == "full" and r.model == "convnet"]
    if full:
        top = max(full, key=lambda r: r.mean)
        out.append({"method": "full data", **{f"IPC {ipc}": "" for ipc in ipcs}})
        out[-1][f"IPC {ipcs[-1]}" if ipcs else "all"] = f"{100 * top.mean:.2f} (all images)"
    return out


def _grids(rows: list[Row], folder: Path, previous: Path) -> dict[str, str]:
    """Each cell's artifact grid beside the page, its rows named by class: ``anchor -> relative path``.

    The grid as the artifact stored it is kept under ``grids/raw/``; a cell whose artifact is no longer on
    this machine (a fresh clone of a repository that commits its report) takes it from the report being
    replaced, ``previous``, so re-rendering a committed report from its committed store changes nothing."""
    out = {}
    (folder / "grids" / "raw").mkdir(parents=True)
    for r in rows:
        if r.anchor in out:
            continue
        artifact = Path(r.grid) if r.grid else None
        src = artifact / "grid.png" if artifact is not None else None
        if src is None or not src.is_file():
            src = previous / "grids" / "raw" / f"{r.anchor}.png"
        if not src.is_file():
            continue
        raw = folder / "grids" / "raw" / f"{r.anchor}.png"
        shutil.copyfile(src, raw)
        with Image.open(raw) as grid:
            names = class_names(r.dataset, _num_classes(artifact, r.dataset))
            with_row_labels(grid, names).save(folder / "grids" / f"{r.anchor}.png")
        out[r.anchor] = f"grids/{r.anchor}.png"
    return out


def _num_classes(artifact: Path | None, dataset: str) -> int:
    """From the artifact's config when it is here, else the dataset's known class count."""
    try:
        return int(json.loads((artifact / "config.json").read_text())["num_classes"])  # type: ignore[operator]
    except (OSError, TypeError, ValueError, KeyError):
        return len(KNOWN_CLASS_NAMES.get(dataset, [])) or 1


def _html_table(rows: list[dict], anchors: list[str]) -> str:
    if not rows:
        return "<p class=muted>none</p>"
    left = {"suite", "source", "cell", "method", "protocol", "network", "budget", "machine", "commit"}
    head = "".join(f"<th class={'l' if k in left else 'r'}>{html.escape(k)}</th>" for k in rows[0])
    body = []
    for row, anchor in zip(rows, anchors or [""] * len(rows)):
        cells = []
        for k, v in row.items():
            text = html.escape(str(v))
            if k == "cell":
                text = f'<a href="#{anchor}">{text}</a>'
            cells.append(f"<td class={'l' if k in left else 'r'}>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _settings(rows: list[Row]) -> str:
    seen, parts = set(), []
    for r in rows:
        if r.anchor in seen:
            continue
        seen.add(r.anchor)
        text = html.escape(json.dumps(r.settings, indent=1, default=str))
        parts.append(
            f'<details id="{r.anchor}"><summary>{html.escape(r.source)} / {html.escape(r.suite)} / '
            f"{html.escape(r.name)}</summary><pre>{text}</pre></details>"
        )
    return "".join(parts)


def render_html(title: str, bench: list[Row], imported: list[Row], grids: dict[str, str]) -> str:
    plots = "".join(f'<img src="{f}" alt="{html.escape(t)}" title="{html.escape(t)}">' for f, t in PLOTS.items())
    gallery = (
        "".join(
            f'<figure><img src="{p}" alt="{a}"><figcaption>{html.escape(a)}</figcaption></figure>'
            for a, p in grids.items()
        )
        or "<p class=muted>no cell with an image grid</p>"
    )
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>{_CHECK}"
        f"{_STYLE}</head><body><h1>{html.escape(title)}</h1>"
        "<h2>Headline</h2><p>Each method's best ConvNet-3 test accuracy (%) at each IPC under the paper "
        "protocol (hard labels), over every suite and imported file below.</p>"
        f"{_html_table(headline_rows(bench + imported), [])}"
        "<p>Accuracy is the final-epoch test accuracy (mean ± std over runs). IOR: the set's accuracy minus a "
        "random subset's of the same size under the same protocol; HLR: full real data's hard-label accuracy "
        "minus the set's; score: DD-Ranking's label-robust score (weight 0.5). Empty: the store lacks the "
        "reference. Click a cell for its settings.</p>"
        f"<h2>Suites</h2>{_html_table(table_rows(bench), [r.anchor for r in bench])}"
        f"<h2>Plots</h2><div class=plots>{plots}</div>"
        f"<h2>Image grids</h2><div class=grids>{gallery}</div>"
        f"<h2>Imported results</h2><p>Committed by the benchmark scripts before the store existed; carried "
        f"over as they were.</p>{_html_table(table_rows(imported, True), [r.anchor for r in imported])}"
        f"<h2>Settings</h2>{_settings(bench + imported)}</body></html>"
    )


def render_markdown(title: str, bench: list[Row], imported: list[Row], grids: dict[str, str]) -> str:
    parts = [
        f"# {title}\n",
        "Open index.html for the settings of every cell.\n",
        "## Headline\n",
        "Each method's best ConvNet-3 test accuracy (%) at each IPC under the paper protocol (hard labels).\n",
        render_table(headline_rows(bench + imported), markdown=True) if bench or imported else "none",
        "",
        "## Suites\n",
        render_table(table_rows(bench), markdown=True) if bench else "none",
        "\n## Plots\n",
        *(f"![{t}]({f})\n" for f, t in PLOTS.items()),
        "\n## Image grids\n",
        *(f"![{a}]({p})\n" for a, p in grids.items()),
        "\n## Imported results\n",
        render_table(table_rows(imported, True), markdown=True) if imported else "none",
    ]
    return "\n".join(parts) + "\n"


def write_report(
    store: str | os.PathLike,
    out: str | os.PathLike,
    force: bool = False,
    title: str = "gendistill results",
    grids_from: str | os.PathLike | None = None,
) -> Path:
    """Render ``store`` into the folder ``out`` (created whole, or not at all). Grids of cells whose
    artifacts are not on this machine come from the earlier report ``grids_from`` (default: ``out``)."""
    results = ResultStore(store)
    if not results.records():
        raise UserError(f"{store} holds no result records; pass a store written by 'gendistill bench'")
    bench, imported = bench_rows(results), imported_rows(results)
    with atomic_dir(out, force) as tmp:
        _plots(bench + imported, tmp)
        grids = _grids(bench, tmp, Path(grids_from if grids_from is not None else out))
        (tmp / "index.html").write_text(render_html(title, bench, imported, grids))
        (tmp / "report.md").write_text(render_markdown(title, bench, imported, grids))
        (tmp / "rows.json").write_text(json.dumps([asdict(r) for r in bench + imported], indent=1, default=str))
    return Path(out)
