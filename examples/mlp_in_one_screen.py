"""The whole network in one screen: a 784-128-64-10 MLP trained with NumPy alone.

    python examples/mlp_in_one_screen.py [N_TRAIN] [EPOCHS]     # default: all 60,000, 5 epochs

The same network as digitbench's backends (kernels/numpy_backend.py is this, organised),
without momentum or a learning-rate schedule; digitbench is used only to load MNIST.
"""

import sys

import numpy as np

import digitbench

settings = [int(a) for a in sys.argv[1:3]]
n_train, epochs = settings + [60000, 5][len(settings):]
Xtr, ytr, Xte, yte = digitbench.load_mnist()
Xtr, ytr, Xte = Xtr[:n_train] / np.float32(255), ytr[:n_train], Xte / np.float32(255)

rng = np.random.default_rng(0)
sizes = [784, 128, 64, 10]  # He initialisation: weights ~ N(0, 2 / fan_in), biases 0
W = [rng.normal(0, np.sqrt(2 / m), (m, n)).astype(np.float32) for m, n in zip(sizes, sizes[1:])]
b = [np.zeros(n, np.float32) for n in sizes[1:]]


def forward(X):
    """Activations of every layer: X, ReLU(X W1 + b1), ReLU(. W2 + b2), softmax(. W3 + b3)."""
    acts = [X]
    for k in range(3):
        z = acts[-1] @ W[k] + b[k]
        acts.append(np.maximum(z, 0) if k < 2 else np.exp(z - z.max(1, keepdims=True)))
    acts[-1] /= acts[-1].sum(1, keepdims=True)
    return acts


lr, batch = 0.05, 64
for epoch in range(1, epochs + 1):
    order = rng.permutation(len(Xtr))
    for start in range(0, len(order), batch):
        rows = order[start:start + batch]
        acts = forward(Xtr[rows])
        dz = acts[-1].copy()
        dz[np.arange(len(rows)), ytr[rows]] -= 1  # softmax + cross-entropy: dL/dz3 = P - Y
        dz /= len(rows)  # the loss is the batch's mean
        for k in (2, 1, 0):
            dW, db = acts[k].T @ dz, dz.sum(0)  # z = a W + b: dW = a^T dz, db = sum of dz
            if k:
                dz = (dz @ W[k].T) * (acts[k] > 0)  # back through W, then ReLU's derivative: 1 where a > 0
            W[k] -= lr * dW
            b[k] -= lr * db
    accuracy = np.mean(forward(Xte)[-1].argmax(1) == yte)
    print(f"epoch {epoch}: test accuracy {accuracy:.2%}")
