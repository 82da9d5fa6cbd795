import pytest

np = pytest.importorskip("numpy")
pd = pytest.importorskip("pandas")

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from ktrdr.errors import ValidationError  # noqa: E402
from ktrdr.fuzzy import fuzzify, gaussian, membership, trapezoidal, triangular  # noqa: E402
from ktrdr.strategy.schema import FuzzySetGroup  # noqa: E402


def test_triangular_values():
    x = np.array([-1.0, 0.0, 10.0, 20.0, 30.0, 40.0, 41.0, np.nan])
    out = triangular(x, 0, 20, 40)
    np.testing.assert_allclose(out[:7], [0, 0, 0.5, 1, 0.5, 0, 0])
    assert np.isnan(out[7])


def test_trapezoidal_values():
    out = trapezoidal(np.array([0.0, 15.0, 25.0, 50.0, 75.0, 85.0, 100.0]), 10, 20, 70, 80)
    np.testing.assert_allclose(out, [0, 0.5, 1, 1, 0.5, 0, 0])


def test_degenerate_shoulders_are_steps_not_nans():
    x = np.array([-5.0, 0.0, 10.0, 30.0, 31.0])
    np.testing.assert_allclose(triangular(x, 0, 0, 30), [0, 1, 2 / 3, 0, 0])
    np.testing.assert_allclose(triangular(x, 0, 30, 30), [0, 0, 1 / 3, 1, 0])
    np.testing.assert_allclose(trapezoidal(x, -np.inf, -np.inf, 0, 30), [1, 1, 2 / 3, 0, 0])
    np.testing.assert_allclose(trapezoidal(x, 0, 30, np.inf, np.inf), [0, 0, 1 / 3, 1, 1])
    np.testing.assert_allclose(triangular(x, 10, 10, 10), [0, 0, 1, 0, 0])
    assert not np.isnan(triangular(x, 0, 0, 0)).any()


def test_gaussian_values_and_sigma_check():
    np.testing.assert_allclose(gaussian(np.array([0.0, 1.0, -2.0]), 0.0, 1.0), np.exp([0, -0.5, -2.0]))
    with pytest.raises(ValueError):
        gaussian(np.array([0.0]), 0.0, 0.0)
    with pytest.raises(ValueError):
        membership("bell", np.array([0.0]), [1.0])


@given(
    params=st.lists(st.floats(-1e3, 1e3), min_size=4, max_size=4).map(sorted),
    xs=st.lists(st.floats(-2e3, 2e3), min_size=1, max_size=20),
)
def test_memberships_stay_in_unit_interval(params, xs):
    x = np.array(xs)
    for out in (
        trapezoidal(x, *params),
        triangular(x, *params[:3]),
        gaussian(x, params[0], 1.0 + abs(params[1])),
    ):
        assert ((out >= 0) & (out <= 1)).all()


def test_fuzzify_names_columns_and_reads_output_columns():
    index = pd.date_range("2024-01-01", periods=3, freq="h", tz="UTC")
    indicators = pd.DataFrame({"rsi_14": [10.0, 50.0, np.nan], "m.signal": [-1.0, 0.0, 1.0]}, index=index)
    groups = {
        "rsi": FuzzySetGroup.model_validate(
            {"indicator": "rsi_14", "low": [0, 0, 30], "high": [50, 100, 100]}
        ),
        "sig": FuzzySetGroup.model_validate(
            {"indicator": "m.signal", "pos": {"type": "gaussian", "parameters": [1, 1]}}
        ),
    }
    out = fuzzify(indicators, groups)
    assert list(out.columns) == ["rsi_low", "rsi_high", "sig_pos"]
    np.testing.assert_allclose(out["rsi_low"].to_numpy()[:2], [2 / 3, 0])
    assert np.isnan(out["rsi_low"].iloc[2])
    np.testing.assert_allclose(out["sig_pos"], np.exp([-2.0, -0.5, 0.0]))
    with pytest.raises(ValidationError):
        fuzzify(indicators.drop(columns="rsi_14"), groups)
