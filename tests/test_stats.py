"""The statistics every report uses: medians, bootstrap intervals, three-valued verdicts."""

import pytest

from digitbench import stats


def test_median_and_spread():
    assert stats.median_spread([3.0, 1.0, 2.0, 10.0, 2.5]) == (2.5, (1.0, 10.0))


def test_a_ratio_interval_is_reproducible_and_holds_the_ratio():
    a, b = [0.50, 0.52, 0.49, 0.55, 0.51], [0.10, 0.11, 0.10, 0.12, 0.10]
    ratio, interval = stats.bootstrap_ratio(a, b)
    assert ratio == pytest.approx(0.51 / 0.10)
    assert interval[0] <= ratio <= interval[1]
    assert stats.bootstrap_ratio(a, b) == (ratio, interval)  # fixed seed: the same report twice


def test_pairs_share_a_slow_stretch():
    # round 3 was slow for both: pairing keeps the ratio, so the interval stays narrow
    a, b = [1.0, 1.0, 1.0, 2.0, 1.0], [0.5, 0.5, 0.5, 1.0, 0.5]
    assert stats.bootstrap_ratio(a, b) == (2.0, (2.0, 2.0))
    with pytest.raises(ValueError, match="paired"):
        stats.bootstrap_ratio([1.0, 2.0], [1.0])


def test_a_mean_interval_narrows_with_more_seeds():
    few = stats.bootstrap_mean([0.968, 0.972, 0.975, 0.970])
    many = stats.bootstrap_mean([0.968, 0.972, 0.975, 0.970] * 10)
    assert few[0] == pytest.approx(many[0])
    assert many[1][1] - many[1][0] < few[1][1] - few[1][0]


@pytest.mark.parametrize("interval, op, status", [
    ((5.6, 6.0), ">=", "met"), ((5.0, 5.4), ">=", "not met"), ((5.4, 5.6), ">=", "inconclusive"),
    ((0.08, 0.09), "<=", "met"), ((0.11, 0.12), "<=", "not met"), ((0.09, 0.11), "<=", "inconclusive"),
    ((5.5, 5.5), ">=", "met"),
])
def test_verdicts_are_three_valued(interval, op, status):
    assert stats.verdict(interval, op, 5.5 if op == ">=" else 0.10) == status


def test_a_disturbed_machine_is_named_with_its_reasons():
    assert stats.disturbances(0, 2.2, threads=2) == []
    found = stats.disturbances(1, 3.1, threads=2,
                               thread_reasons=[("numba", "1 thread kept (95 us a step); the machine seems busy"),
                                               ("numpy", "2 threads measured fastest")],
                               spreads=[("pytorch", (1.3, 1.9)), ("numba", (0.09, 0.095))])
    assert len(found) == 4
    assert found[0] == "1 other running process at the start" and "at the end" in found[1]
    assert found[2].startswith("numba's thread choice") and found[3].startswith("pytorch's repetitions")


def test_fraction_at_least():
    assert stats.fraction_at_least([0.969, 0.97, 0.975, 0.98], 0.97) == 0.75
