"""The training loop: a strategy and its data in, a stored model and its metrics out.

Steps: load OHLCV -> features and zigzag labels (:mod:`ktrdr.training.dataset`) -> chronological
split with a purge gap -> normalisation fitted on the training rows -> Adam on class-weighted
cross-entropy (one intra-op thread on the CPU), mini-batches shuffled by a seeded generator,
early stopping on the validation loss (the best epoch's weights are kept) -> metrics on each
split -> atomic save.

On the CPU the same seed gives the same weights and metrics. Progress is reported once per epoch;
cancellation is checked between batches and raises :class:`~ktrdr.jobs.OperationCancelled` before
anything is written.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import structlog
import torch
from torch import nn

from ktrdr.downsampling import compact, extreme_indices
from ktrdr.jobs import CancelToken, Progress, ProgressCallback
from ktrdr.neural.classes import CLASS_NAMES, NUM_CLASSES
from ktrdr.neural.mlp import build_mlp
from ktrdr.strategy.schema import StrategyConfig
from ktrdr.training.dataset import Dataset, prepare_dataset
from ktrdr.training.device import best_device
from ktrdr.training.model_storage import model_version, save_model

log = structlog.get_logger(__name__)

# The per-epoch curves a result keeps (a strategy may train for up to 10,000 epochs).
HISTORY_POINTS_IN_RESULT = 500
HISTORY_CURVES = ("train_loss", "val_loss", "train_accuracy", "val_accuracy")


@dataclass(frozen=True)
class TrainingResult:
    model_path: Path
    strategy: str
    symbol: str
    timeframe: str
    version: int
    epochs_run: int
    best_epoch: int
    stopped_early: bool
    device: str
    metrics: dict[str, dict[str, Any]]
    samples: dict[str, int]
    feature_names: list[str]
    duration_seconds: float
    history: list[dict[str, float]] = field(default_factory=list)
    test_start: str | None = None  # first bar of the test split (ISO): out-of-sample from there on
    data_start: str | None = None  # the first and last bar the run read (ISO)
    data_end: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary, with the per-epoch curves (:func:`history_section`)."""
        return {
            "model_path": str(self.model_path),
            "strategy": self.strategy,
            "symbol": self.symbol,
            "timeframe": self.timeframe,
            "version": self.version,
            "epochs_run": self.epochs_run,
            "best_epoch": self.best_epoch,
            "stopped_early": self.stopped_early,
            "device": self.device,
            "train_metrics": self.metrics["train"],
            "validation_metrics": self.metrics["validation"],
            "test_metrics": self.metrics["test"],
            "samples": dict(self.samples),
            "feature_names": list(self.feature_names),
            "duration_seconds": round(self.duration_seconds, 3),
            "data_start": self.data_start,
            "data_end": self.data_end,
            "test_start": self.test_start,
            "history": history_section(self.history, self.best_epoch),
        }


def history_section(history: list[dict[str, float]], best_epoch: int) -> dict[str, Any]:
    """The per-epoch losses and accuracies as columns, at most ``HISTORY_POINTS_IN_RESULT`` epochs
    of them: each curve's peaks and troughs and the best epoch are kept (:mod:`ktrdr.downsampling`)."""
    columns = {name: np.array([h[name] for h in history], dtype=np.float64) for name in HISTORY_CURVES}
    epochs = np.array([int(h["epoch"]) for h in history], dtype=np.int64)
    best = np.flatnonzero(epochs == best_epoch)
    picks = extreme_indices(list(columns.values()), HISTORY_POINTS_IN_RESULT, keep=best.tolist())
    return {
        "epochs": len(history),
        "points": int(picks.size),
        "epoch": epochs[picks].tolist(),
        **{name: compact(values[picks]) for name, values in columns.items()},
    }


