"""The documentation: README.md in tiers, links that resolve, figures from one script,
help texts in plain words, and docs/python-api.md's examples, executed."""

import argparse
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import digitbench
from digitbench import cli
from digitbench.datasets import MnistData, synthetic_data

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
PAGES = [REPO / "README.md", *sorted(DOCS.glob("*.md")), REPO / "benchmarks" / "README.md"]
#: Words of the project's own process, which mean nothing to a reader.
INTERNAL = [r"\bissue \d", r"\bissue's\b", r"\bthe issue\b", r"\bthe lead\b", r"\bother helpers\b", r"\bhelpers'",
            r"\bcoordinator\b", r"\bthis round\b", r"\bthe reference machine\b"]
#: Pages that another branch adds; a link to them may dangle until it is merged.
PENDING = set()

pytestmark = pytest.mark.skipif(not (REPO / "README.md").is_file(), reason="documentation not shipped in the wheel")


def test_readme_is_short_and_has_the_two_commands():
    readme = (REPO / "README.md").read_text()
    assert len(readme.encode()) <= 10_000
    assert "python -m pip install -e . && digitbench train" in readme
    assert "python -m pip install -e '.[test]' && python -m pytest" in readme


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_links_resolve(page):
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
        if "://" in target:
            continue
        path = (page.parent / target).resolve()
        assert path.exists() or path in PENDING, f"{page.name} links to {target}, which does not exist"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_no_internal_terms_or_machine_paths(page):
    text = page.read_text()
    for pattern in INTERNAL + [r"\.\./shared", r"/work/", r"/tmp/fd", r"DESIGN\.md", r"seed write-up"]:
        found = re.search(pattern, text)
        assert not found, f"{page.name}: {found[0]!r} means nothing to a reader"
    if "write-up" in text:
        assert re.search(r"write-up\s+this\s+project\s+started\s+from|started\s+from\s+\(its\s+\"seed\"\)", text), \
            f"{page.name}: which write-up?"


def test_figures_come_from_the_results_script():
    """README's headline table and docs/results.md are what the script makes of docs/results/*/*.json:
    one folder a machine, at least two machines on record, each a column of the page."""
    folders = sorted(p.parent for p in (DOCS / "results").glob("*/machine.json"))
    assert len(folders) >= 2, "fewer than two machines on record"
    assert not sorted((DOCS / "results").glob("*.json")), "a record outside its machine's folder"
    proc = subprocess.run([sys.executable, str(REPO / "tools" / "make_results.py"), "check"], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    readme = (REPO / "README.md").read_text()
    table = readme.split("<!-- results:headline -->")[1].split("<!-- /results:headline -->")[0]
    assert "test accuracy" in table and "docs/results.md" in table


def test_help_digitbench_points_to_files_that_exist():
    doc = digitbench.__doc__
    assert "DESIGN.md" not in doc
    for name in re.findall(r"docs/[\w-]+\.md", doc):
        assert (REPO / name).is_file(), name


def test_help_texts_are_plain_text():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, text in [("digitbench", parser.format_help())] + [(n, p.format_help()) for n, p in sub.choices.items()]:
        for markup in ["``", ":mod:", ":func:", ":class:", "write-up", "issue "]:
            assert markup not in text, f"{name} --help shows {markup!r}"


def python_blocks(page):
    return re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S)


def test_python_api_page_runs(tmp_path, monkeypatch):
    """Every ```python block of docs/python-api.md, in order, in one namespace, on 3,000 images."""
    full = synthetic_data()
    small = MnistData(full.train_images[:2000], full.train_labels[:2000], full.test_images[:1000],
                      full.test_labels[:1000])
    monkeypatch.setattr(digitbench, "load_mnist", lambda *args, **kwargs: small)
    monkeypatch.chdir(tmp_path)
    blocks = python_blocks(DOCS / "python-api.md")
    assert len(blocks) >= 4
    namespace = {}
    for block in blocks:
        exec(compile(block, "docs/python-api.md", "exec"), namespace)
    assert namespace["proba"].shape == (100, 10) and 0 <= namespace["accuracy"] <= 1
    assert np.allclose(namespace["P"].sum(axis=1), 1)
    assert namespace["result"].epochs_run == 1 and namespace["model"].params is not None
    # saved as `digitbench train` saves: with the history that `digitbench plot` draws
    saved = digitbench.load_model(tmp_path / "model.npz")
    assert len(saved.meta["history"]) == 1 and saved.meta["test_accuracy"] == namespace["result"].test_accuracy


def test_train_takes_a_recipe_by_name():
    data = synthetic_data()
    small = MnistData(data.train_images[:256], data.train_labels[:256], data.test_images[:64], data.test_labels[:64])
    result = digitbench.train("numpy", small, recipe="fast", epochs=1)
    assert result.config["lr"] == digitbench.Recipe.named("fast").lr and result.epochs_run == 1


#: The commands behind docs/errors.md's option errors (the memory one depends on the machine).
OPTION_ERRORS = [
    ["train", "--backend", "tensorflow"], ["train", "--epochs", "0"], ["train", "--batch-size", "-64"],
    ["train", "--lr", "nan"], ["train", "--target-accuracy", "97"], ["train", "--momentum", "1.5"],
    ["train", "--decay", "-1"], ["train", "--seed", "-1"], ["train", "--batch-size", "100000"],
    ["train", "--epochs", "100000"], ["experiment", "sigmoid", "--subset", "70000"],
    ["train", "--recipe", "fast", "--network", "cnn"], ["train", "--network", "cnn", "--center"],
]


@pytest.mark.parametrize("argv", OPTION_ERRORS, ids=" ".join)
def test_errors_page_shows_what_the_options_print(argv, tmp_path, monkeypatch, capsys):
    """Each option error on docs/errors.md is the line the command prints, before any data are read."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DIGITBENCH_DATA", str(tmp_path / "no-data-here"))
    try:
        code = cli.main(argv)
    except SystemExit as exit_:
        code = exit_.code
    err = capsys.readouterr().err.strip()
    assert code in (1, 2) and len(err.splitlines()) == 1, err
    assert err in (DOCS / "errors.md").read_text(), f"docs/errors.md does not show: {err}"
