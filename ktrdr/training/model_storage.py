"""Where trained models live, and how they are saved, listed, read and loaded.

Layout (the original system's)::

    {models_dir}/{strategy}/{timeframe}_v{N}/model.pt        the network's state_dict (CPU tensors)
    {models_dir}/{strategy}/{timeframe}_v{N}/metadata.json   everything else needed to use it
    {models_dir}/{strategy}/{timeframe}_latest               -> {timeframe}_v{N} (a relative symlink,
                                                              or a one-line file where symlinks fail)

``metadata.json`` holds the feature order, the normalisation statistics, the metrics, the torch
version, the architecture, the strategy (as JSON and as YAML), symbol, timeframe and created_at.

Saving is atomic: a version is written into a hidden temporary directory beside its final place
and renamed into it, so readers never see half a model, and a cancelled or failed run leaves
nothing. Only the models directory is written to.

Listing and reading metadata import no torch, numpy or pandas (the backend does both); saving and
loading import torch inside the functions.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
import yaml

from ktrdr.errors import InvalidNameError, ModelNotFoundError, ValidationError
from ktrdr.names import STRATEGY_NAME, TIMEFRAME, check_name, is_name, shown
from ktrdr.strategy.schema import StrategyConfig

if TYPE_CHECKING:
    from torch import nn

log = structlog.get_logger(__name__)

METADATA_FILE = "metadata.json"
WEIGHTS_FILE = "model.pt"
FORMAT = "ktrdr-model/1"
_VERSION_DIR = re.compile(r"^(?P<timeframe>[0-9]{1,4}[mhdw])_v(?P<version>[0-9]{1,9})$")


@dataclass(frozen=True)
class ModelInfo:
    """One stored model version, as listed (no weights loaded)."""

    strategy: str
    timeframe: str
    version: int
    path: str
    symbol: str | None
    created_at: str | None
    is_latest: bool
    test_accuracy: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LoadedModel:
    """A network ready for inference, with its metadata."""

    network: nn.Module
    metadata: dict[str, Any]
    path: Path

    @property
    def feature_names(self) -> list[str]:
        return list(self.metadata["feature_names"])

    def provenance(self) -> dict[str, Any]:
        """What a backtest result says about the model it used: where it is, its version, when it
        was trained and on which bars (the test split begins at ``test_start``)."""
        training = self.metadata.get("training") or {}
        return {
            "path": str(self.path),
            "version": model_version(self.path),
            "created_at": self.metadata.get("created_at"),
            "symbol": self.metadata.get("symbol"),
            "timeframe": self.metadata.get("timeframe"),
            "data_start": training.get("data_start"),
            "data_end": training.get("data_end"),
            "test_start": training.get("test_start"),
        }


def model_version(path: Path) -> int | None:
    """N of a ``{timeframe}_v{N}`` version directory; None for any other path."""
    match = _VERSION_DIR.match(Path(path).name)
    return int(match["version"]) if match else None


def save_model(
    models_dir: Path,
    strategy: StrategyConfig,
    network: nn.Module,
    *,
    feature_names: list[str],
    normalization: dict[str, Any],
    metrics: dict[str, Any],
    symbol: str,
    timeframe: str,
    training: dict[str, Any] | None = None,
) -> Path:
    """Store a new version of ``strategy``'s model for ``timeframe``; returns its directory."""
    import torch

    check_name(strategy.name, STRATEGY_NAME, field="strategy")
    check_name(timeframe, TIMEFRAME, field="timeframe")
    strategy_dir = Path(models_dir) / strategy.name
    strategy_dir.mkdir(parents=True, exist_ok=True)

    state = {key: value.detach().cpu() for key, value in network.state_dict().items()}
    strategy_json = strategy.model_dump(mode="json")
    metadata: dict[str, Any] = {
        "format": FORMAT,
        "strategy_name": strategy.name,
        "symbol": symbol,
        "timeframe": timeframe,
        "created_at": dt.datetime.now(dt.UTC).isoformat(),
        "feature_names": list(feature_names),
        "input_size": len(feature_names),
        "class_names": ["BUY", "HOLD", "SELL"],
        "architecture": strategy.model.architecture.model_dump(mode="json"),
        "normalization": normalization,
        "metrics": metrics,
        "training": training or {},
        "torch_version": torch.__version__,
        "strategy": strategy_json,
        "strategy_yaml": yaml.safe_dump(strategy_json, sort_keys=False),
    }

    staging = Path(tempfile.mkdtemp(prefix=f".{timeframe}_staging-", dir=strategy_dir))
    try:
        torch.save(state, staging / WEIGHTS_FILE)
        for _attempt in range(100):
            version = _next_version(strategy_dir, timeframe)
            metadata["version"] = version
            (staging / METADATA_FILE).write_text(json.dumps(metadata, indent=2, allow_nan=False))
            final = strategy_dir / f"{timeframe}_v{version}"
            try:
                os.rename(staging, final)  # fails when another writer took this version
            except OSError:
                if final.exists():
                    continue
                raise
            # Concurrent savers each point at the highest version, so the pointer never goes back.
            _point_latest(strategy_dir, timeframe, f"{timeframe}_v{_versions(strategy_dir, timeframe)[-1]}")
            log.info("model_saved", path=str(final), version=version, strategy=strategy.name)
            return final
        raise ValidationError(f"could not allocate a version directory under {strategy_dir}")
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def list_models(models_dir: Path) -> list[ModelInfo]:
    """Every stored model version, sorted by strategy, timeframe and version (unreadable ones are
    skipped with a warning)."""
    root = Path(models_dir)
    if not root.is_dir():
        return []
    found: list[ModelInfo] = []
    for strategy_dir in sorted(p for p in root.iterdir() if p.is_dir() and is_name(p.name, STRATEGY_NAME)):
        latest: dict[str, str | None] = {}
        for version_dir in sorted(strategy_dir.iterdir()):
            match = _VERSION_DIR.match(version_dir.name)
            if not match or not version_dir.is_dir():
                continue
            timeframe = match["timeframe"]
            if timeframe not in latest:
                latest[timeframe] = _latest_name(strategy_dir, timeframe)
            try:
                metadata = _read_json(version_dir / METADATA_FILE)
            except ModelNotFoundError as exc:
                log.warning("model_unreadable", path=str(version_dir), error=exc.message)
                continue
            test = metadata.get("metrics", {}).get("test") or {}
            found.append(
                ModelInfo(
                    strategy=strategy_dir.name,
                    timeframe=timeframe,
                    version=int(match["version"]),
                    path=str(version_dir),
                    symbol=metadata.get("symbol"),
                    created_at=metadata.get("created_at"),
                    is_latest=latest[timeframe] == version_dir.name,
                    test_accuracy=test.get("accuracy"),
                )
            )
    found.sort(key=lambda m: (m.strategy, m.timeframe, m.version))
    return found


