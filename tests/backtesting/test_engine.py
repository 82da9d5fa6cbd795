"""run_backtest end to end on the sample data, and no look-ahead through the whole pipeline."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
np = pytest.importorskip("numpy")
pd = pytest.importorskip("pandas")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from ktrdr.backtesting import engine  # noqa: E402
from ktrdr.backtesting.curves import CURVE_POINTS  # noqa: E402
from ktrdr.backtesting.decisions import Action, Orders  # noqa: E402
from ktrdr.backtesting.engine import BacktestConfig, BacktestResult, backtest_frame, run_backtest  # noqa: E402
from ktrdr.backtesting.metrics import performance_metrics, trade_statistics  # noqa: E402
from ktrdr.backtesting.positions import Costs, simulate  # noqa: E402
from ktrdr.data.sample import generate_ohlcv, install_sample_data  # noqa: E402
from ktrdr.data.store import load_ohlcv  # noqa: E402
from ktrdr.errors import (  # noqa: E402
    InvalidDateRangeError,
    InvalidNameError,
    ModelNotFoundError,
    ValidationError,
)
from ktrdr.features import Normalizer, build_features, feature_names  # noqa: E402
from ktrdr.jobs import CancelToken, OperationCancelled, Progress  # noqa: E402
from ktrdr.neural.mlp import build_mlp  # noqa: E402
from ktrdr.strategy.loader import get_strategy  # noqa: E402
from ktrdr.training.model_storage import load_model, save_model  # noqa: E402

STRATEGY = get_strategy("rsi_macd_trend")[0].model_copy(
    update={"decisions": get_strategy("rsi_macd_trend")[0].decisions.model_copy(update={"allow_short": True})}
)


def _store_model(models_dir: Path, ohlcv, seed: int = 5) -> Path:
    """An untrained but fixed network with real normalisation: enough to exercise the engine."""
    torch.manual_seed(seed)
    network = build_mlp(len(feature_names(STRATEGY)), STRATEGY.model.architecture)
    with torch.no_grad():  # sharpen the outputs so that some bars pass the confidence threshold
        for p in network.parameters():
            p.mul_(4.0)
    normalizer = Normalizer.fit(build_features(STRATEGY, ohlcv).dropna())
    return save_model(
        models_dir,
        STRATEGY,
        network,
        feature_names=feature_names(STRATEGY),
        normalization=normalizer.to_dict(),
        metrics={},
        symbol="EURUSD",
        timeframe="1h",
    )


@pytest.fixture(scope="module")
def dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    data = tmp_path_factory.mktemp("data")
    install_sample_data(data)
    models = tmp_path_factory.mktemp("models")
    path = _store_model(models, load_ohlcv(data, "EURUSD", "1h"))
    return data, models, path


def test_end_to_end_result(dirs) -> None:
    data, models, path = dirs
    seen: list[Progress] = []
    config = BacktestConfig(
        strategy=STRATEGY, symbol="EURUSD", timeframe="1h", start_date=dt.date(2020, 3, 1)
    )
    result = run_backtest(config, data_dir=data, models_dir=models, progress=seen.append)
    out = json.loads(json.dumps(result.to_dict(), allow_nan=False))

    assert out["model_path"] == str(path)
    assert out["bars"] == len(load_ohlcv(data, "EURUSD", "1h", start="2020-03-01"))
    assert out["start"].startswith("2020-03-01")
    assert out["trades_total"] > 5 and len(out["trades"]) == out["trades_total"]
    assert {t["side"] for t in out["trades"]} == {"long", "short"}
    assert out["trade_statistics"]["total_trades"] == out["trades_total"]
    assert sum(out["signals"].values()) == out["bars"]
    assert {"features", "inference", "simulation", "total"} <= out["timings"].keys()
    assert (out["wiped_out"], out["wiped_out_bar"], out["wiped_out_at"]) == (False, None, None)
    assert_curves_fit_the_run(out, load_ohlcv(data, "EURUSD", "1h", start="2020-03-01")["close"])
    assert out["model"]["version"] == 1 and out["model"]["path"] == str(path)
    assert [p.percentage for p in seen] == sorted(p.percentage for p in seen) and seen[-1].percentage == 100

    # Every position is closed by the end, so the money adds up: final = initial + sum(net pnl).
    total_pnl = sum(t.net_pnl for t in result.simulation.trades)
    assert out["equity_curve"]["final"] == pytest.approx(100_000 + total_pnl, rel=1e-9)
    assert out["metrics"]["total_return"] == pytest.approx(total_pnl / 100_000, rel=1e-9)
    # Trades never overlap and each enters after the one before left.
    trades = result.simulation.trades
    assert all(a.exit_bar <= b.entry_bar for a, b in itertools.pairwise(trades))


def assert_curves_fit_the_run(out: dict, close) -> None:
    """The stored curves: one time axis from the first to the last bar, at most CURVE_POINTS points,
    the full run's extremes kept, buy-and-hold and the drawdown agreeing with the metrics."""
    curves = out["curves"]
    names = ("timestamps", "equity", "buy_and_hold", "drawdown", "close")
    assert {len(curves[name]) for name in names} == {curves["points"]}
    assert 2 <= curves["points"] <= CURVE_POINTS and curves["bars"] == out["bars"]
    assert curves["timestamps"][0] == out["start"] and curves["timestamps"][-1] == out["end"]
    assert curves["timestamps"] == sorted(curves["timestamps"])
    assert max(curves["equity"]) == pytest.approx(out["equity_curve"]["max"], rel=1e-7)
    assert min(curves["equity"]) == pytest.approx(out["equity_curve"]["min"], rel=1e-7)
    assert max(curves["drawdown"]) == pytest.approx(out["metrics"]["max_drawdown"], rel=1e-7)
    assert max(curves["close"]) == pytest.approx(close.max(), rel=1e-7)
    assert min(curves["close"]) == pytest.approx(close.min(), rel=1e-7)
    initial = out["config"]["initial_capital"]
    assert curves["buy_and_hold"][0] == pytest.approx(initial, rel=1e-7)
    assert curves["buy_and_hold"][-1] == pytest.approx(initial * (1 + out["buy_and_hold_return"]), rel=1e-7)
    assert out["buy_and_hold_return"] == pytest.approx(close.iloc[-1] / close.iloc[0] - 1, rel=1e-9)


