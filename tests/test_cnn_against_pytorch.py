"""The CNN on every backend against PyTorch's autograd, in float64.

The same parameters and batch go through ``torch.nn.functional`` (conv2d with
padding 2, ReLU, max_pool2d, flatten, linear, cross-entropy with its own log-softmax)
and ``backward()``. The convolution weights are passed in PyTorch's own layout
(out, in, kh, kw), unchanged; the dense weights, row-major (in, out) here, are passed
transposed, as ``torch.nn.Linear`` stores them (out, in). Each layer's output, the loss
and all eight gradients must agree. PyTorch is independent of every digitbench
backend, so the NumPy backend is checked too. Skipped when torch is not installed (it
is the optional ``compare`` extra).
"""

import numpy as np
import pytest

from digitbench.kernels.layer_pass import forward_cache, loss_and_grads
from digitbench.networks import CNN
from test_cnn_network import random_case

torch = pytest.importorskip("torch", reason="PyTorch is not installed; needs the compare extra: pip install -e '.[compare]'")
F = torch.nn.functional


def autograd(params, X, y):
    """Each layer's output, the loss and the gradients, from PyTorch."""
    W1, b1, W2, b2, W3, b3, W4, b4 = (torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in params)
    x = torch.tensor(X, dtype=torch.float64).reshape(-1, 1, 28, 28)
    outputs = [F.conv2d(x, W1, b1, padding=2)]
    outputs += [F.relu(outputs[-1])]
    outputs += [F.max_pool2d(outputs[-1], 2)]
    outputs += [F.conv2d(outputs[-1], W2, b2, padding=2)]
    outputs += [F.relu(outputs[-1])]
    outputs += [F.max_pool2d(outputs[-1], 2)]
    outputs += [torch.nn.Flatten()(outputs[-1])]
    outputs += [F.linear(outputs[-1], W3.T, b3)]  # torch's Linear weight is (out, in): W3.T
    outputs += [F.relu(outputs[-1])]
    outputs += [F.linear(outputs[-1], W4.T, b4)]
    loss = F.cross_entropy(outputs[-1], torch.tensor(y, dtype=torch.int64))
    loss.backward()
    return ([o.detach().numpy() for o in outputs], loss.item(),
            [t.grad.numpy() for t in (W1, b1, W2, b2, W3, b3, W4, b4)])


@pytest.mark.parametrize("name, n", [("numpy", 8), ("numba", 8), ("naive", 1)])
def test_layers_loss_and_gradients_match_autograd(name, n):
    params, X, y = random_case(CNN, n, seed=11)
    outputs, reference_loss, reference_grads = autograd(params, X, y)
    for layer, got, expected in zip(CNN.layers, forward_cache(CNN, params, X, name)[1:], outputs):
        assert got.shape == expected.shape, f"{name}: {layer.name}"
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12, err_msg=f"{name}: {layer.name}")
    loss, grads = loss_and_grads(CNN, params, X, y, name)
    assert loss == pytest.approx(reference_loss, rel=1e-12)
    for field, g, r in zip(CNN.params_type._fields, grads, reference_grads):
        assert g.shape == r.shape, field
        np.testing.assert_allclose(g, r, rtol=1e-9, atol=1e-13, err_msg=f"{name}: d{field}")
    assert all(np.count_nonzero(r) for r in reference_grads)  # not vacuous: every tensor has gradients
