"""docs/walkthrough.md's name table is current, and each cell points at the code it names;
its CNN section is the output of docs/cnn_walkthrough.py; the source quoted on docs/learn.md
is still in the functions it cites."""

import importlib.util
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _script(name="name_table"):
    spec = importlib.util.spec_from_file_location(name, DOCS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_name_table_is_current():
    script = _script()
    text = script.PAGE.read_text()
    assert script.BEGIN in text and script.END in text
    assert script.rewritten(text) == text, "docs/walkthrough.md's name table is stale: run python docs/name_table.py"


def test_each_cell_points_at_its_code_inside_its_function():
    """A cell cannot point at a wrong line: its code must be on the line, and the line in
    the function the cell names (the training step's, in every backend)."""
    script = _script()
    for what, cells in script.ROWS:
        assert set(cells) == set(script.BACKENDS), what
        for backend, (file, function, code) in cells.items():
            span = script.function_lines(file, function)
            assert span is not None, f"{what} ({backend}): no function {function} in {file}"
            line = script.find(file, function, code)
            assert line is not None, f"{what} ({backend}): {code!r} is not in {file}:{function}"
            assert span[0] <= line <= span[1]
            assert code in (script.ROOT / file).read_text().splitlines()[line - 1]


def test_a_cell_whose_code_moved_is_not_found():
    script = _script()
    assert script.find("kernels/naive.py", "forward_cache", "z1 = linear_forward(X, W1, b1)") is not None
    assert script.find("kernels/naive.py", "loss_and_grads", "z1 = linear_forward(X, W1, b1)") is None


def test_the_cnn_walkthrough_shows_what_its_script_prints(data_dir):
    """The first test image through the CNN: the page quotes the script's output, and the
    numbers worked by hand in it equal the backend's."""
    script = _script("cnn_walkthrough")
    lines = script.report(data_dir)
    text = script.PAGE.read_text()
    assert script.BEGIN in text and script.END in text
    assert script.rewritten(text, lines) == text, "docs/walkthrough.md's CNN section is stale: " \
        "run python docs/cnn_walkthrough.py"
    output = "\n".join(lines)
    assert "parameters: 215,370" in output and "equal to 1e-12: True" in output
    for line in lines:
        if line.startswith("  by hand "):
            mine, theirs = (float(part.split()[-1]) for part in line.split(","))
            assert mine == theirs, line


def test_the_code_quoted_on_learn_md_is_in_the_functions_it_cites():
    script = _script()
    page = DOCS / "learn.md"
    quoted = script.quotes(page)
    files = {file for file, _, _ in quoted}
    assert {"kernels/conv_naive.py", "kernels/conv_numpy.py"} <= files and len(quoted) >= 20
    assert script.misquoted(page) == [], "docs/learn.md quotes lines that are no longer in their function"


def test_a_quote_that_is_not_in_its_function_is_reported(tmp_path):
    script = _script()
    page = tmp_path / "page.md"
    page.write_text("<!-- code: kernels/conv_naive.py winner -->\n```python\nreturn at\nreturn Y\n```\n")
    assert script.misquoted(page) == [("kernels/conv_naive.py", "winner", "return Y")]
