"""tools/publish_offline.py: no page without results, a log time axis, a point for one commit."""

import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def publish():
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        return importlib.import_module("publish_offline")
    finally:
        sys.path.remove(str(ROOT / "tools"))


def test_no_stored_results_is_refused_in_one_line(publish, monkeypatch):
    monkeypatch.setattr(publish, "stored_results", lambda: [])
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("asv publish ran without results"))
    with pytest.raises(SystemExit) as stop:
        publish.main([])
    assert "no benchmark results stored" in str(stop.value) and "\n" not in str(stop.value)


def test_stored_results_are_result_files_not_machine_descriptions(publish, tmp_path):
    (tmp_path / "ci-smoke").mkdir()
    (tmp_path / "benchmarks.json").write_text("{}")
    (tmp_path / "ci-smoke" / "machine.json").write_text("{}")
    assert publish.stored_results(tmp_path) == []
    (tmp_path / "ci-smoke" / "0123abcd-virtualenv-py3.11.json").write_text("{}")
    assert [p.name for p in publish.stored_results(tmp_path)] == ["0123abcd-virtualenv-py3.11.json"]


def test_the_published_scripts_open_on_a_log_axis_and_draw_points(publish, tmp_path):
    asv = pytest.importorskip("asv", reason="needs the bench extra (asv): pip install -e '.[bench]'")
    for name in publish.JS_PATCHES:
        shutil.copyfile(Path(asv.__file__).parent / "www" / name, tmp_path / name)
    publish.patch_scripts(tmp_path)
    graph = (tmp_path / "graphdisplay.js").read_text()
    assert "params['y-axis-scale'] = ['log']" in graph and "['linear']" in graph
    assert "points: {show: true, radius: 2}" in (tmp_path / "summarygrid.js").read_text()


def test_results_that_asv_does_not_graph_are_refused_too(publish, monkeypatch, tmp_path):
    monkeypatch.setattr(publish, "stored_results", lambda: [tmp_path / "r.json"])
    monkeypatch.setattr(publish, "html_dir", lambda: tmp_path)  # asv published no graphs/ there
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: None)
    with pytest.raises(SystemExit) as stop:
        publish.main([])
    assert "asv drew no graph" in str(stop.value) and "\n" not in str(stop.value)