def train_strategy(
    strategy: StrategyConfig,
    *,
    data_dir: Path,
    models_dir: Path,
    start: dt.date | None = None,
    end: dt.date | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    device: str | None = None,
) -> TrainingResult:
    """Train ``strategy`` on its symbol/timeframe between ``start`` and ``end`` (defaults: the
    strategy's ``training_data`` dates, else all data) and store the model."""
    began = time.perf_counter()
    token = cancel or CancelToken()
    report = progress or (lambda _p: None)
    device = device or best_device()
    symbol, timeframe = strategy.training_data.symbol, strategy.training_data.timeframe
    report(Progress(percentage=0.0, current_step="preparing data", context={"device": device}))

    data = prepare_dataset(
        strategy,
        data_dir=data_dir,
        start=start or strategy.training_data.start_date,
        end=end or strategy.training_data.end_date,
    )
    token.raise_if_cancelled()
    report(
        Progress(
            percentage=5.0,
            current_step="training",
            context={"device": device, "samples": data.sizes(), "features": len(data.feature_names)},
        )
    )

    with _cpu_threads(1 if device == "cpu" else None):
        outcome = fit(strategy, data, device=device, progress=report, cancel=token)
    metrics = {
        part: evaluate(outcome.network, data.part(part), outcome.class_weights, data.majority_class, device)
        for part in ("train", "validation", "test")
    }
    token.raise_if_cancelled()
    path = save_model(
        models_dir,
        strategy,
        outcome.network,
        feature_names=data.feature_names,
        normalization=data.normalization,
        metrics=metrics,
        symbol=symbol,
        timeframe=timeframe,
        training={
            "epochs_run": outcome.epochs_run,
            "best_epoch": outcome.best_epoch,
            "device": device,
            "seed": strategy.training.seed,
            "samples": data.sizes(),
            "data_start": data.first_timestamp,
            "data_end": data.last_timestamp,
            "test_start": data.test_start,
        },
    )
    version = model_version(path)
    assert version is not None  # save_model names each version directory {timeframe}_v{N}
    duration = time.perf_counter() - began
    report(
        Progress(
            percentage=100.0,
            current_step="done",
            steps_completed=outcome.epochs_run,
            steps_total=strategy.training.epochs,
            context={"model_path": str(path), "test_accuracy": metrics["test"]["accuracy"]},
        )
    )
    log.info("training_done", strategy=strategy.name, path=str(path), seconds=round(duration, 2))
    return TrainingResult(
        model_path=path,
        strategy=strategy.name,
        symbol=symbol,
        timeframe=timeframe,
        version=version,
        epochs_run=outcome.epochs_run,
        best_epoch=outcome.best_epoch,
        stopped_early=outcome.stopped_early,
        device=device,
        metrics=metrics,
        samples=data.sizes(),
        feature_names=data.feature_names,
        duration_seconds=duration,
        history=outcome.history,
        test_start=data.test_start,
        data_start=data.first_timestamp,
        data_end=data.last_timestamp,
    )


@dataclass
class FitOutcome:
    network: nn.Module
    class_weights: torch.Tensor
    epochs_run: int
    best_epoch: int
    stopped_early: bool
    history: list[dict[str, float]]


def fit(
    strategy: StrategyConfig,
    data: Dataset,
    *,
    device: str,
    progress: ProgressCallback,
    cancel: CancelToken,
) -> FitOutcome:
    """The optimisation loop alone (no I/O): returns the network with its best epoch's weights."""
    cfg = strategy.training
    torch.manual_seed(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)

    x_train, y_train = _tensors(*data.part("train"), device)
    x_val, y_val = _tensors(*data.part("validation"), device)
    weights = class_weights(data.part("train")[1]).to(device)
    network = build_mlp(len(data.feature_names), strategy.model.architecture).to(device)
    optimiser = torch.optim.Adam(network.parameters(), lr=cfg.learning_rate)
    criterion = nn.CrossEntropyLoss(weight=weights)

    n_train = int(y_train.shape[0])
    best_loss, best_epoch, waited = float("inf"), 0, 0
    best_state = copy.deepcopy(network.state_dict())
    history: list[dict[str, float]] = []
    epoch = 0
    stopped_early = False
    for epoch in range(1, cfg.epochs + 1):
        network.train()
        order = torch.randperm(n_train, generator=generator).to(device)
        total = 0.0
        correct = torch.zeros((), dtype=torch.int64, device=device)
        for begin in range(0, n_train, cfg.batch_size):
            if cancel.cancelled:
                cancel.raise_if_cancelled()
            batch = order[begin : begin + cfg.batch_size]
            optimiser.zero_grad(set_to_none=True)
            logits = network(x_train[batch])
            loss = criterion(logits, y_train[batch])
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * int(batch.shape[0])
            correct += (logits.detach().argmax(dim=1) == y_train[batch]).sum()
        train_loss = total / n_train
        # Accuracy over the epoch's batches as they were trained (the weights moved meanwhile).
        train_accuracy = int(correct) / n_train

        network.eval()
        with torch.inference_mode():
            logits = network(x_val)
            val_loss = float(criterion(logits, y_val))
            val_accuracy = float((logits.argmax(dim=1) == y_val).float().mean())
        history.append(
            {
                "epoch": epoch,
                "train_loss": train_loss,
                "val_loss": val_loss,
                "train_accuracy": train_accuracy,
                "val_accuracy": val_accuracy,
            }
        )
        if val_loss < best_loss - cfg.early_stopping.min_delta:
            best_loss, best_epoch, waited = val_loss, epoch, 0
            best_state = copy.deepcopy(network.state_dict())
        else:
            waited += 1
        progress(
            Progress(
                percentage=5.0 + 90.0 * epoch / cfg.epochs,
                current_step=f"epoch {epoch}/{cfg.epochs}",
                steps_completed=epoch,
                steps_total=cfg.epochs,
                items_processed=epoch * n_train,
                items_total=cfg.epochs * n_train,
                context={
                    "train_loss": _rounded(train_loss),
                    "val_loss": _rounded(val_loss),
                    "val_accuracy": round(val_accuracy, 6),
                    "best_val_loss": _rounded(best_loss),  # None until a validation loss is finite
                    "best_epoch": best_epoch,
                    "device": device,
                },
            )
        )
        if waited >= cfg.early_stopping.patience:
            stopped_early = epoch < cfg.epochs
            break
    network.load_state_dict(best_state)
    network.eval()
    return FitOutcome(network, weights, epoch, best_epoch, stopped_early, history)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _rounded(value: float) -> float | None:
    return round(value, 6) if math.isfinite(value) else None


