"""Figures with their uncertainty: medians and spreads, bootstrap intervals, verdicts.

One place for the statistics every report of digitbench uses:

- a time is reported as the **median** of its repetitions with their **spread**
  (minimum to maximum), as asv and pytest-benchmark report theirs;
- a **ratio** of two contenders (``a / b``) comes from repetitions taken in pairs,
  interleaved (A B A B ...), so that a slow stretch of the machine hits both members of a
  pair. Its 95% confidence interval is a percentile bootstrap over the pairs: draw
  ``n`` pair indices with replacement, take ``median(a[i]) / median(b[i])``, and keep the
  2.5th and 97.5th percentiles of :data:`RESAMPLES` draws. The generator is seeded
  (:data:`SEED`), so the same repetitions always give the same interval;
- a **mean** over seeds (test accuracy) has its 95% interval by the same bootstrap;
- a **verdict** on a target is three-valued: "met" only when the whole interval is on
  the right side of the threshold, "not met" when the whole interval is on the wrong
  side, "inconclusive" when the interval straddles it;
- a run is flagged **disturbed** when the machine was not idle: other processes were
  running when it started, or the load average at its end exceeds its own threads, or a
  contender's thread chooser saw other processes, or a contender's repetitions vary too
  much to be one machine's steady speed.
"""

import math

import numpy as np

#: Bootstrap draws of every interval; the seed of their generator (reproducible reports).
RESAMPLES = 2000
SEED = 20
CONFIDENCE = 0.95
#: A contender whose slowest repetition is this much slower than its fastest ran on a
#: machine that changed speed under it.
MAX_SPREAD = 1.3
#: Load (runnable processes, 1-minute average) above the run's own threads that counts as
#: another program running.
LOAD_MARGIN = 0.5

MET, NOT_MET, INCONCLUSIVE = "met", "not met", "inconclusive"


def median_spread(values):
    """Median and (min, max) of ``values`` (a sequence of numbers, at least one)."""
    v = np.asarray(values, dtype=np.float64)
    return float(np.median(v)), (float(v.min()), float(v.max()))


def _percentiles(draws, confidence):
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(draws, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_ratio(a, b, confidence=CONFIDENCE, resamples=RESAMPLES, seed=SEED):
    """``median(a) / median(b)`` and its bootstrap interval over the paired repetitions.

    Parameters
    ----------
    a, b : sequence of float of the same length n, a[i] and b[i] measured side by side

    Returns
    -------
    (ratio, (low, high)) : float, tuple of float
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise ValueError(f"paired repetitions needed, got {a.shape} and {b.shape}")
    ratio = float(np.median(a) / np.median(b))
    idx = np.random.default_rng(seed).integers(0, len(a), size=(resamples, len(a)))
    draws = np.median(a[idx], axis=1) / np.median(b[idx], axis=1)  # same pairs in both
    return ratio, _percentiles(draws, confidence)


def bootstrap_median(values, confidence=CONFIDENCE, resamples=RESAMPLES, seed=SEED):
    """The median of ``values`` and its bootstrap interval: (median, (low, high))."""
    return bootstrap_ratio(values, np.ones(len(values)), confidence, resamples, seed)


def bootstrap_mean(values, confidence=CONFIDENCE, resamples=RESAMPLES, seed=SEED):
    """The mean of ``values`` (n,) and its bootstrap interval: (mean, (low, high))."""
    v = np.asarray(values, dtype=np.float64)
    idx = np.random.default_rng(seed).integers(0, len(v), size=(resamples, len(v)))
    return float(v.mean()), _percentiles(v[idx].mean(axis=1), confidence)


def verdict(interval, op, threshold):
    """"met", "not met" or "inconclusive" for ``value op threshold`` given its interval.

    >>> verdict((5.6, 6.1), ">=", 5.5), verdict((5.0, 5.4), ">=", 5.5), verdict((5.4, 5.7), ">=", 5.5)
    ('met', 'not met', 'inconclusive')
    """
    low, high = interval
    if op == ">=":
        return MET if low >= threshold else NOT_MET if high < threshold else INCONCLUSIVE
    if op == "<=":
        return MET if high <= threshold else NOT_MET if low > threshold else INCONCLUSIVE
    raise ValueError(f"unknown comparison {op!r}")


def disturbances(others_before=None, load_after=None, threads=1, thread_reasons=(), spreads=()):
    """Why a run's figures are not an idle machine's: a list of plain sentences (empty: idle).

    Parameters
    ----------
    others_before : int or None, other processes running just before measuring (the
        kernel's count of runnable tasks, less the one reading it)
    load_after : float or None, the 1-minute load average just after the last timed
        repetition (the run's ``threads`` have been running for a while)
    thread_reasons : sequence of (name, reason), the thread choosers' explanations
    spreads : sequence of (name, (fastest, slowest)), each contender's repetition times
    """
    found = []
    if others_before:
        found.append(f"{others_before} other running process{'es' if others_before > 1 else ''} at the start")
    if load_after is not None and load_after > threads + LOAD_MARGIN:
        found.append(f"load average {load_after:.2f} at the end, above this run's {threads} "
                     f"thread{'s' if threads > 1 else ''}")
    found += [f"{name}'s thread choice: {reason}" for name, reason in thread_reasons
              if "busy" in reason or "other running" in reason]
    found += [f"{name}'s repetitions varied {high / low:.2f}x (slowest over fastest)" for name, (low, high) in spreads
              if low > 0 and high / low > MAX_SPREAD]
    return found


def fraction_at_least(values, threshold):
    """The share of ``values`` at or above ``threshold`` (0 for none)."""
    values = list(values)
    return sum(v >= threshold for v in values) / len(values) if values else math.nan
