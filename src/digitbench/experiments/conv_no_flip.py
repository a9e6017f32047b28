"""A convolution whose input gradient forgets to flip the kernel, caught by finite differences.

A convolution layer (a correlation, stride 1, padding p) computes
``Y[o,r,s] = b[o] + sum_{c,u,v} X[c, r+u-p, s+v-p] W[o,c,u,v]``. The input X[c,y,x]
is used by every output whose window covers it, with the weight at the place of
(y, x) inside that window, so its gradient is

    dX[c,y,x] = sum_{o,u,v} dY[o, y-u+p, x-v+p] W[o,c,u,v]

Written as a correlation of dY (the window moves forwards again) it reads the kernel
backwards: ``Wf[c,o,u,v] = W[o,c,kh-1-u,kw-1-v]``, in and out channels swapped and
both spatial axes reversed (:func:`digitbench.kernels.layer_shapes.flipped_kernel`).
The slip tried here swaps the channels but keeps the spatial axes: every shape still
matches, the forward pass and the loss are unchanged, training even runs, and only the
gradients below the layer are wrong.

Here the CNN (He initialisation, float64) runs on the first :data:`IMAGES` test images,
once with the layer ops of the backend chosen (``--backend``: correct) and once with the
NumPy ops whose ``conv2d_backward`` is :func:`no_flip_conv2d_backward`. For a sample of entries of W1 and b1
(below conv2: their gradients pass through conv2's dX) and of W2 and b2 (conv2's own:
they never use its dX, the control), each analytic gradient is compared with central
differences of the loss (:func:`digitbench.gradcheck.relative_error`, tolerance
:data:`digitbench.gradcheck.TOLERANCE`). The biases are drawn at random, as
``digitbench gradcheck`` does, so that no ReLU input sits at its kink at 0 (a zero
bias on a blank background would put every background pixel there).
"""

from types import SimpleNamespace

import numpy as np

from ..gradcheck import TOLERANCE, pick_entries, relative_error
from ..kernels.layer_ops import get_ops
from ..kernels.layer_pass import loss, loss_and_grads
from ..kernels.layer_shapes import backward_padding
from ..networks import CNN, init_params
from ..pixels import scale_pixels
from .common import Results, format_table

#: Test images in the batch, entries checked per tensor, the finite-difference step.
IMAGES, ENTRIES, EPS = 4, 8, 1e-5
#: The tensors checked: two below conv2 (through its dX) and conv2's own (not).
TENSORS = ("W1", "b1", "W2", "b2")
BELOW_CONV2 = ("W1", "b1")


def no_flip_conv2d_backward(dY, X, W, padding):
    """The NumPy ``conv2d_backward``, except dX: dY correlated with W's channels swapped
    but its kernel not reversed, ``W[o,c,u,v]`` where ``W[o,c,kh-1-u,kw-1-v]`` belongs.
    Deliberately wrong. Returns dX (n, C, H, W_), dW (O, C, kh, kw), db (O,)."""
    ops = get_ops("numpy")
    _, dW, db = ops.conv2d_backward(dY, X, W, padding)
    unflipped = np.ascontiguousarray(W.transpose(1, 0, 2, 3))  # (C, O, kh, kw), the flip forgotten
    dX = ops.conv2d_forward(dY, unflipped, np.zeros(W.shape[1], W.dtype), backward_padding(W, padding))
    return dX, dW, db


def no_flip_ops():
    """The NumPy layer ops with :func:`no_flip_conv2d_backward` as ``conv2d_backward``."""
    return SimpleNamespace(**{**vars(get_ops("numpy")), "name": "numpy, no flip",
                              "conv2d_backward": no_flip_conv2d_backward})


def central_difference(params, X, y, tensor, k, eps=EPS):
    """(L(w + eps) - L(w - eps)) / (2 eps) for entry k of the flattened ``tensor``."""
    flat = getattr(params, tensor).reshape(-1)  # a view: the parameters are contiguous
    saved = flat[k]
    flat[k] = saved + eps
    up = loss(CNN, params, X, y, "numpy")
    flat[k] = saved - eps
    down = loss(CNN, params, X, y, "numpy")
    flat[k] = saved
    return (up - down) / (2 * eps)


def compute(args, data, backend):
    """Run the experiment; its numbers, table and figure data as a Results (nothing drawn).

    The correct gradients come from ``backend``'s layer ops (the naive ones take a while:
    Python loops over four images), the wrong ones from the NumPy ops without the flip;
    the finite differences use the NumPy ops.
    """
    rng = np.random.default_rng(args.seed)
    params = init_params(CNN, args.seed, np.float64)
    params = params._replace(**{b: rng.normal(0, 0.1, getattr(params, b).shape) for b in ("b1", "b2")})
    X = scale_pixels(data.test_images[:IMAGES], np.float64)
    y = np.asarray(data.test_labels[:IMAGES], dtype=np.intp)
    right_loss, right = loss_and_grads(CNN, params, X, y, backend.name)
    wrong_loss, wrong = loss_and_grads(CNN, params, X, y, no_flip_ops())
    errors, rows = {}, []
    for tensor in TENSORS:
        picks = pick_entries(rng, getattr(right, tensor).reshape(-1), ENTRIES)
        numeric = [central_difference(params, X, y, tensor, k) for k in picks]
        errors[tensor] = {version: [relative_error(float(getattr(g, tensor).reshape(-1)[k]), d)
                                    for k, d in zip(picks, numeric)]
                          for version, g in (("correct", right), ("no flip", wrong))}
        worst = {version: max(e) for version, e in errors[tensor].items()}
        rows.append({"tensor": tensor, "below_conv2": tensor in BELOW_CONV2, "checked": len(picks),
                     "correct_max_rel_error": worst["correct"], "no_flip_max_rel_error": worst["no flip"],
                     "correct_ok": worst["correct"] <= TOLERANCE, "no_flip_ok": worst["no flip"] <= TOLERANCE})

    def verdict(ok):
        return "ok" if ok else "FAIL"

    table = format_table(
        ["tensor", "uses conv2's dX", "correct rel. error", "", "no flip rel. error", ""],
        [[r["tensor"], "yes" if r["below_conv2"] else "no", f"{r['correct_max_rel_error']:.1e}",
          verdict(r["correct_ok"]), f"{r['no_flip_max_rel_error']:.1e}", verdict(r["no_flip_ok"])] for r in rows])
    lines = [
        f"the CNN (He initialisation, random biases, float64) on the first {len(y)} test images: its gradients from",
        f"backprop with conv2's dX correct ({backend.name} ops) and without the kernel flip (NumPy ops), against",
        f"central differences of the loss (step {EPS:g}); the largest relative error of {ENTRIES} entries per tensor,",
        f"tolerance {TOLERANCE:g}",
        table,
        "",
        f"loss {right_loss:.6f} and {wrong_loss:.6f} (the forward pass is the same); only the gradients below "
        "conv2 differ",
    ]
    record = {"images": int(len(y)), "correct_ops": backend.name, "tolerance": TOLERANCE, "loss": right_loss,
              "no_flip_loss": wrong_loss, "rows": rows}
    return Results(lines, record, dict(errors=errors, tolerance=TOLERANCE, images=int(len(y)), below=BELOW_CONV2,
                                       backend=backend.name))
