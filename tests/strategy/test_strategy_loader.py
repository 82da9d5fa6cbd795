import subprocess
import sys
import textwrap

import pytest

from ktrdr.errors import InvalidNameError, StrategyNotFoundError, StrategyValidationError
from ktrdr.strategy.loader import (
    bundled_strategies_dir,
    get_strategy,
    list_strategies,
    load_strategy,
    parse_strategy,
)

MINIMAL = textwrap.dedent(
    """\
    name: tiny
    indicators:
      rsi_14: {type: rsi, period: 14}
      macd_12_26_9: {type: macd}
    fuzzy_sets:
      rsi:
        indicator: rsi_14
        low: [0, 20, 40]
        high: [60, 80, 100]
      hist:
        indicator: macd_12_26_9.histogram
        neg: {type: gaussian, parameters: [-1, 1]}
    nn_inputs:
      - fuzzy_set: rsi
      - fuzzy_set: hist
    training_data: {symbol: EURUSD, timeframe: 1h}
    """
)


def _locs(text: str) -> list[str]:
    with pytest.raises(StrategyValidationError) as exc:
        parse_strategy(text)
    assert exc.value.status_code == 422
    return [e["loc"] for e in exc.value.details["errors"]]


def test_minimal_strategy_parses_with_defaults():
    config = parse_strategy(MINIMAL)
    assert config.name == "tiny"
    assert config.fuzzy_sets["rsi"].sets["low"].type == "triangular"
    assert config.training.labels.threshold == 0.02
    assert config.indicator_columns()["macd_12_26_9"] == [
        "macd_12_26_9.macd",
        "macd_12_26_9.signal",
        "macd_12_26_9.histogram",
    ]


@pytest.mark.parametrize(
    ("old", "new", "loc"),
    [
        (
            "training_data: {symbol: EURUSD, timeframe: 1h}",
            "training_data: {symbol: EURUSD, timeframe: 2h}",
            "training_data.timeframe",
        ),
        ("nn_inputs:", "training: {labels: {threshold: 0}}\nnn_inputs:", "training.labels.threshold"),
        ("nn_inputs:", "training: {epochs: 0}\nnn_inputs:", "training.epochs"),
        (
            "nn_inputs:",
            "training: {data_split: {train: 0.9, validation: 0.2, test: 0.1}}\nnn_inputs:",
            "training.data_split",
        ),
        ("nn_inputs:", "model: {architecture: {dropout: 1.5}}\nnn_inputs:", "model.architecture.dropout"),
        ("nn_inputs:", "decisons: {}\nnn_inputs:", "decisons"),
        ("low: [0, 20, 40]", "low: [0, 40, 20]", "fuzzy_sets.rsi.low"),
        ("low: [0, 20, 40]", "low: [0, 20]", "fuzzy_sets.rsi.low"),
        (
            "{type: gaussian, parameters: [-1, 1]}",
            "{type: gaussian, parameters: [-1, 0]}",
            "fuzzy_sets.hist.neg",
        ),
        (
            "{type: gaussian, parameters: [-1, 1]}",
            "{type: bell, parameters: [-1, 1]}",
            "fuzzy_sets.hist.neg.type",
        ),
        ("rsi_14: {type: rsi, period: 14}", "rsi_14: {type: rsx, period: 14}", "indicators.rsi_14.type"),
        ("rsi_14: {type: rsi, period: 14}", "rsi_14: {type: rsi, period: 0}", "indicators.rsi_14.period"),
        ("rsi_14: {type: rsi, period: 14}", "rsi_14: {type: rsi, period: 2.5}", "indicators.rsi_14.period"),
        ("rsi_14: {type: rsi, period: 14}", "rsi_14: {type: rsi, period: true}", "indicators.rsi_14.period"),
        ("rsi_14: {type: rsi, period: 14}", "rsi_14: {type: rsi, lenght: 14}", "indicators.rsi_14.lenght"),
        ("rsi_14: {type: rsi, period: 14}", "rsi_14: {type: rsi, source: vwap}", "indicators.rsi_14.source"),
        (
            "macd_12_26_9: {type: macd}",
            "macd_12_26_9: {type: macd, fast: 30}",
            "indicators.macd_12_26_9.fast",
        ),
        ("macd_12_26_9.histogram", "macd_12_26_9.nope", "fuzzy_sets.hist.indicator"),
        ("macd_12_26_9.histogram", "macd_12_26_9", "fuzzy_sets.hist.indicator"),
        ("indicator: rsi_14", "indicator: rsi_14.value", "fuzzy_sets.rsi.indicator"),
        ("indicator: rsi_14", "indicator: rsi_99", "fuzzy_sets.rsi.indicator"),
        ("- fuzzy_set: hist", "- fuzzy_set: histo", "nn_inputs.1.fuzzy_set"),
        ("- fuzzy_set: hist", "- fuzzy_set: rsi", "nn_inputs.1.fuzzy_set"),
        ("name: tiny", "name: ../etc", "name"),
    ],
)
def test_errors_name_the_exact_key(old, new, loc):
    assert old in MINIMAL
    assert loc in _locs(MINIMAL.replace(old, new))


def test_every_problem_is_reported_not_just_the_first():
    text = MINIMAL.replace("period: 14}", "period: 0}").replace("macd_12_26_9.histogram", "macd_12_26_9.x")
    assert _locs(text) == ["indicators.rsi_14.period", "fuzzy_sets.hist.indicator"]


