"""The training loop on the bundled sample data: it learns, reproducibly, reports, and cancels cleanly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
np = pytest.importorskip("numpy")
pytest.importorskip("pandas")

from ktrdr.data.sample import install_sample_data  # noqa: E402
from ktrdr.data.store import load_ohlcv  # noqa: E402
from ktrdr.features import feature_names  # noqa: E402
from ktrdr.jobs import CancelToken, OperationCancelled, Progress  # noqa: E402
from ktrdr.strategy.loader import get_strategy  # noqa: E402
from ktrdr.strategy.schema import StrategyConfig  # noqa: E402
from ktrdr.training.model_storage import list_models, read_model_metadata  # noqa: E402
from ktrdr.training.trainer import TrainingResult, class_weights, evaluate, train_strategy  # noqa: E402


def _strategy(epochs: int = 12) -> StrategyConfig:
    strategy, _ = get_strategy("rsi_macd_trend")
    training = strategy.training.model_copy(update={"epochs": epochs})
    return strategy.model_copy(update={"training": training})


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data")
    install_sample_data(path)
    return path


@pytest.fixture(scope="module")
def trained(
    data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[TrainingResult, list[Progress]]:
    seen: list[Progress] = []
    models = tmp_path_factory.mktemp("models")
    result = train_strategy(
        _strategy(), data_dir=data_dir, models_dir=models, progress=seen.append, device="cpu"
    )
    return result, seen


def test_beats_the_class_prior_baseline_on_the_test_split(trained) -> None:
    result, _ = trained
    test = result.metrics["test"]
    assert test["samples"] > 1000
    assert test["accuracy"] > test["baseline_accuracy"] + 0.05
    assert test["balanced_accuracy"] > 0.4  # better than chance over three classes
    assert sum(test["class_counts"].values()) == test["samples"]


def test_result_is_json_safe_and_points_at_the_stored_model(trained) -> None:
    result, _ = trained
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert data["device"] == "cpu" and data["symbol"] == "EURUSD" and data["timeframe"] == "1h"
    assert data["version"] == 1 and data["epochs_run"] >= 1
    assert {"train_metrics", "validation_metrics", "test_metrics", "duration_seconds"} <= data.keys()
    path = Path(data["model_path"])
    assert (path / "model.pt").is_file()
    meta = read_model_metadata(path.parent.parent, "rsi_macd_trend", "1h")
    assert meta["feature_names"] == feature_names(_strategy())
    assert meta["metrics"]["test"] == result.metrics["test"]
    assert set(meta["normalization"]) == {"columns", "mean", "std"}
    assert meta["training"]["samples"] == data["samples"]


def test_result_keeps_the_curves_and_confusion_matrix_a_report_draws(trained) -> None:
    result, seen = trained
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    history = data["history"]
    assert history["epochs"] == history["points"] == result.epochs_run
    assert history["epoch"] == list(range(1, result.epochs_run + 1))
    # The stored losses are the ones each epoch's progress reported (to the progress' 6 decimals).
    reported = [p.context for p in seen if p.current_step.startswith("epoch ")]
    assert history["val_loss"] == pytest.approx([c["val_loss"] for c in reported], abs=1e-6)
    assert history["val_accuracy"] == pytest.approx([c["val_accuracy"] for c in reported], abs=1e-6)
    assert all(0.0 <= a <= 1.0 for a in history["train_accuracy"] + history["val_accuracy"])
    test = data["test_metrics"]
    matrix = test["confusion_matrix"]
    assert len(matrix) == 3 and all(len(row) == 3 for row in matrix)
    # Rows are the true classes, columns the predicted ones (BUY, HOLD, SELL).
    assert [sum(row) for row in matrix] == list(test["class_counts"].values())
    assert [sum(col) for col in zip(*matrix, strict=True)] == list(test["predicted_counts"].values())
    assert sum(matrix[i][i] for i in range(3)) == pytest.approx(test["accuracy"] * test["samples"])
    assert data["data_start"] < data["test_start"] <= data["data_end"]


def test_a_long_history_is_cut_to_its_cap_keeping_the_best_epoch() -> None:
    from ktrdr.training.trainer import HISTORY_POINTS_IN_RESULT, history_section

    epochs = 10_000
    history = [
        {
            "epoch": e,
            "train_loss": 1.0 / e,
            "val_loss": 1.0 + ((e - 4321) / 5000) ** 2,
            "train_accuracy": 0.5,
            "val_accuracy": 0.4 + (e % 97) / 1000,
        }
        for e in range(1, epochs + 1)
    ]
    section = history_section(history, best_epoch=4321)
    assert section["epochs"] == epochs and section["points"] <= HISTORY_POINTS_IN_RESULT
    assert 4321 in section["epoch"] and section["epoch"][0] == 1 and section["epoch"][-1] == epochs
    assert min(section["val_loss"]) == 1.0 and max(section["val_accuracy"]) == pytest.approx(0.496)


def test_result_says_where_the_unseen_test_bars_begin(trained, data_dir: Path) -> None:
    """An out-of-sample backtest starts at ``test_start``: after every training and validation bar."""
    import pandas as pd

    result, _ = trained
    assert result.test_start is not None
    test_start = pd.Timestamp(result.test_start)
    data = result.to_dict()
    assert data["test_start"] == result.test_start
    assert pd.Timestamp(data["test_start"]) > pd.Timestamp(
        read_model_metadata(Path(data["model_path"]).parent.parent, "rsi_macd_trend", "1h")["training"][
            "data_start"
        ]
    )
    bars = load_ohlcv(data_dir, "EURUSD", "1h")
    before = int((bars.index < test_start).sum())
    # Train + validation + the two purge gaps all come before the test split's first bar.
    assert before >= result.samples["train"] + result.samples["validation"]


def test_progress_once_per_epoch_with_losses(trained) -> None:
    result, seen = trained
    epochs = [p for p in seen if p.current_step.startswith("epoch ")]
    assert [p.current_step for p in epochs] == [f"epoch {i}/12" for i in range(1, result.epochs_run + 1)]
    assert all({"train_loss", "val_loss"} <= p.context.keys() for p in epochs)
    percentages = [p.percentage for p in seen]
    assert percentages == sorted(percentages) and percentages[-1] == 100.0


def test_same_seed_same_metrics(trained, data_dir: Path, tmp_path: Path) -> None:
    first, _ = trained
    again = train_strategy(_strategy(), data_dir=data_dir, models_dir=tmp_path, device="cpu")
    assert again.metrics == first.metrics
    assert again.epochs_run == first.epochs_run


def test_cancellation_writes_nothing(data_dir: Path, tmp_path: Path) -> None:
    token = CancelToken()

    def cancel_after_first_epoch(progress: Progress) -> None:
        if progress.current_step.startswith("epoch "):
            token.cancel("user asked")

    with pytest.raises(OperationCancelled, match="user asked"):
        train_strategy(
            _strategy(),
            data_dir=data_dir,
            models_dir=tmp_path,
            progress=cancel_after_first_epoch,
            cancel=token,
        )
    assert list_models(tmp_path) == []
    assert not any(tmp_path.rglob("*.pt"))


def test_class_weights_balance_the_classes() -> None:
    weights = class_weights(np.array([0, 0, 0, 1, 2, 2])).tolist()
    assert weights == pytest.approx([6 / 9, 6 / 3, 6 / 6])
    assert class_weights(np.array([1, 1, 2])).tolist() == pytest.approx([0.0, 0.75, 1.5])


def test_a_split_of_classes_absent_from_training_has_no_loss_rather_than_nan() -> None:
    """The loss is weighted by the training split's classes; a split holding only classes that
    training never saw carries no weight at all, so its loss is undefined: None, never NaN."""
    torch.manual_seed(0)
    network = torch.nn.Linear(4, 3)
    weights = class_weights(np.array([1, 1, 2]))  # BUY (0) never seen in training: weight 0
    only_buys = (np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32), np.zeros(8, dtype=np.int64))
    metrics = evaluate(network, only_buys, weights, majority_class=1, device="cpu")
    assert metrics["loss"] is None
    assert metrics["samples"] == 8 and 0.0 <= metrics["accuracy"] <= 1.0
    json.dumps(metrics, allow_nan=False)
    mixed = (only_buys[0], np.array([0, 1, 2, 0, 1, 2, 0, 1]))
    assert evaluate(network, mixed, weights, majority_class=1, device="cpu")["loss"] > 0
