"""The peak-keeping downsampler behind every curve a stored result charts (ktrdr.downsampling)."""

from __future__ import annotations

import math

import pytest

np = pytest.importorskip("numpy")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra.numpy import arrays  # noqa: E402

from ktrdr.downsampling import compact, extreme_indices  # noqa: E402

values = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False)


@st.composite
def series_sets(draw: st.DrawFn) -> tuple[list[np.ndarray], int]:
    n = draw(st.integers(1, 3000))
    k = draw(st.integers(1, 3))
    series = [draw(arrays(np.float64, n, elements=values)) for _ in range(k)]
    max_points = draw(st.integers(2 + 2 * k, 600))
    return series, max_points


@settings(max_examples=150, deadline=None)
@given(series_sets())
def test_kept_points_are_few_ordered_and_hold_every_extreme(case) -> None:
    series, max_points = case
    n = series[0].size
    kept = extreme_indices(series, max_points)
    assert kept.dtype == np.int64
    assert len(kept) <= max_points
    assert np.all(np.diff(kept) > 0)
    assert kept[0] == 0 and kept[-1] == n - 1
    if n <= max_points:
        assert kept.tolist() == list(range(n))
    for values_ in series:
        assert values_[kept].max() == values_.max()
        assert values_[kept].min() == values_.min()


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(2_000, 50_000),
    spikes=st.lists(st.floats(0.0, 1.0, exclude_max=True), min_size=1, max_size=5),
    seed=st.integers(0, 2**32 - 1),
)
def test_a_spike_or_a_dip_anywhere_survives(n: int, spikes: list[float], seed: int) -> None:
    """A random walk with a few spikes and dips far outside it, anywhere: all of them are kept
    (they are far apart compared with a bucket only when n is large, so place at most five)."""
    walk = np.cumsum(np.random.default_rng(seed).normal(0, 1, n))
    positions = sorted({int(s * n) for s in spikes})
    for number, position in enumerate(positions):
        walk[position] = 1e6 if number % 2 == 0 else -1e6
    kept = set(extreme_indices([walk], 200).tolist())
    # Two spikes in one bucket: only one of the same sign is that bucket's extreme; a spike and a
    # dip are both kept. 200 points over n bars makes buckets of n/99 bars.
    bucket = math.ceil(n / 99)
    for number, position in enumerate(positions):
        same_sign_nearby = [
            p
            for k, p in enumerate(positions)
            if k % 2 == number % 2 and p != position and abs(p - position) < bucket
        ]
        assert position in kept or same_sign_nearby


def test_kept_positions_are_honoured_and_nan_never_wins() -> None:
    curve = np.linspace(0.0, 1.0, 5000)
    curve[2500] = np.nan
    kept = extreme_indices([curve], 50, keep=[1234])
    assert 1234 in kept.tolist() and 2500 not in kept.tolist()
    assert len(kept) <= 50


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one series"):
        extreme_indices([], 10)
    with pytest.raises(ValueError, match="as long as each other"):
        extreme_indices([np.zeros(5), np.zeros(6)], 10)
    with pytest.raises(ValueError, match="no room"):
        extreme_indices([np.zeros(100), np.zeros(100)], 5)


def test_compact_rounds_to_significant_digits_and_keeps_json_safe() -> None:
    assert compact([123456.789123, 0.000123456789123, -1.5, float("nan"), float("inf")]) == [
        123456.79,
        0.00012345679,
        -1.5,
        None,
        None,
    ]