def test_warm_up_bars_make_no_decision(dirs) -> None:
    data, models, _ = dirs
    result = run_backtest(BacktestConfig(strategy=STRATEGY), data_dir=data, models_dir=models)
    warm_up = int(
        np.isnan(build_features(STRATEGY, load_ohlcv(data, "EURUSD", "1h")).to_numpy()).any(axis=1).sum()
    )
    assert warm_up > 0
    assert result.simulation.trades[0].entry_bar > warm_up


def test_model_selection(dirs, tmp_path: Path) -> None:
    data, models, path = dirs
    explicit = BacktestConfig(
        strategy=STRATEGY, model_path="rsi_macd_trend/1h_v1", end_date=dt.date(2020, 2, 1)
    )
    assert run_backtest(explicit, data_dir=data, models_dir=models).model_path == str(path.resolve())
    with pytest.raises(InvalidNameError):
        run_backtest(
            BacktestConfig(strategy=STRATEGY, model_path="../../etc"), data_dir=data, models_dir=models
        )
    with pytest.raises(ModelNotFoundError):
        run_backtest(BacktestConfig(strategy=STRATEGY), data_dir=data, models_dir=tmp_path)
    other = get_strategy("momentum_roc_stochastic")[0].model_copy(update={"name": "rsi_macd_trend"})
    with pytest.raises(ValidationError, match="features differ"):
        run_backtest(BacktestConfig(strategy=other), data_dir=data, models_dir=models)


def test_config_is_checked() -> None:
    with pytest.raises(ValidationError):
        BacktestConfig(strategy=STRATEGY, commission=-0.1)
    with pytest.raises(ValidationError):
        BacktestConfig(strategy=STRATEGY, initial_capital=0)
    with pytest.raises(InvalidDateRangeError):
        BacktestConfig(strategy=STRATEGY, start_date=dt.date(2021, 1, 1), end_date=dt.date(2020, 1, 1))
    # the spec's short names are accepted too
    config = BacktestConfig.model_validate({"strategy": STRATEGY, "start": "2020-01-02", "end": "2020-02-01"})
    assert str(config.start_date) == "2020-01-02" and config.resolved_symbol == "EURUSD"


def test_cancelled_before_it_starts(dirs) -> None:
    data, models, _ = dirs
    token = CancelToken()
    token.cancel("stop")
    with pytest.raises(OperationCancelled):
        run_backtest(BacktestConfig(strategy=STRATEGY), data_dir=data, models_dir=models, cancel=token)


def test_trade_list_is_capped(dirs, monkeypatch: pytest.MonkeyPatch) -> None:
    data, models, _ = dirs
    monkeypatch.setattr(engine, "MAX_TRADES_IN_RESULT", 3)
    out = run_backtest(BacktestConfig(strategy=STRATEGY), data_dir=data, models_dir=models).to_dict()
    assert len(out["trades"]) == 3 and out["trades_total"] > 3 and out["trades_truncated"] is True


