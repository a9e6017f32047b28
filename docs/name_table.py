"""Write the table of docs/walkthrough.md that maps each name to its line in every backend.

Run ``python docs/name_table.py`` after changing a backend: it rewrites the table
between the ``names:begin`` and ``names:end`` markers. tests/test_walkthrough.py fails
when the table is stale. A name's line is where it is defined: its ``def``, else its
first assignment, else its first use in code (the numba kernels receive their buffers
as arguments and fill them with ``out=``-style calls).
"""

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "walkthrough.md"
BACKENDS = {
    "naive": ["kernels/naive.py"],
    "NumPy": ["kernels/numpy_backend.py"],
    "Numba": sorted(str(p.relative_to(ROOT)) for p in (ROOT / "kernels").rglob("*.py")
                    if p.name.startswith("numba") or "numba" in p.parent.name),
}
#: (what, the name in each backend; one string when all three use it)
ROWS = [
    ("forward pass keeping what backward needs", {"naive": "forward_cache", "NumPy": "forward_cache",
                                                  "Numba": "dense_forward"}),
    ("z1 = X @ W1 + b1", "z1"), ("a1 = relu(z1)", "a1"), ("z2 = a1 @ W2 + b2", "z2"), ("a2 = relu(z2)", "a2"),
    ("z3 = a2 @ W3 + b3 (logits)", "z3"),
    ("relu", {"naive": "relu", "NumPy": "relu", "Numba": "relu_rows"}),
    ("softmax", {"naive": "softmax", "NumPy": "softmax", "Numba": "softmax_rows"}),
    ("loss = mean(log(sum(exp(z3 - m))) - (z3[y] - m))", "loss"),
    ("dz3 = (p - Y) / n", "dz3"), ("dW3 = a2.T @ dz3", "dW3"), ("db3", "db3"), ("da2 = dz3 @ W3.T", "da2"),
    ("dz2 = da2 * relu'(z2)", "dz2"), ("dW2 = a1.T @ dz2", "dW2"), ("db2", "db2"), ("da1 = dz2 @ W2.T", "da1"),
    ("dz1 = da1 * relu'(z1)", "dz1"), ("dW1 = X.T @ dz1", "dW1"), ("db1", "db1"),
    ("SGD step, in place", {"naive": "sgd_update_inplace", "NumPy": "train_batches", "Numba": "sgd_update_inplace"}),
]
BEGIN, END = "<!-- names:begin -->", "<!-- names:end -->"


def find(name, files):
    """(file, line) where ``name`` is defined in ``files``, or None."""
    best = None
    for rank in ("def", "store", "load"):
        for file in files:
            tree = ast.parse((ROOT / file).read_text())
            lines = []
            for node in ast.walk(tree):
                if rank == "def" and isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == name:
                    lines.append(node.lineno)
                elif isinstance(node, ast.Name) and node.id == name and (
                        (rank == "store" and isinstance(node.ctx, ast.Store))
                        or (rank == "load" and isinstance(node.ctx, ast.Load))):
                    lines.append(node.lineno)
            if lines:
                best = best or (file, min(lines))
        if best:
            return best
    return None


def table():
    head = "| step | " + " | ".join(BACKENDS) + " |"
    rows = [head, "|---|" + "---|" * len(BACKENDS)]
    for what, names in ROWS:
        cells = []
        for backend, files in BACKENDS.items():
            name = names if isinstance(names, str) else names[backend]
            where = find(name, files)
            cells.append(f"[`{name}`](../{where[0]}#L{where[1]}) {Path(where[0]).name}:{where[1]}" if where else "-")
        rows.append(f"| {what} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def rewritten(text):
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    return pattern.sub(lambda m: f"{BEGIN}\n{table()}\n{END}", text)


if __name__ == "__main__":
    text = PAGE.read_text()
    if "--check" in sys.argv:
        sys.exit(0 if rewritten(text) == text else "docs/walkthrough.md's name table is stale: "
                 "run python docs/name_table.py")
    PAGE.write_text(rewritten(text))
