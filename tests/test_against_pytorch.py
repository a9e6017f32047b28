"""Loss and all six gradients of every backend against PyTorch's autograd.

As micrograd checks its engine against PyTorch: the same parameters and batch, in
float64, through ``torch.nn.functional`` (linear, ReLU, cross-entropy with its own
log-softmax) and ``backward()``. PyTorch is independent of every digitbench backend,
so the NumPy backend is checked too, not only used as the reference. Skipped when
torch is not installed (it is the optional ``compare`` extra).
"""

import numpy as np
import pytest

from digitbench import get_backend, init_params
from digitbench.backends import BACKENDS
from digitbench.params import Params

torch = pytest.importorskip("torch", reason="needs the compare extra: pip install -e '.[compare]'")


def _case(seed, n):
    rng = np.random.default_rng(seed)
    params = init_params(seed, np.float64)
    # random biases, so that their use is checked too (they start at zero)
    params = Params(*(a if a.ndim == 2 else rng.normal(0, 0.1, a.shape) for a in params))
    X = rng.uniform(0, 1, size=(n, 784)) * (rng.random((n, 784)) < 0.3)  # sparse, like pixels
    y = rng.integers(0, 10, size=n)
    return params, X, y


def _autograd(params, X, y):
    W1, b1, W2, b2, W3, b3 = (torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in params)
    x = torch.tensor(X, dtype=torch.float64)
    a1 = torch.relu(x @ W1 + b1)
    a2 = torch.relu(a1 @ W2 + b2)
    loss = torch.nn.functional.cross_entropy(a2 @ W3 + b3, torch.tensor(y, dtype=torch.int64))
    loss.backward()
    return loss.item(), [t.grad.numpy() for t in (W1, b1, W2, b2, W3, b3)]


@pytest.mark.parametrize("name", list(BACKENDS))
@pytest.mark.parametrize("seed", [0, 1])
def test_loss_and_gradients_match_autograd(name, seed):
    params, X, y = _case(seed, n=3 if name == "naive" else 32)
    loss, grads = get_backend(name).loss_and_grads(params, X, y)
    reference_loss, reference_grads = _autograd(params, X, y)
    assert loss == pytest.approx(reference_loss, rel=1e-12)
    for field, g, r in zip(Params._fields, grads, reference_grads):
        assert g.shape == r.shape, field
        np.testing.assert_allclose(g, r, rtol=1e-9, atol=1e-13, err_msg=f"{name}: d{field}")
    assert np.count_nonzero(reference_grads[0]) > 0  # the check is not vacuous: W1 has gradients


def test_a_wrong_gradient_would_be_caught():
    """The tolerance is tight enough that a gradient off by 0.1% fails."""
    params, X, y = _case(0, n=32)
    _, grads = get_backend("numpy").loss_and_grads(params, X, y)
    _, reference = _autograd(params, X, y)
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(grads[2] * 1.001, reference[2], rtol=1e-9, atol=1e-13)