def resolve_model_path(models_dir: Path, strategy: str, timeframe: str, version: int | None = None) -> Path:
    """The directory of a model version (the latest when ``version`` is None)."""
    check_name(strategy, STRATEGY_NAME, field="strategy")
    check_name(timeframe, TIMEFRAME, field="timeframe")
    strategy_dir = Path(models_dir) / strategy
    if version is None:
        name = _latest_name(strategy_dir, timeframe)
        if name is None:
            raise ModelNotFoundError(
                f"no trained model for strategy {strategy!r} on {timeframe}",
                details={"strategy": strategy, "timeframe": timeframe},
            )
        path = strategy_dir / name
    else:
        if version < 1:
            raise InvalidNameError(f"model version must be >= 1, got {version}")
        path = strategy_dir / f"{timeframe}_v{version}"
    if not (path / METADATA_FILE).is_file():
        raise ModelNotFoundError(
            f"model {strategy}/{path.name} not found",
            details={"strategy": strategy, "timeframe": timeframe, "version": version},
        )
    return path


def read_model_metadata(
    models_dir: Path, strategy: str, timeframe: str, version: int | None = None
) -> dict[str, Any]:
    """The metadata of a model version (the latest when ``version`` is None), without torch."""
    return _read_json(resolve_model_path(models_dir, strategy, timeframe, version) / METADATA_FILE)


