"""Model storage: atomic versioned saves, the latest pointer, listing without torch, round trip."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ktrdr.errors import InvalidNameError, ModelNotFoundError
from ktrdr.strategy.schema import StrategyConfig
from ktrdr.training.model_storage import (
    list_models,
    model_path_within,
    read_model_metadata,
    resolve_model_path,
)

STRATEGY = StrategyConfig.model_validate(
    {
        "name": "storage_test",
        "indicators": {"rsi_14": {"type": "rsi", "period": 14}},
        "fuzzy_sets": {"rsi_14": {"indicator": "rsi_14", "low": [0, 30, 50], "high": [50, 70, 100]}},
        "nn_inputs": [{"fuzzy_set": "rsi_14"}],
        "model": {"architecture": {"hidden_layers": [4], "dropout": 0.0}},
        "training_data": {"symbol": "EURUSD", "timeframe": "1h"},
    }
)
FEATURES = ["rsi_14_low", "rsi_14_high"]


def _save(models_dir: Path, seed: int = 0) -> Path:
    torch = pytest.importorskip("torch")
    from ktrdr.neural.mlp import build_mlp
    from ktrdr.training.model_storage import save_model

    torch.manual_seed(seed)
    net = build_mlp(len(FEATURES), STRATEGY.model.architecture)
    return save_model(
        models_dir,
        STRATEGY,
        net,
        feature_names=FEATURES,
        normalization={"mean": [0.5, 0.5], "std": [0.1, 0.2]},
        metrics={"test": {"accuracy": 0.61}},
        symbol="EURUSD",
        timeframe="1h",
    )


def test_round_trip(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from ktrdr.neural.mlp import predict_proba
    from ktrdr.training.model_storage import load_model

    path = _save(tmp_path)
    assert path == tmp_path / "storage_test" / "1h_v1"
    assert sorted(p.name for p in path.iterdir()) == ["metadata.json", "model.pt"]

    loaded = load_model(path)
    assert loaded.feature_names == FEATURES
    meta = loaded.metadata
    assert meta["symbol"] == "EURUSD" and meta["timeframe"] == "1h" and meta["version"] == 1
    assert meta["torch_version"] == torch.__version__
    assert meta["normalization"] == {"mean": [0.5, 0.5], "std": [0.1, 0.2]}
    assert StrategyConfig.model_validate(meta["strategy"]) == STRATEGY
    import yaml

    assert StrategyConfig.model_validate(yaml.safe_load(meta["strategy_yaml"])) == STRATEGY

    torch.manual_seed(0)
    from ktrdr.neural.mlp import build_mlp

    original = build_mlp(2, STRATEGY.model.architecture)
    x = [[0.1, 0.9], [0.7, 0.2]]
    assert predict_proba(loaded.network, x).tolist() == predict_proba(original, x).tolist()
    assert load_model(path / "model.pt").path == path


def test_versions_and_latest_pointer(tmp_path: Path) -> None:
    first, second = _save(tmp_path), _save(tmp_path, seed=1)
    assert (first.name, second.name) == ("1h_v1", "1h_v2")
    assert resolve_model_path(tmp_path, "storage_test", "1h") == second
    assert resolve_model_path(tmp_path, "storage_test", "1h", version=1) == first
    assert read_model_metadata(tmp_path, "storage_test", "1h")["version"] == 2
    models = list_models(tmp_path)
    assert [(m.version, m.is_latest) for m in models] == [(1, False), (2, True)]
    assert models[0].test_accuracy == 0.61 and models[0].symbol == "EURUSD"
    json.dumps([m.to_dict() for m in models])
    # no staging leftovers
    assert sorted(p.name for p in (tmp_path / "storage_test").iterdir()) == ["1h_latest", "1h_v1", "1h_v2"]


def test_latest_pointer_as_a_file(tmp_path: Path) -> None:
    _save(tmp_path)
    _save(tmp_path)
    pointer = tmp_path / "storage_test" / "1h_latest"
    pointer.unlink()
    pointer.write_text("1h_v1\n")
    assert resolve_model_path(tmp_path, "storage_test", "1h").name == "1h_v1"
    pointer.unlink()  # no pointer at all: the highest version
    assert resolve_model_path(tmp_path, "storage_test", "1h").name == "1h_v2"


def test_missing_and_malformed(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError):
        read_model_metadata(tmp_path, "nothing", "1h")
    with pytest.raises(ModelNotFoundError):
        read_model_metadata(tmp_path, "nothing", "1h", version=3)
    for strategy, timeframe in (("../etc", "1h"), ("a/b", "1h"), ("ok", "../1h"), ("ok", "1h/x")):
        with pytest.raises(InvalidNameError):
            read_model_metadata(tmp_path, strategy, timeframe)
    broken = tmp_path / "s" / "1h_v1"
    broken.mkdir(parents=True)
    (broken / "metadata.json").write_text("{not json")
    assert list_models(tmp_path) == []
    assert list_models(tmp_path / "absent") == []


def test_model_paths_stay_inside_the_models_dir(tmp_path: Path) -> None:
    path = _save(tmp_path / "models")
    assert model_path_within(tmp_path / "models", "storage_test/1h_v1") == path.resolve()
    assert model_path_within(tmp_path / "models", path / "model.pt") == path.resolve()
    assert model_path_within(tmp_path / "models", "storage_test/1h_latest") == path.resolve()
    with pytest.raises(InvalidNameError):
        model_path_within(tmp_path / "models", "../outside")
    with pytest.raises(ModelNotFoundError):
        model_path_within(tmp_path / "models", "storage_test/1h_v9")


def test_listing_loads_no_heavy_module(tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path;"
        "import ktrdr.training, ktrdr.backtesting;"
        "from ktrdr.training.model_storage import list_models, read_model_metadata;"
        f"list_models(Path({str(tmp_path)!r}));"
        "bad = [m for m in ('torch', 'numpy', 'pandas') if m in sys.modules];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
