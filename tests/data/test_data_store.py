import datetime as dt

import pytest

np = pytest.importorskip("numpy")
pd = pytest.importorskip("pandas")

from ktrdr.data.catalog import dataset_info, list_datasets  # noqa: E402
from ktrdr.data.csv_import import import_csv  # noqa: E402
from ktrdr.data.sample import SAMPLE_DATASETS, generate_ohlcv, install_sample_data  # noqa: E402
from ktrdr.data.store import load_ohlcv, save_ohlcv, validate_ohlcv  # noqa: E402
from ktrdr.errors import DataNotFoundError, DataValidationError, InvalidDateRangeError  # noqa: E402


def test_save_then_load_is_lossless_and_canonical(tmp_path):
    df = generate_ohlcv(300, seed=1)
    info = save_ohlcv(df, tmp_path, "eurusd", "1h")
    assert (info.symbol, info.rows, info.start) == ("EURUSD", 300, dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    loaded = load_ohlcv(tmp_path, "EURUSD", "1h")
    pd.testing.assert_frame_equal(loaded, df, check_freq=False, check_index_type=False)
    assert str(loaded.index.tz) == "UTC" and loaded.index.name == "timestamp"
    assert list(loaded.columns) == ["open", "high", "low", "close", "volume"]
    assert (loaded.dtypes == "float64").all()
    assert dataset_info(tmp_path, "EURUSD", "1h") == info


def test_load_filters_by_date_range(tmp_path):
    save_ohlcv(generate_ohlcv(100, seed=1), tmp_path, "X", "1h")
    part = load_ohlcv(tmp_path, "X", "1h", start="2020-01-02", end=dt.datetime(2020, 1, 3))
    assert len(part) == 24
    assert part.index[0] == pd.Timestamp("2020-01-02", tz="UTC")
    with pytest.raises(InvalidDateRangeError):
        load_ohlcv(tmp_path, "X", "1h", start="2020-01-03", end="2020-01-02")
    with pytest.raises(InvalidDateRangeError):
        load_ohlcv(tmp_path, "X", "1h", start="2020-01-03", end="2020-01-03")
    with pytest.raises(DataNotFoundError):
        load_ohlcv(tmp_path, "Y", "1h")


def test_loading_reads_date_headers_and_the_importers_output(tmp_path):
    (tmp_path / "D_1d.csv").write_text("date,open,high,low,close,volume\n2024-01-01,1,2,0.5,1.5,10\n")
    df = load_ohlcv(tmp_path, "D", "1d")
    assert df.index[0] == pd.Timestamp("2024-01-01", tz="UTC")
    content = b"timestamp,open,high,low,close,volume\n2024-01-01T00:00:00Z,1,2,0.5,1.5,10\n"
    import_csv(tmp_path, "I", "1d", content)
    pd.testing.assert_frame_equal(load_ohlcv(tmp_path, "I", "1d"), df)


@pytest.mark.parametrize(
    ("column", "row", "value", "rule"),
    [
        ("high", 5, 0.5, "high_is_max"),
        ("low", 7, "between", "low_is_min"),
        ("close", 3, np.nan, "finite"),
        ("volume", 2, -1.0, "volume_non_negative"),
        ("open", 4, -1.0, "positive_price"),
    ],
)
def test_validate_ohlcv_shares_the_importers_rules_and_messages(tmp_path, column, row, value, rule):
    df = generate_ohlcv(20, seed=2)
    if value == "between":  # above open and close, still below high: breaks only the low rule
        o, h, c = df.iloc[row][["open", "high", "close"]]
        value = (max(o, c) + h) / 2 + 1e-9
        df.loc[df.index[row], "high"] = h + 1e-3
    df.loc[df.index[row], column] = value
    with pytest.raises(DataValidationError) as frame_error:
        validate_ohlcv(df)
    assert frame_error.value.details["rule"] == rule
    assert frame_error.value.details["row"] == row
    assert frame_error.value.message.startswith(f"row {row} (")
    # The same bar through the CSV importer: same rule, same wording after the position.
    text = "timestamp,open,high,low,close,volume\n" + "".join(
        f"{ts:%Y-%m-%dT%H:%M:%SZ},{o!r},{h!r},{lo!r},{c!r},{v!r}\n" for ts, (o, h, lo, c, v) in df.iterrows()
    )
    with pytest.raises(DataValidationError) as csv_error:
        import_csv(tmp_path, "Z", "1h", text.replace("nan", "").encode())
    assert csv_error.value.details["rule"] == rule
    assert csv_error.value.details["line"] == row + 2
    assert csv_error.value.message.split(": ", 1)[1] == frame_error.value.message.split(": ", 1)[1]


def test_validate_ohlcv_rejects_unsorted_and_duplicate_timestamps():
    df = generate_ohlcv(10, seed=2)
    shuffled = df.iloc[[0, 1, 3, 2, 4]]
    with pytest.raises(DataValidationError) as exc:
        validate_ohlcv(shuffled)
    assert exc.value.details["rule"] == "increasing_timestamps" and exc.value.details["row"] == 3
    duplicated = pd.concat([df.iloc[:3], df.iloc[2:4]])
    with pytest.raises(DataValidationError):
        validate_ohlcv(duplicated)


def test_corrupt_file_on_disk_is_a_validation_error_naming_the_line(tmp_path):
    (tmp_path / "B_1h.csv").write_text(
        "timestamp,open,high,low,close,volume\n"
        "2024-01-01T00:00:00Z,1,2,0.5,1.5,10\n"
        "2024-01-01T01:00:00Z,1,0.9,0.5,1.5,10\n"
    )
    with pytest.raises(DataValidationError) as exc:
        load_ohlcv(tmp_path, "B", "1h")
    assert exc.value.message.startswith("line 3 (2024-01-01T01:00:00Z): high must be")


def test_generator_is_deterministic_valid_and_has_both_regimes():
    a = generate_ohlcv(3000, seed=4)
    pd.testing.assert_frame_equal(a, generate_ohlcv(3000, seed=4))
    assert not a.equals(generate_ohlcv(3000, seed=5))
    validate_ohlcv(a)
    returns = np.diff(np.log(a["close"].to_numpy()))
    # Momentum in trends and mean reversion in ranges both leave a trace in 24-bar returns:
    # their spread is clearly wider than a random walk's with the same bar volatility.
    r24 = np.diff(np.log(a["close"].to_numpy()[::24]))
    assert r24.std() > 1.3 * returns.std() * np.sqrt(24)
    daily = generate_ohlcv(500, timeframe="1d", seed=1)
    assert (daily.index[1] - daily.index[0]) == pd.Timedelta(days=1)
    validate_ohlcv(daily)


def test_shipped_samples_equal_the_generator_output(tmp_path):
    installed = install_sample_data(tmp_path / "data")
    assert [(i.symbol, i.timeframe) for i in installed] == [(s, tf) for s, tf, _, _ in SAMPLE_DATASETS]
    for symbol, timeframe, bars, seed in SAMPLE_DATASETS:
        shipped = (tmp_path / "data" / f"{symbol}_{timeframe}.csv").read_bytes()
        save_ohlcv(
            generate_ohlcv(bars, timeframe=timeframe, seed=seed), tmp_path / "fresh", symbol, timeframe
        )
        assert shipped == (tmp_path / "fresh" / f"{symbol}_{timeframe}.csv").read_bytes()
    total = sum(i.size_bytes for i in installed)
    assert total < 1_500_000


def test_install_sample_data_keeps_existing_datasets(tmp_path):
    save_ohlcv(generate_ohlcv(5, seed=9), tmp_path, "EURUSD", "1h")
    installed = install_sample_data(tmp_path)
    assert ("EURUSD", "1h") not in [(i.symbol, i.timeframe) for i in installed]
    assert dataset_info(tmp_path, "EURUSD", "1h").rows == 5
    assert install_sample_data(tmp_path) == []
    assert len(list_datasets(tmp_path)) == len(SAMPLE_DATASETS)
