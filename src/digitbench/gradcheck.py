"""``digitbench gradcheck``: backprop checked against central finite differences.

For a small random batch in float64, each backend's ``loss_and_grads`` gives the
analytic gradient ``g``; for a sample of entries ``w`` of every parameter tensor the
loss is evaluated at ``w + eps`` and ``w - eps``, and

.. math::

    \\tilde g = \\frac{L(w + \\epsilon) - L(w - \\epsilon)}{2 \\epsilon},
    \\qquad \\text{rel} = \\frac{|g - \\tilde g|}{\\max(|g| + |\\tilde g|, \\text{floor})}

Central differences have truncation error about eps^2 |L'''| / 6 and rounding error
about ``eps_machine * |L| / eps``; with eps = 1e-5 in float64 (L ~ 2.3) both are near
5e-11 in absolute terms, and the absolute errors measured are 3e-11 to 6e-11. The
``floor`` (1e-4) keeps small gradients from turning that noise into a large ratio: the
noise is at most ~5e-7 of the floor, and the errors measured over many seeds stay below
1e-7, so the tolerance 1e-6 passes every correct backend while a gradient off by 0.1%
fails.

The batch is dense (every pixel non-zero) so that every weight of W1 has a gradient.
W1 has 100,352 entries, of which only a sample is checked (``--entries``), as for every
tensor, taken among the entries with a non-zero gradient first (:func:`pick_entries`).
ReLU's kink at 0 is the one place finite differences are wrong; with random data no z
lands within eps of 0 in practice, and the seed is fixed.

The check runs on the network the backend was made for (``get_backend(name, network)``):
every parameter array of the MLP's six, or of the CNN's eight (two convolutions, two
dense layers). For the CNN, max pooling is the other place where finite differences
can be wrong: two values of a 2x2 window within eps of each other, which random data
makes as unlikely as a z near 0.
"""

import math

import numpy as np

from .backends import network_name
from .networks import get_network, init_params

#: Largest relative error accepted, and the denominator's floor (see the module docstring).
TOLERANCE = 1e-6
FLOOR = 1e-4


def relative_error(analytic, numeric):
    """|g - g~| / max(|g| + |g~|, FLOOR): the measure the tolerance applies to."""
    return abs(analytic - numeric) / max(abs(analytic) + abs(numeric), FLOOR)


def loss_from_forward(backend, params, X, y):
    """Mean cross-entropy from ``backend.forward`` (cheaper than loss_and_grads for naive)."""
    p = backend.forward(params, X)
    return float(-np.mean(np.log(p[np.arange(len(y)), y])))


def pick_entries(rng, flat_g, entries):
    """``entries`` random indices, taken among the non-zero gradients first.

    An entry whose gradient is exactly 0 (a ReLU unit dead on the whole batch) checks
    only that nothing leaks through; a bug in the arithmetic shows in the others.
    """
    live = np.flatnonzero(flat_g)
    dead = np.flatnonzero(flat_g == 0)
    take = min(entries, len(live))
    picks = list(rng.choice(live, size=take, replace=False)) if take else []
    if len(picks) < entries and len(dead):
        picks += list(rng.choice(dead, size=min(entries - len(picks), len(dead)), replace=False))
    return picks


def gradcheck(backend, batch_size=4, entries=10, eps=1e-5, seed=0, tolerance=TOLERANCE):
    """Compare ``backend.loss_and_grads`` with central differences, tensor by tensor.

    Parameters
    ----------
    backend : Backend, for the MLP or the CNN (:func:`digitbench.get_backend`)
    batch_size : int, samples in the random batch
    entries : int, entries sampled per tensor (all of them if the tensor is smaller)
    eps : float, the finite-difference step
    seed : int, seeds the parameters, the batch and the sampled entries
    tolerance : float, the largest relative error that passes

    Returns
    -------
    list of dict, one per parameter array of the backend's network: ``tensor``, ``shape``, ``checked``, ``max_rel_error``,
    ``max_abs_error``, ``ok``
    """
    rng = np.random.default_rng(seed)
    params = init_params(get_network(network_name(backend)), seed, np.float64)
    # biases start at zero; random ones make the check cover their use too
    params = type(params)(*(a if a.ndim > 1 else rng.normal(0, 0.1, a.shape) for a in params))
    X = rng.uniform(0.05, 1.0, size=(batch_size, 784))
    y = rng.integers(0, 10, size=batch_size)
    loss, grads = backend.loss_and_grads(params, X, y)
    if not math.isclose(loss, loss_from_forward(backend, params, X, y), rel_tol=1e-9):
        raise AssertionError(f"{backend.name}: loss_and_grads' loss differs from forward's")
    records = []
    for name, w, g in zip(params._fields, params, grads):
        flat_w, flat_g = w.reshape(-1), np.asarray(g).reshape(-1)
        picks = pick_entries(rng, flat_g, entries)
        rel, ab = [], []
        for k in picks:
            saved = flat_w[k]
            flat_w[k] = saved + eps
            up = loss_from_forward(backend, params, X, y)
            flat_w[k] = saved - eps
            down = loss_from_forward(backend, params, X, y)
            flat_w[k] = saved
            numeric = (up - down) / (2 * eps)
            analytic = float(flat_g[k])
            ab.append(abs(analytic - numeric))
            rel.append(relative_error(analytic, numeric))
        records.append({"tensor": name, "shape": list(w.shape), "checked": len(picks),
                        "max_rel_error": max(rel), "max_abs_error": max(ab), "ok": max(rel) <= tolerance})
    return records


def format_table(backend_name, records, tolerance):
    lines = [f"{backend_name}: central differences vs loss_and_grads (float64, tolerance {tolerance:g})",
             f"  {'tensor':<7}{'shape':<12}{'checked':>8}{'max rel err':>14}{'max abs err':>14}  status"]
    for r in records:
        shape = "x".join(str(s) for s in r["shape"])
        lines.append(f"  {r['tensor']:<7}{shape:<12}{r['checked']:>8}{r['max_rel_error']:>14.2e}"
                     f"{r['max_abs_error']:>14.2e}  {'ok' if r['ok'] else 'FAIL'}")
    return "\n".join(lines)
