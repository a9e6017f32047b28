"""Follow the first test image through the convolutional network, with real numbers.

Prints, for the seed-0 He-initialised CNN in float64 (``networks.init_params(CNN, 0,
np.float64)``) and the first MNIST test image: every layer's shape, one conv1 output
worked out from its 5 x 5 window, one max-pooling window and its winner, the flatten
order, the logits and the loss; then, backward, the gradient reaching that pooling
window, conv2's dX computed a second way (col2im, the transpose of im2col), and one
entry of dW1 summed by hand from its formula, each checked against the NumPy backend.

``python docs/cnn_walkthrough.py [DATA_DIR]`` rewrites the block of docs/walkthrough.md
between the ``cnn:begin`` and ``cnn:end`` markers with this output; ``--check`` only
compares (tests/test_walkthrough.py runs it).
"""

import re
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from digitbench import load_mnist
from digitbench.kernels.layer_ops import get_ops
from digitbench.kernels.layer_pass import forward_cache, loss_and_grads
from digitbench.networks import CNN, init_params, n_params
from digitbench.pixels import scale_pixels

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "walkthrough.md"
BEGIN, END = "<!-- cnn:begin -->", "<!-- cnn:end -->"
#: The conv1 output followed: channel O at pixel (R, S), on the stroke of the "7".
O, R, S = 1, 14, 17
K = 5  # the kernel's side; padding 2


def recording(ops):
    """``ops`` whose backward ops also append (name, dY, their result) to ``.calls``."""
    calls = []

    def wrap(name):
        def backward(dy, *args, **kwargs):
            result = getattr(ops, name)(dy, *args, **kwargs)
            calls.append((name, dy, result))
            return result
        return backward

    names = [n for n in vars(ops) if n.endswith("_backward")]
    return SimpleNamespace(**{**vars(ops), **{n: wrap(n) for n in names}, "calls": calls})


def col2im(dcols, shape, kh, kw, p):
    """The transpose of im2col: each column's values added back into the window it
    came from. dcols (C*kh*kw, n*Ho*Wo) -> (n, C, H, W_) (the padding cut off)."""
    n, C, H, Wd = shape
    Ho, Wo = H + 2 * p - kh + 1, Wd + 2 * p - kw + 1
    d = dcols.reshape(C, kh, kw, n, Ho, Wo)
    out = np.zeros((n, C, H + 2 * p, Wd + 2 * p))
    for u in range(kh):
        for v in range(kw):
            out[:, :, u:u + Ho, v:v + Wo] += d[:, u, v].transpose(1, 0, 2, 3)
    return out[:, :, p:p + H, p:p + Wd]


def grid(a, fmt="{:5.2f}"):
    """A small 2-D array as indented rows of numbers."""
    return ["    " + " ".join(fmt.format(v) for v in row) for row in a]


