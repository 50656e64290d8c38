"""The overview heatmap: every node and provider of a 20-node run in one figure."""

from __future__ import annotations

from mpstream.measurement.report.overview import draw_overview, overview_grid

PROVIDERS = ["isp1", "isp2", "isp3"]
PHASES = [("all up", []), ("isp2 down", ["isp2"]), ("isp1 down, isp2 up", ["isp1"]), ("all up again", [])]


def made_up_summary(clients: int = 18) -> dict:
    nodes = {"push1": ["tx"], "server1": ["tx", "rx"]} | {f"client{k}": ["rx"] for k in range(1, clients + 1)}
    info = {n: {"directions": d, "interfaces": {f"nic{i}": p for i, p in enumerate(PROVIDERS, start=1)}}
            for n, d in nodes.items()}
    info["client18"]["interfaces"] = {"nic1": "isp1"}  # a single-homed viewer
    phases = []
    for name, down in PHASES:
        up = [p for p in PROVIDERS if p not in down]
        traffic = {}
        for node in nodes:
            own = [p for p in PROVIDERS if p in info[node]["interfaces"].values()]
            traffic[node] = {p: {f"{d}_share": (1 / len([q for q in up if q in own]) if p in up else 0.0)
                                 if node != "client5" else None for d in ("tx", "rx")} for p in own}
        phases.append({"name": name, "down": down, "nodes": traffic})
    return {"nodes": info, "phases": phases}


def test_grid_rows_are_node_and_direction_columns_phase_and_provider():
    grid = overview_grid(made_up_summary(), PROVIDERS)
    assert grid.rows[:4] == ["push1 · out", "server1 · out", "server1 · in", "client1 · in"]
    assert len(grid.rows) == 21 and len(grid.columns) == 4 * 3
    assert grid.down == [False] * 3 + [False, True, False] + [True, False, False] + [False] * 3
    assert grid.values[0][:3] == [1 / 3, 1 / 3, 1 / 3] and grid.values[0][4] == 0.0
    client18 = grid.rows.index("client18 · in")
    assert grid.values[client18][:3] == [1.0, None, None] and grid.present[client18][:3] == [True, False, False]
    client5 = grid.rows.index("client5 · in")
    assert grid.values[client5][0] is None and grid.present[client5][0]  # nothing moved


def test_overview_figure_for_twenty_nodes(tmp_path):
    grid = overview_grid(made_up_summary(), PROVIDERS)
    written = draw_overview(grid, tmp_path / "plots" / "overview", title="run x")
    assert [p.name for p in written] == ["overview.png", "overview.svg"]
    png = (tmp_path / "plots/overview.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    svg = (tmp_path / "plots/overview.svg").read_text()
    assert "client18" in svg and "isp2 down" in svg  # labels are text, not lost
    # one figure row per heatmap row at a readable height: the figure grows with the nodes
    height = int.from_bytes(png[20:24], "big")
    assert height >= 21 * 0.3 * 110


def test_no_overview_without_rows(tmp_path):
    assert draw_overview(overview_grid({"nodes": {}, "phases": []}, PROVIDERS), tmp_path / "o") == []
