"""Softmax without the max-subtraction: where it overflows, and what that does to the loss.

The naive softmax ``exp(z) / sum(exp(z))`` breaks in two ways as the logits grow:

- *overflow*: ``exp(z)`` is inf once z > log(largest float), 88.72 in float32 and
  709.78 in float64; then ``inf / inf`` is NaN, the loss is NaN and so is the gradient
  ``P - Y``, and one SGD step turns every weight it touches into NaN;
- *underflow* (earlier): the true class's probability rounds to 0, and the loss
  ``-log 0`` is inf.

The stable form subtracts each row's maximum first (softmax is unchanged by a constant
shift), so the largest exponent is exp(0) = 1, and computes the loss as
``logsumexp(z) - z_y`` (``log_softmax`` in :mod:`digitbench.kernels.numpy_backend`),
which is finite for any finite logits.

The logits here are real: the first 64 test images through the He-initialised network,
with the last layer's weights ``W3`` multiplied by a growing factor (what a learning
rate that is too high does to them in a few steps). The backend's own ``forward`` on
the same weights is checked as well.
"""

import numpy as np

from ..kernels.numpy_backend import forward_cache, log_softmax
from ..params import init_params
from ..pixels import scale_pixels
from .common import Results, format_table

#: Factors W3 is multiplied by: the figure uses all, the table the round ones.
SCALES = np.logspace(0, 3.3, 67)
TABLE_SCALES = (1, 10, 30, 100, 300, 1000, 2000)
DTYPES = (np.float32, np.float64)


def naive_softmax(z):
    """exp(z) / sum(exp(z)) row-wise, with no shift: overflows for large z."""
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def losses(z, y):
    """(naive loss, stable loss, NaN entries in the naive gradient P - Y) of logits z (n, 10)."""
    n = len(y)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        p = naive_softmax(z)
        naive = float(-np.log(p[np.arange(n), y]).mean())
        grad = p.copy()
        grad[np.arange(n), y] -= 1
    stable = float(-log_softmax(z)[np.arange(n), y].mean())
    return naive, stable, int(np.isnan(grad).sum())


def finite_or_text(x):
    """x, or "inf" / "nan" as text (JSON has no infinities)."""
    return x if np.isfinite(x) else str(x)


def fmt(x):
    return f"{x:.4g}" if np.isfinite(x) else str(x)


def compute(args, data, backend):
    """Run the experiment; its numbers, table and figure data as a Results (nothing drawn)."""
    y = np.asarray(data.test_labels[:64], dtype=np.intp)
    by_dtype = {}
    for dtype in DTYPES:
        X = scale_pixels(data.test_images[:64], dtype)
        base = init_params(args.seed, dtype)
        rows = []
        for s in sorted(set(SCALES.tolist()) | set(map(float, TABLE_SCALES))):
            params = base._replace(W3=base.W3 * dtype(s))
            z3 = forward_cache(params, X)[-1]
            naive, stable, nan_grads = losses(z3, y)
            with np.errstate(all="ignore"):
                backend_ok = bool(np.isfinite(backend.forward(params, X)).all())
            rows.append((s, float(z3.max()), naive, stable, nan_grads, backend_ok))
        by_dtype[np.dtype(dtype).name] = rows

    # One row by hand: logits (90, 80, 0) in float32.
    z = np.array([[90.0, 80.0, 0.0]], dtype=np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        by_hand = naive_softmax(z)[0]
    stable_row = np.exp(log_softmax(z))[0]

    table_rows = []
    for s in TABLE_SCALES:
        r32 = next(r for r in by_dtype["float32"] if r[0] == s)
        r64 = next(r for r in by_dtype["float64"] if r[0] == s)
        table_rows.append([f"{s:g}", f"{r32[1]:.1f}", fmt(r32[2]), fmt(r32[3]), r32[4], fmt(r64[2]), fmt(r64[3]),
                           r64[4], "yes" if r32[5] and r64[5] else "NO"])
    table = format_table(["W3 x", "max logit", "naive f32", "stable f32", "NaN grads f32", "naive f64", "stable f64",
                          "NaN grads f64", f"{backend.name} finite"], table_rows)
    lines = [
        "the first 64 test images through the He-initialised network, last-layer weights W3 scaled up;",
        "mean cross-entropy with the naive softmax exp(z)/sum(exp(z)) and with the stable log-softmax;",
        "'NaN grads' counts NaN entries (of 640) in the naive gradient P - Y",
        table,
        "",
        f"exp overflows above log(max float): {np.log(np.finfo(np.float32).max):.2f} in float32, "
        f"{np.log(np.finfo(np.float64).max):.2f} in float64",
        f"by hand, float32 logits (90, 80, 0): naive softmax = {by_hand.tolist()}, stable = "
        f"({', '.join(f'{v:.6g}' for v in stable_row)})",
    ]

    keys = ("w3_scale", "max_logit", "naive_loss", "stable_loss", "nan_gradient_entries", "backend_finite")
    record = {"rows": {d: [dict(zip(keys, (r[0], r[1], finite_or_text(r[2]), finite_or_text(r[3]), *r[4:])))
                           for r in rows_ if r[0] in TABLE_SCALES] for d, rows_ in by_dtype.items()}}
    return Results(lines, record, dict(by_dtype=by_dtype, backend=backend.name))
