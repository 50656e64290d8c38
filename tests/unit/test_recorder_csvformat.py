"""The CSV line format: bwm-ng's 21 rate-mode fields, written and read back."""

from __future__ import annotations

import pytest
from mpstream.measurement.recorder.csvformat import (
    FIELDS,
    CSVFormatError,
    Delta,
    SampleFormatter,
    format_row,
    parse_line,
    parse_text,
)

# A line written by bwm-ng 0.6.3 (`bwm-ng -o csv -T rate -t 1000`) on this machine.
BWMNG_LINE = (
    "1795471675.470187;lo;272687.00;272687.00;545374.00;272687;272687;306.00;306.00;612.00;306;306;"
    "0.00;0.00;0;0;2181496.00;2181496.00;4362992.00;2181496;2181496\n"
)


def test_format_has_bwmng_fields_in_order():
    line = format_row(1795471675.470187, "nic1", Delta(rx_bytes=1000, tx_bytes=3000, rx_packets=4,
                                                       tx_packets=6, rx_errors=1, tx_errors=2), 0.5)
    parts = line.rstrip("\n").split(";")
    assert len(parts) == len(FIELDS) == 21
    assert parts == [
        "1795471675.470187", "nic1",
        "6000.00", "2000.00", "8000.00", "1000", "3000",
        "12.00", "8.00", "20.00", "4", "6",
        "4.00", "2.00", "1", "2",
        "48000.00", "16000.00", "64000.00", "8000", "24000",
    ]


def test_timestamp_keeps_microseconds():
    line = format_row(1700000000.000001, "x", Delta(), 1.0)
    assert line.startswith("1700000000.000001;x;")


def test_zero_interval_writes_zero_rates():
    line = format_row(1.0, "x", Delta(rx_bytes=5), 0.0)
    assert line.split(";")[3] == "0.00" and line.split(";")[5] == "5"


def test_reads_a_bwmng_line():
    row = parse_line(BWMNG_LINE)
    assert row.name == "lo"
    assert row.timestamp == pytest.approx(1795471675.470187)
    assert row.delta.rx_bytes == 272687 and row.delta.tx_packets == 306
    assert row.rx_rate == 272687.0


def test_round_trip():
    delta = Delta(rx_bytes=123456789012, tx_bytes=42, rx_packets=7, tx_packets=1, rx_errors=0, tx_errors=3)
    row = parse_line(format_row(12.5, "eth0", delta, 0.1))
    assert row.delta == delta and row.name == "eth0" and row.timestamp == 12.5
    assert row.rx_rate == pytest.approx(1234567890120.0)


def test_torn_last_line_is_skipped_but_bad_middle_line_is_an_error():
    good = format_row(1.0, "a", Delta(rx_bytes=1), 1.0)
    assert len(parse_text(good + good[:20])) == 1
    with pytest.raises(CSVFormatError):
        parse_text(good + "garbage;x\n" + good)


def test_a_sample_is_the_lines_format_row_writes_with_idle_rows_reused():
    formatter = SampleFormatter()
    busy = Delta(rx_bytes=1500, tx_bytes=40, rx_packets=1, tx_packets=1)
    for timestamp in (1795471675.470187, 1795471675.570301):
        rows = [("lo", Delta()), ("nic1", busy), ("nic2", Delta()), ("total", busy)]
        expected = "".join(format_row(timestamp, name, delta, 0.1) for name, delta in rows)
        assert formatter.format(timestamp, 0.1, rows) == expected
    assert formatter.format(1.0, 0.1, []) == ""


def test_an_idle_sample_handed_again_gets_the_new_timestamp_only():
    formatter = SampleFormatter()
    idle = [("lo", Delta()), ("nic1", Delta()), ("total", Delta())]
    for timestamp in (1795471675.470187, 1795471675.570301):
        expected = "".join(format_row(timestamp, name, delta, 0.1) for name, delta in idle)
        assert formatter.format(timestamp, 0.1, idle) == expected
    busy = [("lo", Delta()), ("nic1", Delta(rx_bytes=3)), ("total", Delta(rx_bytes=3))]
    for elapsed in (0.1, 0.2):  # rows that moved are formatted each time: their rates depend on the interval
        expected = "".join(format_row(2.0, name, delta, elapsed) for name, delta in busy)
        assert formatter.format(2.0, elapsed, busy) == expected
    assert formatter.format(3.0, 0.1, idle) == "".join(format_row(3.0, n, d, 0.1) for n, d in idle)
