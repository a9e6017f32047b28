"""Write the table of docs/walkthrough.md that points at the line computing each quantity
of one training step, in every backend.

Run ``python docs/name_table.py`` after changing a backend: it rewrites the table
between the ``names:begin`` and ``names:end`` markers. tests/test_walkthrough.py fails
when the table is stale, or when a cell's code is not in its function.

Each cell names a function of the training step and the code in it that computes the
quantity (a line that assigns it, or fills it in place: ``out=``, a kernel's argument).
The link goes to the first line of that function holding that code, so it cannot point
at a line that does something else: if the code changes, the cell is not found and the
test fails.

The same check keeps the source quoted on other pages honest: a ``python`` block preceded
by ``<!-- code: FILE FUNCTION -->`` must hold lines of that function (:func:`quotes`,
:func:`misquoted`; tests/test_walkthrough.py runs it on docs/learn.md).
"""

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "walkthrough.md"
BACKENDS = ("naive", "NumPy", "Numba")
NAIVE, NUMPY = "kernels/naive.py", "kernels/numpy_backend.py"
LAYERS, TRAIN = "kernels/numba_layers.py", "kernels/numba_train.py"
NP_STEP = (NUMPY, "train_batches")  # the NumPy backend's step: loss_and_grads in place, on buffers
#: (quantity, {backend: (file, function, code)}): the step's code in each backend
ROWS = [
    ("z1 = X @ W1 + b1", {"naive": (NAIVE, "forward_cache", "z1 = linear_forward(X, W1, b1)"),
                          "NumPy": (*NP_STEP, "relu_forward(linear_forward(X, W1, b1, out=a1), out=a1)"),
                          "Numba": (TRAIN, "layer1_in_parts", "linear_forward_sparse(first, last, sp, W1, b1, z1)")}),
    ("a1 = relu(z1)", {"naive": (NAIVE, "forward_cache", "a1 = relu_forward(z1)"),
                       "NumPy": (*NP_STEP, "relu_forward(linear_forward(X, W1, b1, out=a1), out=a1)"),
                       "Numba": (LAYERS, "dense_forward", "relu_forward(0, n, acts.z1, acts.a1)")}),
    ("z2 = a1 @ W2 + b2", {"naive": (NAIVE, "forward_cache", "z2 = linear_forward(a1, W2, b2)"),
                           "NumPy": (*NP_STEP, "relu_forward(linear_forward(a1, W2, b2, out=a2), out=a2)"),
                           "Numba": (LAYERS, "dense_forward", "linear_forward(n, acts.a1, params.W2, params.b2, acts.z2)")}),
    ("a2 = relu(z2)", {"naive": (NAIVE, "forward_cache", "a2 = relu_forward(z2)"),
                       "NumPy": (*NP_STEP, "relu_forward(linear_forward(a1, W2, b2, out=a2), out=a2)"),
                       "Numba": (LAYERS, "dense_forward", "relu_forward(0, n, acts.z2, acts.a2)")}),
    ("z3 = a2 @ W3 + b3 (logits)", {"naive": (NAIVE, "forward_cache", "z3 = linear_forward(a2, W3, b3)"),
                                    "NumPy": (*NP_STEP, "linear_forward(a2, W3, b3, out=z3)"),
                                    "Numba": (LAYERS, "dense_forward",
                                              "linear_forward(n, acts.a2, params.W3, params.b3, acts.z3)")}),
    ("loss = mean(log(sum(exp(z3 - m))) - (z3[y] - m))",
     {"naive": (NAIVE, "softmax_cross_entropy", "loss += math.log("),
      "NumPy": (NUMPY, "softmax_cross_entropy_inplace", "loss = np.mean(np.log(total[:, 0]) - picked)"),
      "Numba": (LAYERS, "softmax_cross_entropy", "loss -= np.float64(z3[i, y[i]] - m) - np.log(s)")}),
    ("dz3 = (p - Y) / n", {"naive": (NAIVE, "softmax_cross_entropy", "dz3 = [[(p[i][c] - (1.0 if c == y[i]"),
                           "NumPy": (NUMPY, "softmax_cross_entropy_inplace", "z3[np.arange(n), y] -= 1"),
                           "Numba": (LAYERS, "softmax_cross_entropy", "dz3[i, y[i]] -= inv_n")}),
    ("dW3 = a2.T @ dz3, db3, da2 = dz3 @ W3.T",
     {"naive": (NAIVE, "loss_and_grads", "dW3, db3, da2 = linear_backward(a2, dz3, W3)"),
      "NumPy": (*NP_STEP, "linear_backward(a2, dz3, W3, dW3, db3, da2)"),
      "Numba": (LAYERS, "dense_backward", "linear_backward(n, a2, dz3, params.W3, W3T, dW3, db3, dz2)")}),
    ("dz2 = da2 * relu'(z2)", {"naive": (NAIVE, "loss_and_grads", "dz2 = relu_backward(da2, z2)"),
                               "NumPy": (*NP_STEP, "dz2 = relu_backward(da2, a2, out=da2)"),
                               "Numba": (LAYERS, "dense_backward", "relu_backward(n, z2, dz2)")}),
    ("dW2 = a1.T @ dz2, db2, da1 = dz2 @ W2.T",
     {"naive": (NAIVE, "loss_and_grads", "dW2, db2, da1 = linear_backward(a1, dz2, W2)"),
      "NumPy": (*NP_STEP, "linear_backward(a1, dz2, W2, dW2, db2, da1)"),
      "Numba": (LAYERS, "dense_backward", "linear_backward(n, a1, dz2, params.W2, W2T, dW2, db2, dz1)")}),
    ("dz1 = da1 * relu'(z1)", {"naive": (NAIVE, "loss_and_grads", "dz1 = relu_backward(da1, z1)"),
                               "NumPy": (*NP_STEP, "dz1 = relu_backward(da1, a1, out=da1)"),
                               "Numba": (LAYERS, "dense_backward", "relu_backward(n, z1, dz1)")}),
    ("dW1 = X.T @ dz1", {"naive": (NAIVE, "loss_and_grads", "dW1, db1, _ = linear_backward(X, dz1, None)"),
                         "NumPy": (*NP_STEP, "linear_backward(X, dz1, None, dW1, db1)"),
                         "Numba": (LAYERS, "gradient_row_sparse", "g[h] += x * d[h]")}),
    ("db1 = sum of dz1", {"naive": (NAIVE, "loss_and_grads", "dW1, db1, _ = linear_backward(X, dz1, None)"),
                          "NumPy": (*NP_STEP, "linear_backward(X, dz1, None, dW1, db1)"),
                          "Numba": (LAYERS, "dense_backward", "sum_rows(n, dz1, db1)")}),
    ("centred inputs (the recipe's center)", {"naive": (NAIVE, "train_batches", "center_gradients(grads, mean)"),
                                              "NumPy": (*NP_STEP, "center_gradients(views[2], mean)"),
                                              "Numba": (TRAIN, "dense_step", "db1_total[h] += c * dz1[i, h]")}),
    ("SGD update: v = momentum v + g, w -= lr v", {"naive": (NAIVE, "train_batches", "sgd_update(w, v, g, lr, momentum)"),
                                                  "NumPy": (*NP_STEP, "sgd_update(flat_w, flat_v, flat_g, lr, momentum)"),
                                                  "Numba": (TRAIN, "dense_step", "sgd_update(params.W2, velocity.W2")}),
    ("SGD update of W1 (numba: fused with dW1)", {"naive": (NAIVE, "train_batches", "sgd_update(w, v, g, lr, momentum)"),
                                                  "NumPy": (*NP_STEP, "sgd_update(flat_w, flat_v, flat_g, lr, momentum)"),
                                                  "Numba": (LAYERS, "sgd_update_sparse", "sgd_step(w[h], v[h], g[h]")}),
]
BEGIN, END = "<!-- names:begin -->", "<!-- names:end -->"
#: A quoted block: the marker names the file and function its lines come from.
QUOTE = re.compile(r"<!-- code: (\S+) (\w+) -->\n```python\n(.*?)```", re.S)


