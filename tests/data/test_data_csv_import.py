import datetime as dt
import os

import pytest

from ktrdr.data.catalog import dataset_info, list_datasets
from ktrdr.data.csv_import import import_csv
from ktrdr.errors import ConflictError, DataNotFoundError, DataValidationError, InvalidNameError

GOOD = b"""date,open,high,low,close,volume
2024-01-01T00:00:00Z,1.10,1.12,1.09,1.11,100
2024-01-01T01:00:00Z,1.11,1.13,1.10,1.12,0
2024-01-01T02:00:00+01:00,1.12,1.14,1.11,1.13,250.5
"""


def _bad(row: str) -> bytes:
    return GOOD + row.encode() + b"\n"


def test_import_writes_the_canonical_file_and_reports_its_metadata(tmp_path):
    content = GOOD.replace(b"2024-01-01T02:00:00+01:00", b"2024-01-01T03:00:00+01:00")
    info = import_csv(tmp_path, "eurusd", "1h", content)
    assert (info.symbol, info.timeframe, info.rows) == ("EURUSD", "1h", 3)
    assert info.start == dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    assert info.end == dt.datetime(2024, 1, 1, 2, tzinfo=dt.UTC)  # 03:00+01:00 stored as 02:00Z
    text = (tmp_path / "EURUSD_1h.csv").read_text().splitlines()
    assert text[0] == "timestamp,open,high,low,close,volume"
    assert text[1] == "2024-01-01T00:00:00Z,1.1,1.12,1.09,1.11,100.0"
    assert info.size_bytes == (tmp_path / "EURUSD_1h.csv").stat().st_size


def test_offsets_are_converted_to_utc_and_checked_for_order(tmp_path):
    # 02:00+01:00 is 01:00Z: equal to the previous row, so the order rule fires on line 4.
    with pytest.raises(DataValidationError) as exc:
        import_csv(tmp_path, "EURUSD", "1h", GOOD)
    assert exc.value.details["rule"] == "increasing_timestamps"
    assert exc.value.details["line"] == 4
    assert "line 4" in exc.value.message and "strictly increasing" in exc.value.message


@pytest.mark.parametrize(
    ("row", "rule", "words"),
    [
        ("2024-01-01T05:00:00Z,1.1,1.0,1.05,1.08,10", "high_is_max", "high must be >="),
        ("2024-01-01T05:00:00Z,1.1,1.2,1.15,1.12,10", "low_is_min", "low must be <="),
        ("2024-01-01T05:00:00Z,0,1.2,-1,1.1,10", "positive_price", "must be > 0"),
        ("2024-01-01T05:00:00Z,1.1,1.2,1.0,1.1,-1", "volume_non_negative", "volume must be >= 0"),
        ("2024-01-01T05:00:00Z,1.1,,1.0,1.1,1", "finite", "no NaN"),
        ("2024-01-01T05:00:00Z,1.1,nan,1.0,1.1,1", "finite", "no NaN"),
        ("2023-12-31T00:00:00Z,1.1,1.2,1.0,1.1,1", "increasing_timestamps", "strictly increasing"),
        ("2024-01-01T05:00:00Z,abc,1.2,1.0,1.1,1", "number", "is not a number"),
        ("yesterday,1.1,1.2,1.0,1.1,1", "timestamp_format", "invalid timestamp"),
        ("2024-01-01T05:00:00Z,1.1,1.2,1.0", "field_count", "expected 6 fields"),
    ],
)
def test_each_rule_names_the_line_and_the_rule(tmp_path, row, rule, words):
    good = GOOD.replace(b"2024-01-01T02:00:00+01:00", b"2024-01-01T02:00:00Z")
    with pytest.raises(DataValidationError) as exc:
        import_csv(tmp_path, "EURUSD", "1h", good + row.encode() + b"\n")
    assert exc.value.details["rule"] == rule
    assert exc.value.details["line"] == 5
    assert "line 5" in exc.value.message and words in exc.value.message
    assert exc.value.status_code == 422
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a temp file


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "empty"),
        (b"timestamp,open,high,low,close,volume\n", "no data rows"),
        (b"open,high,low,close,volume\n1,1,1,1,1\n", "exactly one time column"),
        (b"timestamp,open,high,low,close\n", "missing volume"),
        (b"timestamp,open,high,low,close,volume,adj close\n", "unknown 'adj close'"),
        (b"\xff\xfe\x00", "not UTF-8"),
    ],
)
def test_bad_files_get_clear_errors(tmp_path, content, words):
    with pytest.raises(DataValidationError) as exc:
        import_csv(tmp_path, "EURUSD", "1h", content)
    assert words in exc.value.message


