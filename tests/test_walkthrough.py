"""docs/walkthrough.md's name table is current: each name at its line in every backend."""

import importlib.util
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _script():
    spec = importlib.util.spec_from_file_location("name_table", DOCS / "name_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_name_table_is_current():
    script = _script()
    text = script.PAGE.read_text()
    assert script.BEGIN in text and script.END in text
    assert script.rewritten(text) == text, "docs/walkthrough.md's name table is stale: run python docs/name_table.py"


def test_each_linked_line_holds_its_name():
    """The lines the script finds are real: the named line of each file mentions the name."""
    script = _script()
    root = script.ROOT
    for _, names in script.ROWS:
        for backend, files in script.BACKENDS.items():
            name = names if isinstance(names, str) else names[backend]
            where = script.find(name, files)
            if where is not None:
                line = (root / where[0]).read_text().splitlines()[where[1] - 1]
                assert name in line, (name, where, line)