def test_upstream_v3_spellings_are_accepted():
    text = MINIMAL.replace("{type: macd}", "{type: MACD, fast_period: 8, slow_period: 21, signal_period: 5}")
    text = text.replace(
        "training_data: {symbol: EURUSD, timeframe: 1h}",
        "training_data:\n  symbols: {mode: single, symbol: EURUSD}\n"
        "  timeframes: {mode: single, timeframe: 1h}\n  history_required: 200",
    )
    config = parse_strategy(text)
    assert config.indicators["macd_12_26_9"]["fast_period"] == 8
    assert config.training_data.timeframe == "1h"


def test_yaml_syntax_errors_give_line_and_column():
    with pytest.raises(StrategyValidationError) as exc:
        parse_strategy("name: tiny\nindicators: {rsi: [\n")
    assert exc.value.details["line"] == 3
    assert "line 3, column" in exc.value.message


@pytest.mark.parametrize(
    ("text", "words"),
    [("", "empty"), ("# only a comment\n", "empty"), ("- a\n- b\n", "expected a mapping"), ("42", "mapping")],
)
def test_documents_that_are_not_mappings_are_clean_errors(text, words):
    with pytest.raises(StrategyValidationError) as exc:
        parse_strategy(text)
    assert words in exc.value.message


def test_huge_and_alias_bomb_documents_are_rejected():
    with pytest.raises(StrategyValidationError) as exc:
        parse_strategy("name: x\n" + "#" * 300_000)
    assert "limit" in exc.value.message
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n"
    for i, prev in zip("bcdefgh", "abcdefg", strict=True):
        bomb += (
            f"{i}: &{i} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
        )
    with pytest.raises(StrategyValidationError) as exc:
        parse_strategy(bomb)
    assert "more than" in exc.value.message


@pytest.mark.parametrize("number", [".nan", ".inf", "-.inf", ".NaN"])
def test_a_number_json_cannot_spell_makes_the_document_invalid(number):
    """YAML spells NaN and the infinities; no result, response or store could carry them."""
    text = (bundled_strategies_dir() / "rsi_macd_trend.yaml").read_text()
    text = text.replace("[0, 25, 45]", f"[{number}, 25, 45]", 1)
    assert number in text
    with pytest.raises(StrategyValidationError) as exc:
        parse_strategy(text)
    assert "holds a number that is not finite" in exc.value.message


def test_bundled_strategies_are_valid_and_listed():
    listed = list_strategies(None)
    names = [s.name for s in listed]
    assert len(names) >= 2
    assert all(s.source == "bundled" and s.error is None for s in listed)
    for summary in listed:
        config = load_strategy(summary.path)
        assert config.name == summary.name
        assert (summary.symbol, summary.timeframe) == (
            config.training_data.symbol,
            config.training_data.timeframe,
        )
    assert bundled_strategies_dir().is_dir()


def test_user_files_override_bundled_ones_and_invalid_ones_are_listed_with_their_error(tmp_path):
    bundled_name = list_strategies(None)[0].name
    (tmp_path / f"{bundled_name}.yaml").write_text(MINIMAL.replace("name: tiny", f"name: {bundled_name}"))
    (tmp_path / "broken.yaml").write_text("name: broken\nindicators: [\n")
    (tmp_path / "mine.yml").write_text(MINIMAL.replace("name: tiny", "name: mine"))
    (tmp_path / "README.txt").write_text("not a strategy")
    listed = {s.name: s for s in list_strategies(tmp_path)}
    assert listed[bundled_name].source == "user"
    assert listed["broken"].error is not None and "line" in listed["broken"].error
    assert listed["mine"].error is None and listed["mine"].symbol == "EURUSD"
    config, path = get_strategy(bundled_name, tmp_path)
    assert path.parent == tmp_path and config.fuzzy_sets.keys() == {"rsi", "hist"}
    config, path = get_strategy(bundled_name, None)
    assert path.parent == bundled_strategies_dir()


@pytest.mark.parametrize("bad", ["../etc/passwd", "a/b", "", "x" * 65, ".hidden", "a\x00"])
def test_get_strategy_rejects_path_like_names(bad, tmp_path):
    with pytest.raises(InvalidNameError):
        get_strategy(bad, tmp_path)


def test_get_strategy_not_found(tmp_path):
    with pytest.raises(StrategyNotFoundError) as exc:
        get_strategy("no_such_strategy", tmp_path)
    assert exc.value.status_code == 404


def test_load_strategy_errors_name_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(MINIMAL.replace("period: 14", "period: -1"))
    with pytest.raises(StrategyValidationError) as exc:
        load_strategy(path)
    assert exc.value.message.startswith("bad.yaml:")
    with pytest.raises(StrategyNotFoundError):
        load_strategy(tmp_path / "absent.yaml")


def test_strategy_and_catalog_modules_never_import_numeric_packages():
    code = textwrap.dedent(
        """
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split('.')[0] in ('numpy', 'pandas', 'torch'):
                    raise ImportError('blocked ' + name)
        sys.meta_path.insert(0, Block())
        import ktrdr.strategy.loader, ktrdr.indicators, ktrdr.features.names
        import ktrdr.data, ktrdr.data.catalog, ktrdr.data.csv_import, ktrdr.data.sample
        from ktrdr.strategy.loader import list_strategies, get_strategy
        from ktrdr.features.names import feature_names
        for s in list_strategies(None):
            config, _ = get_strategy(s.name)
            assert feature_names(config)
        print('ok')
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
