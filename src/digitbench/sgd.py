"""SGD steps in chunks: the one runner that the trainer and ``digitbench bench`` share.

A backend's :meth:`~digitbench.kernels.base.Backend.train_batches` runs any number of
steps in one call (compiled backends keep the whole loop in machine code). Callers cut
an epoch into chunks: at the points where they must look at the state between steps
(the trainer's Ctrl-C checkpoints and target checks), and at most
``backend.steps_per_call`` steps long (the naive backend wants one step a call). A run
calls them through its :class:`digitbench.threads.RunThreads`, which holds the run's
threads and buffers.
"""

import numpy as np


def chunk_bounds(steps, cuts, steps_per_call=None):
    """(first, last) step pairs covering ``range(steps)``, split at each of ``cuts``.

    Parameters
    ----------
    steps : int, the steps to cover
    cuts : iterable of int, steps at which a chunk must end (those outside 1..steps
        are ignored)
    steps_per_call : int or None, the longest chunk (None: no limit)

    >>> chunk_bounds(10, [3, 5, 8], None)
    [(0, 3), (3, 5), (5, 8), (8, 10)]
    >>> chunk_bounds(5, [], 2)
    [(0, 2), (2, 4), (4, 5)]
    """
    longest = steps_per_call or steps
    pairs, first = [], 0
    for cut in sorted({c for c in cuts if 0 < c < steps} | {steps}):
        while first < cut:
            last = min(cut, first + longest)
            pairs.append((first, last))
            first = last
    return pairs


def run_chunk(run, params, velocity, images, labels, order, first, last, batch_size, lrs, momentum, mean=None):
    """Steps ``first .. last - 1`` over the rows ``order`` (one epoch's), in place, by
    ``run.train_batches`` (a :class:`~digitbench.threads.RunThreads`, or a backend).

    Step k uses rows ``order[k * batch_size:(k + 1) * batch_size]`` of the uint8
    ``images`` (N, 784) and int64 ``labels`` (N,), at learning rate ``lrs[k - first]``;
    as on centred inputs ``x - mean`` if ``mean`` (784,) is given (the recipe's ``center``).
    Overflow is not warned about: the caller checks the losses.

    Returns
    -------
    ndarray of shape (last - first,), float64: the loss of each step
    """
    centring = {} if mean is None else {"mean": mean}  # a backend written before centring still runs the rest
    with np.errstate(over="ignore", invalid="ignore"):
        return run.train_batches(params, velocity, images, labels, order[first * batch_size:last * batch_size],
                                     batch_size, lrs, momentum, **centring)
