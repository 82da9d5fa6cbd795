"""Zigzag labels and the chronological split."""

from __future__ import annotations

import pytest

np = pytest.importorskip("numpy")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from ktrdr.errors import ValidationError  # noqa: E402
from ktrdr.strategy.schema import DataSplit  # noqa: E402
from ktrdr.training.labels import UNLABELLED, zigzag_labels  # noqa: E402
from ktrdr.training.split import chronological_split  # noqa: E402

BUY, HOLD, SELL = 0, 1, 2


def test_first_touch_decides_the_label() -> None:
    close = np.array([100.0, 101.0, 103.0, 99.0, 96.0, 96.5, 96.0, 96.2])
    labels = zigzag_labels(close, threshold=0.02, lookahead=3)
    # bar 0: 103 (+3%) comes before 96; bar 1: 103 is +1.98% (no), 99 no, 96 -4.95% -> SELL
    assert labels[0] == BUY
    assert labels[1] == SELL
    assert labels[2] == SELL  # 96 <= 103 * 0.98
    assert labels[3] == SELL  # 96 <= 99 * 0.98 = 97.02
    assert labels[4] == HOLD  # 96.5, 96, 96.2 stay within 2% of 96
    # the last bars have incomplete windows and never swung: unknown, not HOLD
    assert list(labels[5:]) == [UNLABELLED] * 3


def test_a_swing_inside_an_incomplete_window_is_still_known() -> None:
    labels = zigzag_labels(np.array([100.0, 100.0, 110.0]), threshold=0.05, lookahead=10)
    assert list(labels) == [BUY, BUY, UNLABELLED]


def test_parameters_are_checked() -> None:
    with pytest.raises(ValidationError):
        zigzag_labels(np.ones(5), threshold=0.0, lookahead=3)
    with pytest.raises(ValidationError):
        zigzag_labels(np.ones(5), threshold=0.1, lookahead=0)


prices = st.lists(st.floats(min_value=1.0, max_value=2.0), min_size=2, max_size=80)


@settings(max_examples=50, deadline=None)
@given(prices, st.integers(min_value=1, max_value=10), st.data())
def test_a_label_reads_only_its_lookahead_window(values: list[float], lookahead: int, data) -> None:
    close = np.array(values)
    labels = zigzag_labels(close, threshold=0.05, lookahead=lookahead)
    t = data.draw(st.integers(min_value=0, max_value=len(values) - 1))
    changed = close.copy()
    changed[t + lookahead + 1 :] *= 3.0  # bars beyond the window
    changed[:t] *= 0.5  # and bars before it
    assert zigzag_labels(changed, threshold=0.05, lookahead=lookahead)[t] == labels[t]


@settings(max_examples=50, deadline=None)
@given(prices, st.integers(min_value=1, max_value=10))
def test_labels_match_a_plain_reference(values: list[float], lookahead: int) -> None:
    close = np.array(values)
    expected = []
    for t in range(len(close)):
        label = HOLD if t + lookahead < len(close) else UNLABELLED
        for j in range(t + 1, min(len(close), t + lookahead + 1)):
            if close[j] >= close[t] * 1.05:
                label = BUY
                break
            if close[j] <= close[t] * 0.95:
                label = SELL
                break
        expected.append(label)
    assert list(zigzag_labels(close, threshold=0.05, lookahead=lookahead)) == expected


def test_split_is_chronological_with_a_purge_gap() -> None:
    parts = chronological_split(1000, DataSplit(train=0.7, validation=0.15, test=0.15), gap=10)
    assert parts.train == range(0, 690)
    assert parts.validation == range(700, 840)
    assert parts.test == range(850, 1000)
    assert parts.to_dict() == {"train": 690, "validation": 140, "test": 150}


def test_split_without_test_part() -> None:
    parts = chronological_split(100, DataSplit(train=0.8, validation=0.2, test=0.0), gap=5)
    assert parts.train == range(0, 75) and parts.validation == range(80, 100) and len(parts.test) == 0


def test_split_refuses_too_few_rows() -> None:
    with pytest.raises(ValidationError, match="not enough rows"):
        chronological_split(20, DataSplit(), gap=20)
