"""``digitbench experiment NAME``: classic training failures, as experiments to rerun.

They are the failures that the write-up this project started from (its "seed") ran
into on its way to 97.2%.

Each experiment prints a short table and writes ``experiment-NAME.png`` into
``--out-dir`` (the command is :mod:`digitbench.commands.experiment`). They train on
the first ``--subset`` training images for ``--epochs`` epochs (small defaults, so
that each takes well under a minute) and report test accuracy on all 10,000 test
images; the two CNN experiments train on all 60,000 by default, which takes minutes.

=================  ====================================================================
sigmoid            sigmoid vs ReLU hidden units, plain SGD; per-layer gradient norms
softmax-overflow   softmax without max-subtraction: inf and NaN, float32 and float64
learning-rate      a sweep of learning rates: where it stops converging, where it NaNs
initialization     zero, constant, too-small, too-large and He initial weights
conv-no-flip       a convolution backward whose dX forgets to flip the kernel (no training)
cnn-filters        the trained CNN's 16 first-layer filters and their maps of one digit
shifted-digits     test digits moved 1-4 pixels: the MLP's accuracy against the CNN's
=================  ====================================================================
"""

from . import cnn_filters, conv_no_flip, initialization, learning_rate, shifted_digits, sigmoid, softmax_overflow

#: name -> (module, default --subset, default --epochs, one-line description); each
#: module has ``compute(args, data, backend)`` returning a Results (see
#: :mod:`digitbench.experiments.common`); its figure is drawn by :mod:`digitbench.plots`.
EXPERIMENTS = {
    "sigmoid": (sigmoid, 60000, 5, "sigmoid vs ReLU hidden units: slower learning and vanishing gradients"),
    "softmax-overflow": (softmax_overflow, None, None, "softmax without max-subtraction overflows to inf and NaN"),
    "learning-rate": (learning_rate, 10000, 3, "a learning-rate sweep: where training stops converging or NaNs"),
    "initialization": (initialization, 10000, 3, "zero, constant, too-small, too-large and He initialisation"),
    "conv-no-flip": (conv_no_flip, None, None, "a convolution backward that forgets to flip the kernel, caught by "
                     "finite differences"),
    "cnn-filters": (cnn_filters, 60000, 4, "the trained CNN's first-layer filters and feature maps of one digit"),
    "shifted-digits": (shifted_digits, 60000, 4, "test digits moved 1 to 4 pixels: the MLP against the CNN "
                       "(--epochs: the CNN's)"),
}
