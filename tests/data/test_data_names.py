import pytest

from ktrdr.data.names import dataset_filename, parse_dataset_filename
from ktrdr.errors import InvalidNameError
from ktrdr.names import validate_symbol, validate_timeframe


def test_symbol_is_normalised_to_upper_case():
    assert validate_symbol("eurusd") == "EURUSD"
    assert validate_symbol(" btc-usd ") == "BTC-USD"


@pytest.mark.parametrize(
    "bad", ["", "../x", "a/b", "a\\b", "x\x00y", ".hidden", "-dash", "A" * 33, "eur usd", "a.b", "é"]
)
def test_path_like_or_malformed_symbols_are_rejected(bad):
    with pytest.raises(InvalidNameError) as exc:
        validate_symbol(bad)
    assert exc.value.status_code == 400
    assert "invalid symbol" in exc.value.message


def test_non_string_symbol_is_rejected():
    with pytest.raises(InvalidNameError):
        validate_symbol(None)  # type: ignore[arg-type]


@pytest.mark.parametrize("tf", ["1m", "5m", "15m", "30m", "1h", "4h", "1d", "1w"])
def test_known_timeframes_pass(tf):
    assert validate_timeframe(tf) == tf


@pytest.mark.parametrize("bad", ["", "1H", "2h", "../1h", "1h/..", "1d\x00", "daily"])
def test_unknown_timeframes_are_rejected_with_the_allowed_list(bad):
    with pytest.raises(InvalidNameError) as exc:
        validate_timeframe(bad)
    assert "1m, 5m, 15m, 30m, 1h, 4h, 1d, 1w" in exc.value.message


def test_dataset_filename_round_trips():
    name = dataset_filename("eurusd", "1h")
    assert name == "EURUSD_1h.csv"
    assert parse_dataset_filename(name) == ("EURUSD", "1h")
    assert parse_dataset_filename("BTC_USD_4h.csv") == ("BTC_USD", "4h")
    assert parse_dataset_filename("notes.txt") is None
    assert parse_dataset_filename("EURUSD_2h.csv") is None
    # A store file names its symbol as the store writes it: upper case, ASCII, nothing else.
    for foreign in ("eurusd_1h.csv", "EurUsd_1h.csv", "STRAẞE_1h.csv", "_1h.csv", "..%2F_1h.csv"):
        assert parse_dataset_filename(foreign) is None, foreign