def test_the_largest_result_a_long_run_makes_fits_the_result_budget() -> None:
    """200,000 bars traded every other bar: the stored trades and curves are cut to their caps, and
    the worker's report carrying the result stays under the backend's request-body limit."""
    from ktrdr.protocol import OperationReport
    from ktrdr.settings import Settings

    n = 200_000
    index = pd.date_range("2000-01-01", periods=n, freq="1min", tz="UTC")
    rng = np.random.default_rng(3)
    close = 1.234567 * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
    decided = np.arange(0, n - 4, 2, dtype=np.int64)
    actions = np.tile([Action.OPEN_SHORT, Action.CLOSE_SHORT], decided.size // 2).astype(np.int8)
    costs = Costs(initial_capital=123_456.789)
    simulation = simulate(Orders(decided, actions), close, close, index, costs)
    assert len(simulation.trades) > engine.MAX_TRADES_IN_RESULT
    result = BacktestResult(
        strategy="s" * 64,
        symbol="S" * 32,
        timeframe="1m",
        model_path="/models/" + "m" * 200,
        costs=costs,
        index=index,
        close=close,
        probabilities=np.zeros((n, 3)),
        simulation=simulation,
        metrics=dict(performance_metrics(pd.Series(simulation.equity), 525_960.0)),
        trade_stats=trade_statistics(simulation.trades),
        signal_counts={"BUY": 0, "HOLD": n, "SELL": 0},
    )
    out = result.to_dict()
    size = len(json.dumps(out, allow_nan=False))
    assert out["trades_truncated"] and len(out["trades"]) == engine.MAX_TRADES_IN_RESULT
    assert out["curves"]["points"] <= CURVE_POINTS
    assert_curves_fit_the_run(out, pd.Series(close))
    assert size <= engine.RESULT_BUDGET_BYTES, size
    report = OperationReport(operation_id="op_" + "0" * 32, status="completed", result=out)
    assert len(report.model_dump_json()) < Settings().max_body_bytes


BARS = generate_ohlcv(600, timeframe="1h", seed=21)


@pytest.fixture(scope="module")
def frame_model(tmp_path_factory: pytest.TempPathFactory):
    return load_model(_store_model(tmp_path_factory.mktemp("m"), BARS, seed=8))


@settings(max_examples=15, deadline=None)
@given(cut=st.integers(min_value=60, max_value=598), seed=st.integers(0, 1000))
def test_no_future_bar_changes_an_earlier_decision(frame_model, cut: int, seed: int) -> None:
    """Replacing every bar after `cut` changes nothing decided on or before `cut`."""
    costs = Costs(initial_capital=10_000)
    other = generate_ohlcv(600, timeframe="1h", seed=seed, base_price=2.0)
    spliced = BARS.copy()
    spliced.iloc[cut + 1 :] = other.iloc[cut + 1 :].to_numpy()
    a = backtest_frame(STRATEGY, BARS, frame_model, costs)
    b = backtest_frame(STRATEGY, spliced, frame_model, costs)

    np.testing.assert_array_equal(a.probabilities[: cut + 1], b.probabilities[: cut + 1])
    entries_a = [(t.entry_bar, t.side) for t in a.simulation.trades if t.entry_bar <= cut]
    entries_b = [(t.entry_bar, t.side) for t in b.simulation.trades if t.entry_bar <= cut]
    assert entries_a == entries_b
    np.testing.assert_allclose(a.simulation.equity[: cut + 1], b.simulation.equity[: cut + 1])


def test_a_squeeze_that_wipes_the_account_out_is_said_plainly(frame_model) -> None:
    costs = Costs(initial_capital=10_000)
    calm = backtest_frame(STRATEGY, BARS, frame_model, costs)
    assert calm.simulation.wiped_out_bar is None and calm.to_dict()["wiped_out"] is False
    entry = next(t.entry_bar for t in calm.simulation.trades if t.side == "short")
    # From the bar after the short's entry every price is four times higher: whether it is still
    # held at that bar's close or covered at its open, the account ends at that bar.
    squeezed = BARS.copy()
    prices = ["open", "high", "low", "close"]
    squeezed.loc[squeezed.index[entry + 1] :, prices] *= 4.0
    result = backtest_frame(STRATEGY, squeezed, frame_model, costs)
    out = json.loads(json.dumps(result.to_dict(), allow_nan=False))

    assert out["wiped_out"] is True and out["wiped_out_bar"] == entry + 1
    assert out["wiped_out_at"] == BARS.index[entry + 1].isoformat()
    assert out["trades"][-1]["side"] == "short" and out["trades"][-1]["exit_bar"] == entry + 1
    assert all(t["quantity"] > 0 for t in out["trades"])
    assert out["equity_curve"]["final"] < 0 and out["metrics"]["total_return"] < -1
    assert out["equity_curve"]["final"] == pytest.approx(10_000 + sum(t["net_pnl"] for t in out["trades"]))