def test_header_is_case_insensitive_and_in_any_order_and_dates_are_accepted(tmp_path):
    content = (
        b"\xef\xbb\xbfDate,Volume,Close,Low,High,Open\n2024-01-01,5,1.5,1,2,1.2\n2024-01-02,6,1.6,1.1,2,1.5\n"
    )
    info = import_csv(tmp_path, "SPY", "1d", content)
    assert info.rows == 2
    lines = (tmp_path / "SPY_1d.csv").read_text().splitlines()
    assert lines[1] == "2024-01-01T00:00:00Z,1.2,2.0,1.0,1.5,5.0"


def test_existing_dataset_is_a_conflict_unless_overwrite(tmp_path):
    good = GOOD.replace(b"2024-01-01T02:00:00+01:00", b"2024-01-01T02:00:00Z")
    import_csv(tmp_path, "EURUSD", "1h", good)
    with pytest.raises(ConflictError):
        import_csv(tmp_path, "EURUSD", "1h", good)
    one_row = b"timestamp,open,high,low,close,volume\n2025-01-01T00:00:00Z,2,2,2,2,2\n"
    info = import_csv(tmp_path, "EURUSD", "1h", one_row, overwrite=True)
    assert info.rows == 1
    assert dataset_info(tmp_path, "EURUSD", "1h").rows == 1


def test_a_failed_overwrite_keeps_the_previous_file(tmp_path):
    good = GOOD.replace(b"2024-01-01T02:00:00+01:00", b"2024-01-01T02:00:00Z")
    import_csv(tmp_path, "EURUSD", "1h", good)
    before = (tmp_path / "EURUSD_1h.csv").read_bytes()
    with pytest.raises(DataValidationError):
        import_csv(tmp_path, "EURUSD", "1h", _bad("2024-01-01T05:00:00Z,1,0.5,1,1,1"), overwrite=True)
    assert (tmp_path / "EURUSD_1h.csv").read_bytes() == before


def test_names_are_validated_before_anything_is_read(tmp_path):
    with pytest.raises(InvalidNameError):
        import_csv(tmp_path, "../evil", "1h", GOOD)
    with pytest.raises(InvalidNameError):
        import_csv(tmp_path, "EURUSD", "2h", GOOD)


def test_catalog_lists_imported_datasets_and_ignores_other_files(tmp_path):
    good = GOOD.replace(b"2024-01-01T02:00:00+01:00", b"2024-01-01T02:00:00Z")
    import_csv(tmp_path, "EURUSD", "1h", good)
    import_csv(tmp_path, "AAPL", "1d", good)
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "weird_2h.csv").write_text("x")
    listed = list_datasets(tmp_path)
    assert [(d.symbol, d.timeframe) for d in listed] == [("AAPL", "1d"), ("EURUSD", "1h")]
    assert listed[1].end == dt.datetime(2024, 1, 1, 2, tzinfo=dt.UTC)


def test_catalog_rescans_when_the_file_changed_behind_its_back(tmp_path):
    good = GOOD.replace(b"2024-01-01T02:00:00+01:00", b"2024-01-01T02:00:00Z")
    import_csv(tmp_path, "EURUSD", "1h", good)
    path = tmp_path / "EURUSD_1h.csv"
    with path.open("a") as f:
        f.write("2024-01-01T03:00:00Z,1.1,1.2,1.0,1.1,1.0\n")
    os.utime(path, ns=(1, 1))
    info = dataset_info(tmp_path, "EURUSD", "1h")
    assert info.rows == 4
    assert info.end == dt.datetime(2024, 1, 1, 3, tzinfo=dt.UTC)


def test_catalog_reads_files_without_sidecar_or_trailing_newline(tmp_path):
    (tmp_path / "X_1d.csv").write_text(
        "date,open,high,low,close,volume\n2024-01-01,1,1,1,1,1\n2024-01-02,1,1,1,1,1"
    )
    info = dataset_info(tmp_path, "x", "1d")
    assert (info.rows, info.start, info.end) == (
        2,
        dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        dt.datetime(2024, 1, 2, tzinfo=dt.UTC),
    )


def test_missing_dataset_and_missing_directory(tmp_path):
    with pytest.raises(DataNotFoundError) as exc:
        dataset_info(tmp_path, "EURUSD", "1h")
    assert exc.value.status_code == 404
    assert list_datasets(tmp_path / "absent") == []
