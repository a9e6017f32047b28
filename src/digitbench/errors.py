"""The errors a user can cause, and nothing else.

Every failure that bad input can provoke (a broken data file, a failed download, a
hostile model file, a bad option, a diverging run) raises a subclass of
:class:`DigitbenchError`. The command line catches exactly this base class and prints
its message as one line on standard error, so a user never sees a traceback for a
mistake of theirs, while a bug in digitbench itself still shows one.
"""

import signal


def one_line(text):
    """``text`` on one line: line breaks and other control characters (from a file name,
    say) shown as backslash escapes, as Python writes them (``\\n``, ``\\x1b``)."""
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)


class DigitbenchError(Exception):
    """Base class: the message is one complete line meant for the user."""


class DataError(DigitbenchError):
    """A data file is missing, malformed, or fails its checksum."""


class ForeignFileError(DataError):
    """A valid published file sits under another file's name (e.g. Fashion-MNIST's in an
    MNIST folder): it is not corrupt, and nothing may delete it."""


class DownloadError(DataError):
    """No mirror delivered a file whose payload matched its checksum."""

    #: Its message lists each mirror tried on a line of its own.
    multiline = True


class ModelFileError(DigitbenchError):
    """A saved model file cannot be trusted or is not a digitbench model."""


class TrainingDiverged(DigitbenchError):
    """The loss became NaN or infinite during training.

    Besides the message, it carries where: ``epoch`` (from 1), ``step`` (from 1, within
    the epoch), ``steps_per_epoch``, ``lr`` (of that step) and ``loss`` (the bad value).
    """

    def __init__(self, message, *, epoch=None, step=None, steps_per_epoch=None, lr=None, loss=None):
        super().__init__(message)
        self.epoch, self.step, self.steps_per_epoch, self.lr, self.loss = epoch, step, steps_per_epoch, lr, loss


class ImageError(DigitbenchError):
    """An image given to ``predict`` cannot be read or is out of bounds."""


class UsageError(DigitbenchError):
    """A command-line option has a value that makes no sense."""


class OutputError(DigitbenchError):
    """An output file (model, checkpoint, figure, JSON, download) cannot be written there."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (or SIGHUP, SIGXCPU: :data:`digitbench.files.TERMINATING`), raised by the
    command line's handlers: during training it stops the run as Ctrl-C does (a
    checkpoint is saved), during a file write the temporary file is removed (see
    :mod:`digitbench.files`).

    A ``KeyboardInterrupt``, so no ``except Exception`` swallows it on its way to the
    command line, which reports it in one line with exit status ``status`` (128 + the
    signal's number: 143 for SIGTERM).
    """

    def __init__(self, signum=signal.SIGTERM):
        super().__init__()
        self.signum = int(signum)

    @property
    def words(self):
        """How the command line says it: "terminated (SIGTERM)"."""
        return f"terminated ({signal.Signals(self.signum).name})"

    @property
    def status(self):
        return 128 + self.signum
