"""Pure report computations: overlap splitting, provider mapping, handover rule, phases."""

from __future__ import annotations

import pytest
from mpstream.measurement.recorder.csvformat import Delta, Row
from mpstream.measurement.report.analysis import (
    Interval,
    Phase,
    ProviderSeries,
    binned_rates,
    bytes_between,
    handover_time,
    interface_providers,
    node_directions,
    node_order,
    phase_traffic,
    phases_from_timeline,
    provider_series,
)

META = {"inventory": {
    "providers": [{"name": "isp2", "index": 2, "nic": "nic2"}, {"name": "isp1", "index": 1, "nic": "nic1"}],
    "nodes": {"c": {"roles": ["client"], "interfaces": {"wlan0": "isp1"}}, "s": {"roles": ["server"]},
              "p": {"roles": ["push"]}},
}}


def row(t, name, tx=0, rx=0):
    return Row(t, name, Delta(rx_bytes=rx, tx_bytes=tx), 0.0, 0.0)


def test_interval_straddling_a_boundary_is_split_by_overlap():
    ivs = [Interval(0.0, 1.0, 1000, 0), Interval(1.0, 2.0, 1000, 0)]
    assert bytes_between(ivs, 0.0, 1.25, "tx") == pytest.approx(1250)
    assert bytes_between(ivs, 1.25, 5.0, "tx") == pytest.approx(750)
    assert bytes_between(ivs, 5.0, 6.0, "tx") == 0


def test_interface_to_provider_mapping_and_fallbacks():
    assert interface_providers(META, "c", ["wlan0", "lo"]) == {"wlan0": "isp1"}
    assert interface_providers(META, "s", ["nic1", "nic2", "lo", "total"]) == {"nic1": "isp1", "nic2": "isp2"}
    assert interface_providers({}, "x", ["eth0", "lo", "total"]) == {"eth0": "eth0"}


def test_roles_decide_directions_and_order():
    assert node_directions(META, "p") == ("tx",)
    assert node_directions(META, "c") == ("rx",)
    assert node_directions(META, "s") == ("tx", "rx")
    assert node_directions(META, "unknown") == ("tx", "rx")
    assert node_order(META, ["c", "zz", "s", "p"]) == ["p", "s", "c", "zz"]
    assert node_order({}, ["client10", "client2", "client1"]) == ["client1", "client2", "client10"]


def test_series_from_rows_skips_first_row_and_merges_nics_of_one_provider():
    rows = [row(100.0, "a", 0), row(100.0, "b", 0), row(100.5, "a", 10), row(100.5, "b", 5), row(101.0, "a", 7)]
    series = provider_series(rows, 100.0, {"a": "isp1", "b": "isp1"})
    assert [(iv.start_s, iv.end_s, iv.tx_bytes) for iv in series["isp1"].intervals] == [(0.0, 0.5, 15), (0.5, 1.0, 7)]


def test_handover_never_within_phase_is_none():
    series = {"isp1": ProviderSeries("isp1", [Interval(0, 1, 100, 0), Interval(1, 2, 100, 0)]),
              "isp2": ProviderSeries("isp2", [Interval(0, 1, 0, 0), Interval(1, 2, 0, 0)])}
    assert handover_time(series, Phase("isp1 down", ("isp1",), 1.0, 2.0), "tx") is None
    assert handover_time(series, Phase("isp2 down", ("isp2",), 1.0, 2.0), "tx") == 1.0
    assert handover_time(series, Phase("quiet", (), 0.0, 2.0), "rx") is None


def test_phase_traffic_shares_and_empty_direction():
    series = {"isp1": ProviderSeries("isp1", [Interval(0, 2, 300, 0)]),
              "isp2": ProviderSeries("isp2", [Interval(0, 2, 100, 0)])}
    traffic = phase_traffic(series, Phase("p", (), 0.0, 2.0))
    assert traffic["isp1"]["tx_share"] == 0.75 and traffic["isp2"]["tx_bytes"] == 100
    assert traffic["isp1"]["tx_mean_bps"] == 1200.0 and traffic["isp1"]["rx_share"] is None


def test_phases_relative_to_t0_and_unfinished_phase_ends_with_the_data():
    timeline = {"t0": 50.0, "phases": [
        {"name": "all up", "down": [], "start": 50.0, "end": 75.0},
        {"name": "isp2 down", "down": ["isp2"], "start": 75.0, "end": None}]}
    assert phases_from_timeline(timeline) == [Phase("all up", (), 0.0, 25.0)]
    assert phases_from_timeline(timeline, data_end=83.5) == [Phase("all up", (), 0.0, 25.0),
                                                             Phase("isp2 down", ("isp2",), 25.0, 33.5)]


def test_binned_rates_average_samples_into_fixed_bins():
    ivs = [
        Interval(0.1 * k, 0.1 * (k + 1), 1000 if k % 2 else 0, 0) for k in range(10)]
    edges, rates = binned_rates(ivs, "tx", 0.5)
    assert edges == pytest.approx([0.0, 0.5, 1.0])
    # bins of five 0.1 s samples alternating 0 and 1000 bytes: 2000 or 3000 bytes per 0.5 s
    assert rates == pytest.approx([8 * 2000 / 0.5, 8 * 3000 / 0.5])
    raw_edges, raw = binned_rates(ivs, "tx", 0)
    assert len(raw_edges) == 11 and raw[1] == pytest.approx(80_000)
    assert binned_rates([], "tx", 0.5) == ([], [])


def test_bins_lie_on_a_grid_from_t0():
    ivs = [Interval(-0.3 + 0.1 * k, -0.2 + 0.1 * k, 100, 0) for k in range(10)]  # -0.3 .. 0.7
    edges, rates = binned_rates(ivs, "tx", 0.5)
    assert edges == pytest.approx([-0.5, 0.0, 0.5, 1.0])
    assert rates == pytest.approx([8000.0, 8000.0, 8000.0])  # partly covered bins: rate over the covered part