def function_lines(file, function):
    """(first, last) line numbers of the top-level or method ``def function`` in ``file``, or None."""
    tree = ast.parse((ROOT / file).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == function:
            return node.lineno, node.end_lineno
    return None


def find(file, function, code):
    """The line number of the first line of ``function`` in ``file`` holding ``code``, or None."""
    span = function_lines(file, function)
    if span is None:
        return None
    lines = (ROOT / file).read_text().splitlines()
    return next((k for k in range(span[0], span[1] + 1) if code in lines[k - 1]), None)


def quotes(page):
    """(file, function, line) for each non-blank line of ``page``'s quoted blocks, stripped."""
    return [(file, function, line.strip()) for file, function, block in QUOTE.findall(page.read_text())
            for line in block.splitlines() if line.strip()]


def misquoted(page):
    """The quoted lines of ``page`` that are not (any longer) in the function they cite."""
    return [q for q in quotes(page) if find(*q) is None]


def table():
    rows = ["| quantity | " + " | ".join(BACKENDS) + " |", "|---|" + "---|" * len(BACKENDS)]
    for what, cells in ROWS:
        out = []
        for backend in BACKENDS:
            file, function, code = cells[backend]
            line = find(file, function, code)
            where = f"[{Path(file).name}:{line}](../{file}#L{line})" if line else "NOT FOUND"
            out.append(f"`{function}`: `{code}` {where}")
        rows.append(f"| {what} | " + " | ".join(out) + " |")
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
