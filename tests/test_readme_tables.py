"""The README and docs/ are current: their generated parts (registry lists, the headline table, result
tables) match the code and the store, every relative link and image resolves, and every committed result
is in the store."""

from __future__ import annotations

import pytest

from gendistill.bench.docs import broken_links, doc_files, fill, missing_from_store
from gendistill.cli.flags import flags_table

FILES = doc_files()


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_generated_parts_are_current(path) -> None:
    text = path.read_text()
    assert fill(text, {"flags": flags_table}) == text, f"{path.name} drifted: run python benchmarks/update_readme.py"


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_every_relative_link_and_image_resolves(path) -> None:
    assert not broken_links(path)


def test_every_committed_result_is_in_the_store() -> None:
    missing = missing_from_store()
    assert not missing, f"not imported: {missing[:5]}; run gendistill bench benchmarks/suites/committed.yaml"


def test_the_headline_links_a_committed_artifact(tmp_path) -> None:
    """A headline row whose set is committed under benchmarks/artifacts/<row anchor> links it, so its figure
    can be evaluated again with one command; rows without one say nothing."""
    from gendistill.bench.docs import ROOT, STORE, headline

    plain = headline(STORE, tmp_path / "none", tmp_path)
    assert "](" not in plain
    (tmp_path / "artifacts" / "bench-protocols-random-ipc10").mkdir(parents=True)
    (tmp_path / "artifacts" / "bench-protocols-random-ipc10" / "config.json").write_text("{}")
    linked = headline(STORE, tmp_path / "artifacts", tmp_path)
    assert "[bench-protocols-random-ipc10](artifacts/bench-protocols-random-ipc10)" in linked
    assert ROOT.is_dir()