def class_weights(labels: np.ndarray) -> torch.Tensor:
    """Inverse-frequency weights ``n / (classes_present x count)``; 0 for an absent class."""
    counts = np.bincount(labels, minlength=NUM_CLASSES).astype(np.float64)
    present = int((counts > 0).sum())
    weights = np.where(counts > 0, labels.size / (max(present, 1) * np.maximum(counts, 1)), 0.0)
    return torch.tensor(weights, dtype=torch.float32)


def evaluate(
    network: nn.Module,
    part: tuple[np.ndarray, np.ndarray],
    weights: torch.Tensor,
    majority_class: int,
    device: str,
) -> dict[str, Any]:
    """Loss (the training criterion), accuracy, the class-prior baseline's accuracy (always the
    training split's most frequent class), balanced accuracy, true and predicted class counts, and
    the confusion matrix: ``[true][predicted]`` counts, classes in ``CLASS_NAMES`` order."""
    features, labels = part
    if labels.size == 0:
        return {
            "samples": 0,
            "loss": None,
            "accuracy": None,
            "baseline_accuracy": None,
            "confusion_matrix": None,
        }
    x, y = _tensors(features, labels, device)
    network.eval()
    with torch.inference_mode():
        logits = network(x)
        # Weighted by the training split's classes: a split holding only classes training never saw
        # has no weight at all, and a diverged network gives NaN; either way the loss is undefined.
        loss = _finite(float(nn.functional.cross_entropy(logits, y, weight=weights.to(device))))
        predicted = logits.argmax(dim=1).cpu().numpy()
    correct = predicted == labels
    confusion = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    recalls = [float(correct[labels == c].mean()) for c in range(NUM_CLASSES) if (labels == c).any()]
    return {
        "samples": int(labels.size),
        "loss": loss,
        "accuracy": float(correct.mean()),
        "baseline_accuracy": float((labels == majority_class).mean()),
        "balanced_accuracy": float(np.mean(recalls)),
        "class_counts": _counts(labels),
        "predicted_counts": _counts(predicted),
        "confusion_matrix": confusion.tolist(),
    }


@contextlib.contextmanager
def _cpu_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` intra-op threads (process-wide; a worker runs one operation
    at a time). Small MLP batches gain nothing from more threads on the CPU, lose a lot when the
    cores are shared, and one thread fixes the summation order, so results are reproducible."""
    if threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _counts(values: np.ndarray) -> dict[str, int]:
    counts = np.bincount(values, minlength=NUM_CLASSES)
    return {name: int(counts[i]) for i, name in enumerate(CLASS_NAMES)}


def _tensors(features: np.ndarray, labels: np.ndarray, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32)).to(device)
    y = torch.from_numpy(np.ascontiguousarray(labels, dtype=np.int64)).to(device)
    return x, y
