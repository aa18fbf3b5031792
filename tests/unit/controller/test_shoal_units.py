"""shoal.units: durations, sizes, CPU counts, protobuf conversions."""

from __future__ import annotations

import time

import pytest
from google.protobuf import timestamp_pb2

from shoal import units


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("5s", 5.0),
        ("1m30s", 90.0),
        ("250ms", 0.25),
        ("1h", 3600.0),
        ("1h1m1s", 3661.0),
        ("1.5s", 1.5),
        ("10us", 1e-5),
        ("100ns", 1e-7),
        ("2", 2.0),
        ("0.5", 0.5),
        ("0", 0.0),
        ("  5s  ", 5.0),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert units.parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "s", "5x", "5s3", "1m 30s", "-1s", "-1", "five", "5S", "1d"])
def test_bad_durations_are_value_errors(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        units.parse_duration(text)


@pytest.mark.parametrize("text", ["nan", "inf", "infinity", "-inf"])
def test_non_finite_durations_are_value_errors(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        units.parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(5, "5s"), (90, "1m30s"), (0.25, "250ms"), (3600, "1h"), (3661, "1h1m1s"), (0, "0s"), (1.5, "1.5s"), (7200, "2h")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert units.format_duration(seconds) == text


@pytest.mark.parametrize("seconds", [0, 0.001, 0.25, 1, 59.5, 60, 61, 3599, 3600, 86400, 90061.5])
def test_durations_round_trip(seconds: float) -> None:
    assert units.parse_duration(units.format_duration(seconds)) == pytest.approx(seconds)
    assert units.from_duration(units.to_duration(seconds)) == pytest.approx(seconds)


def test_to_duration_keeps_nanoseconds() -> None:
    assert units.to_duration(1.5).ToNanoseconds() == 1_500_000_000
    assert units.to_duration(1e-9).ToNanoseconds() == 1


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("100", 100),
        ("512M", 512 << 20),
        ("512m", 512 << 20),
        ("1g", 1 << 30),
        ("1G", 1 << 30),
        ("64MiB", 64 << 20),
        ("64MB", 64 << 20),
        ("2k", 2048),
        ("1.5G", 3 << 29),
        ("1T", 1 << 40),
        ("100B", 100),
        (" 8 M ", 8 << 20),
    ],
)
def test_parse_size(text: str, size: int) -> None:
    assert units.parse_size(text) == size


@pytest.mark.parametrize("text", ["", "M", "-1M", "1X", "1.2.3G", "ten", "1 G B"])
def test_bad_sizes_are_value_errors(text: str) -> None:
    with pytest.raises(ValueError, match="invalid size"):
        units.parse_size(text)


@pytest.mark.parametrize(
    ("size", "text"), [(100, "100B"), (1536, "1.5KiB"), (512 << 20, "512MiB"), (1 << 30, "1GiB"), (3 << 40, "3TiB")]
)
def test_format_size(size: int, text: str) -> None:
    assert units.format_size(size) == text


@pytest.mark.parametrize("size", [0, 1, 1023, 1024, 1536, 64 << 20, 512 << 20, 1 << 30, 5 << 40])
def test_sizes_round_trip(size: int) -> None:
    assert units.parse_size(units.format_size(size)) == size


@pytest.mark.parametrize(
    ("text", "nanos"), [("0.5", 500_000_000), ("2", 2_000_000_000), ("0", 0), ("0.001", 1_000_000)]
)
def test_parse_cpus(text: str, nanos: int) -> None:
    assert units.parse_cpus(text) == nanos


@pytest.mark.parametrize("text", ["", "two", "-1", "1c"])
def test_bad_cpu_counts_are_value_errors(text: str) -> None:
    with pytest.raises(ValueError, match="invalid CPU count"):
        units.parse_cpus(text)


@pytest.mark.parametrize("text", ["nan", "inf"])
def test_non_finite_cpu_counts_are_value_errors(text: str) -> None:
    with pytest.raises(ValueError, match="invalid CPU count"):
        units.parse_cpus(text)


def test_timestamps_round_trip_and_unset_is_zero() -> None:
    t = 1_700_000_000.25
    assert units.from_timestamp(units.to_timestamp(t)) == pytest.approx(t, abs=1e-6)
    assert units.from_timestamp(units.to_timestamp(0)) == 0
    assert units.from_timestamp(timestamp_pb2.Timestamp()) == 0.0


def test_stamp_now_sets_the_current_wall_clock_time() -> None:
    ts = timestamp_pb2.Timestamp()
    before = time.time()
    units.stamp_now(ts)
    after = time.time()
    assert before - 1e-6 <= units.from_timestamp(ts) <= after + 1e-6
    assert 0 <= ts.nanos < 1_000_000_000
    ts.ToDatetime()  # valid for protobuf's own range check