def report(data_dir=None):
    """The walkthrough's output, as a list of lines."""
    data = load_mnist(data_dir, progress=False)
    X = scale_pixels(data.test_images[:1], np.float64).reshape(1, 1, 28, 28)
    y = np.asarray(data.test_labels[:1], dtype=np.intp)
    params = init_params(CNN, 0, np.float64)
    xs = forward_cache(CNN, params, X, "numpy")
    out = dict(zip([layer.name for layer in CNN.layers], xs[1:]))
    lines = [f"first test image: label {y[0]}, X {X.shape}, {np.mean(X > 0):.1%} of its pixels non-zero",
             f"parameters: {n_params(CNN):,} (seed 0, He initialisation, float64; biases 0)", "",
             "forward, one image:"]
    lines += [f"  {layer.name:8} {layer.kind:8} -> {str(value.shape):16} max {value.max():+.4f}"
              for layer, value in zip(CNN.layers, xs[1:])]

    window = np.pad(X[0, 0], 2)[R:R + K, S:S + K]  # Xpad[r+u, s+v] = X[r+u-2, s+v-2]
    by_hand = params.b1[O] + np.sum(window * params.W1[O, 0])
    lines += ["", f"conv1 channel {O} at pixel ({R}, {S}): b1[{O}] + sum_uv X[{R}+u-2, {S}+v-2] * W1[{O}, 0, u, v]",
              "  the 5 x 5 window of X:", *grid(window),
              f"  the kernel W1[{O}, 0]:", *grid(params.W1[O, 0], "{:+5.2f}"),
              f"  by hand {by_hand:+.6f}, conv2d_forward {out['conv1'][0, O, R, S]:+.6f}"]

    r, s = R // 2, S // 2
    four = out["relu1"][0, O, 2 * r:2 * r + 2, 2 * s:2 * s + 2]
    u, v = np.unravel_index(np.argmax(four), four.shape)
    lines += ["", f"pool1 window ({r}, {s}) of channel {O}: relu1 rows {2 * r}-{2 * r + 1}, "
                  f"columns {2 * s}-{2 * s + 1}",
              *grid(four, "{:7.4f}"),
              f"  winner ({2 * r + u}, {2 * s + v}) -> pool1[0, {O}, {r}, {s}] = {out['pool1'][0, O, r, s]:.4f}"]

    c, i, j = 2, 0, 3
    k = c * 49 + i * 7 + j
    lines += ["", f"flatten: pool2 (1, 32, 7, 7) -> (1, 1568); entry c*49 + i*7 + j, e.g. (c, i, j) = ({c}, {i}, {j})"
              f" -> {k}: {out['pool2'][0, c, i, j]:.6f} == {out['flatten'][0, k]:.6f}"]

    logits = out["dense4"][0]
    p = np.exp(logits - logits.max())
    p /= p.sum()
    ops = recording(get_ops("numpy"))
    loss, grads = loss_and_grads(CNN, params, X, y, ops)
    lines += ["", "logits  " + " ".join(f"{v:+.3f}" for v in logits),
              "softmax " + " ".join(f"{v:6.3f}" for v in p),
              f"loss = -log p[{y[0]}] = {-np.log(p[y[0]]):.6f} (loss_and_grads: {loss:.6f}; ln 10 = {np.log(10):.6f})"]

    lines += ["", "backward, the gradient of each parameter:"]
    lines += [f"  d{name:3} {str(g.shape):16} norm {np.linalg.norm(g):.6f}" for name, g in zip(grads._fields, grads)]

    pools = [call for call in ops.calls if call[0] == "maxpool_backward"]
    d_pool1, d_relu1 = pools[-1][1], pools[-1][2]  # the last pool backward is pool1's
    lines += ["", f"pool1 backward at window ({r}, {s}): dL/dpool1 = {d_pool1[0, O, r, s]:+.6e}, to relu1's 2 x 2:",
              *grid(d_relu1[0, O, 2 * r:2 * r + 2, 2 * s:2 * s + 2] + 0.0, "{:+.6e}"),  # + 0.0: no "-0"
              f"  a tie, window (0, 0) of the blank border: relu1 {out['relu1'][0, O, :2, :2].ravel().tolist()}, "
              f"dL/dpool1 = {d_pool1[0, O, 0, 0]:+.6e}, to relu1's 2 x 2:",
              *grid(d_relu1[0, O, :2, :2] + 0.0, "{:+.6e}")]

    convs = [call for call in ops.calls if call[0] == "conv2d_backward"]
    d_conv2, (dX2, _, _) = convs[0][1], convs[0][2]
    dcols = params.W2.reshape(32, -1).T @ d_conv2.transpose(1, 0, 2, 3).reshape(32, -1)
    other = col2im(dcols, out["pool1"].shape, K, K, 2)
    lines += ["", "conv2's dX (1, 16, 14, 14): the flipped-kernel correlation, and col2im(W2 as (32, 400).T @ dY)",
              f"  equal to 1e-12: {bool(np.allclose(dX2, other, rtol=0, atol=1e-12))}; "
              f"e.g. dX[0, {O}, {r}, {s}] = {dX2[0, O, r, s]:+.6e}"]

    d_conv1 = convs[1][1]  # dL/dconv1, (1, 16, 28, 28)
    centre = sum(d_conv1[0, O, a, b] * X[0, 0, a, b] for a in range(28) for b in range(28))  # u = v = 2: Xpad[a+2, b+2]
    terms = int(np.count_nonzero(d_conv1[0, O] * X[0, 0]))
    lines += ["", f"dW1[{O}, 0, 2, 2] = sum_rs dL/dconv1[0, {O}, r, s] * Xpad[0, 0, r+2, s+2]"
              f" ({terms} non-zero terms of 784)",
              f"  by hand {centre:+.8e}, conv2d_backward {grads.W1[O, 0, 2, 2]:+.8e}"]
    return lines


def rewritten(text, lines):
    body = "\n".join(["```", *lines, "```"])
    return re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda m: f"{BEGIN}\n{body}\n{END}", text, flags=re.S)


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--check"]
    output = report(args[0] if args else None)
    text = PAGE.read_text()
    if "--check" in sys.argv:
        sys.exit(0 if rewritten(text, output) == text else "docs/walkthrough.md's CNN section is stale: "
                 "run python docs/cnn_walkthrough.py")
    print("\n".join(output))
    PAGE.write_text(rewritten(text, output))