def model_path_within(models_dir: Path, model_path: Path | str) -> Path:
    """A user-given model path (absolute, or relative to ``models_dir``) resolved to a version
    directory inside ``models_dir``; anything outside it is refused."""
    root = Path(models_dir).resolve()
    candidate = Path(model_path)
    try:
        resolved = (candidate if candidate.is_absolute() else root / candidate).resolve()
    except (ValueError, OSError) as exc:  # a NUL byte, a name the filesystem cannot take
        raise InvalidNameError(
            f"model path {shown(str(model_path))} is not a usable path: {exc}",
            details={"field": "model_path", "reason": str(exc)},
        ) from None
    if resolved.name == WEIGHTS_FILE:
        resolved = resolved.parent
    if not resolved.is_relative_to(root):
        raise InvalidNameError(
            f"model path {shown(str(model_path))} is outside the models directory",
            details={"field": "model_path", "reason": "outside the models directory"},
        )
    if not (resolved / METADATA_FILE).is_file():
        raise ModelNotFoundError(
            f"no model at {shown(str(model_path))}", details={"model_path": shown(str(model_path))}
        )
    return resolved


def load_model(path: Path) -> LoadedModel:
    """Load a model version directory (or its ``model.pt``) for inference on the CPU.

    The weights are read with ``weights_only=True``: a model file cannot run code.
    """
    import torch

    from ktrdr.neural.mlp import build_mlp
    from ktrdr.strategy.schema import Architecture

    directory = Path(path)
    if directory.name == WEIGHTS_FILE:
        directory = directory.parent
    metadata = _read_json(directory / METADATA_FILE)
    weights = directory / WEIGHTS_FILE
    if not weights.is_file():
        raise ModelNotFoundError(f"model weights missing: {weights}", details={"path": str(directory)})
    architecture = Architecture.model_validate(metadata["architecture"])
    network = build_mlp(int(metadata["input_size"]), architecture)
    state = torch.load(weights, map_location="cpu", weights_only=True)
    try:
        network.load_state_dict(state)
    except RuntimeError as exc:
        raise ValidationError(
            f"model weights at {weights} do not match their metadata: {exc}", details={"path": str(directory)}
        ) from exc
    network.eval()
    return LoadedModel(network=network, metadata=metadata, path=directory)


# --- helpers -------------------------------------------------------------------------------------


def _versions(strategy_dir: Path, timeframe: str) -> list[int]:
    if not strategy_dir.is_dir():
        return []
    versions = []
    for entry in strategy_dir.iterdir():
        match = _VERSION_DIR.match(entry.name)
        if match and match["timeframe"] == timeframe and entry.is_dir():
            versions.append(int(match["version"]))
    return sorted(versions)


def _next_version(strategy_dir: Path, timeframe: str) -> int:
    versions = _versions(strategy_dir, timeframe)
    return (versions[-1] if versions else 0) + 1


def _latest_name(strategy_dir: Path, timeframe: str) -> str | None:
    """The version directory the ``_latest`` pointer names, else the highest version."""
    pointer = strategy_dir / f"{timeframe}_latest"
    target: str | None = None
    if pointer.is_symlink():
        target = os.readlink(pointer)
    elif pointer.is_file():
        target = pointer.read_text().strip()
    if target is not None:
        match = _VERSION_DIR.match(Path(target).name)
        if match and match["timeframe"] == timeframe and (strategy_dir / match.group(0)).is_dir():
            return match.group(0)
    versions = _versions(strategy_dir, timeframe)
    return f"{timeframe}_v{versions[-1]}" if versions else None


def _point_latest(strategy_dir: Path, timeframe: str, target: str) -> None:
    pointer = strategy_dir / f"{timeframe}_latest"
    temp = strategy_dir / f".{timeframe}_latest.{os.getpid()}.tmp"
    temp.unlink(missing_ok=True)
    try:
        os.symlink(target, temp)
    except OSError:  # filesystems without symlinks: a one-line file says the same
        temp.write_text(target + "\n")
    os.replace(temp, pointer)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ModelNotFoundError(f"model metadata missing: {path}", details={"path": str(path)}) from exc
    except (OSError, ValueError) as exc:
        raise ModelNotFoundError(
            f"model metadata unreadable: {path}: {exc}", details={"path": str(path)}
        ) from exc
    if not isinstance(data, dict):
        raise ModelNotFoundError(f"model metadata is not an object: {path}", details={"path": str(path)})
    return data
