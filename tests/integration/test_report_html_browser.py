"""report.html in a real headless browser: it renders, its figures are there, its script runs, and
nothing leaves the file (no reference outside it, and the page's policy blocks one that is slipped in).

Chromium runs in a network namespace of its own with only a loopback (`unshare --net`), so even a
request the page failed to block could not leave the machine.
"""

from __future__ import annotations

import re

import pytest
from mpstream.cli import main

from tests.support.browser import CHROMIUM, browse, external_references, inked_and_colours
from tests.unit.test_report_batch import make_batch
from tests.unit.test_report_command import make_run

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    root = tmp_path_factory.mktemp("html")
    run = make_run(root / "single", lags={"client1": {2: 0.35}})
    assert main(["report", str(run)]) == 3
    batch = make_batch(root / "batches")
    assert main(["report", str(batch)]) == 3
    assert main(["report", "--compare", f"tuned={batch}", str(run), "--output", str(root / "cmp")]) == 3
    return {"run": run / "report.html", "batch": batch / "report.html", "compare": root / "cmp" / "report.html"}


def figures_in(markdown: str) -> int:
    return len(re.findall(r"^!\[[^\]]*\]\([^)]+\)$", markdown, re.MULTILINE))


@pytest.mark.parametrize("kind", ["run", "batch", "compare"])
def test_page_renders_with_its_figures_and_script(pages, kind):
    page = pages[kind]
    text = page.read_text()
    assert external_references(text) == [], "the page refers to something outside itself"
    result = browse(page, "--dump-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    expected = figures_in((page.parent / "report.md").read_text())
    assert expected >= 1 and len(re.findall(r"<figure><svg\b", dom)) == expected
    assert dom.index('<p class="invalid">') < dom.index("<h1>")  # the banner first, as in report.md
    # the sorting script ran (the page's policy admits it by its hash): every header got its hint
    headers = re.findall(r"<th\b[^>]*>", dom)
    assert headers and all('title="sort"' in h for h in headers)
    assert "violates the following Content Security Policy" not in result.stderr


@pytest.mark.parametrize("kind", ["run", "batch"])
def test_screenshot_is_not_blank(pages, kind, tmp_path):
    from matplotlib.image import imread

    shot = tmp_path / "shot.png"
    result = browse(pages[kind], f"--screenshot={shot}", "--window-size=1280,2400", "--hide-scrollbars")
    assert result.returncode == 0 and shot.is_file(), result.stderr[-2000:]
    pixels = imread(shot)[:, :, :3]
    assert pixels.shape[0] >= 2000 and pixels.shape[1] >= 1200
    inked, colours = inked_and_colours(shot)
    assert inked > 0.03, f"only {inked:.1%} of the page is not white"
    assert colours > 50, f"{colours} colours: no figure drawn"
    banner = pixels[:150, :, :]  # the invalid-run banner's pink is at the top
    assert ((banner[:, :, 0] > 0.95) & (banner[:, :, 1] < 0.93) & (banner[:, :, 2] < 0.93)).mean() > 0.05


def test_a_reference_slipped_into_the_page_is_blocked(pages, tmp_path):
    probe = tmp_path / "probe.html"
    probe.write_text(pages["run"].read_text().replace("<h1>", '<img src="http://198.18.0.1/probe.png"><h1>', 1))
    assert external_references(probe.read_text()) == ["http://198.18.0.1/probe.png"]
    result = browse(probe, "--dump-dom")
    assert result.returncode == 0
    assert "http://198.18.0.1/probe.png' violates the following Content Security Policy directive" in result.stderr


def test_tables_sort_numbers_as_numbers_and_keep_unknowns_last(tmp_path):
    from mpstream.measurement.report.htmlpage import SORT_SCRIPT

    rows = "".join(f"<tr><td>{name}</td><td>{value}</td></tr>" for name, value in
                   [("a", "10"), ("b", "never"), ("c", "–"), ("d", "2.5"), ("e", "1 200"), ("f", "+3")])
    clicks = """
      var th = document.querySelectorAll("th")[1], out = [];
      function order() { return Array.from(document.querySelectorAll("tbody tr")).map(function (r) {
        return r.cells[0].textContent; }).join(""); }
      th.click(); out.push(order()); th.click(); out.push(order());
      document.getElementById("out").textContent = out.join(" ");
    """
    probe = tmp_path / "sort.html"
    probe.write_text(f'<!DOCTYPE html><html><body><table class="sortable"><thead><tr><th>name</th><th>value</th>'
                     f'</tr></thead><tbody>{rows}</tbody></table><pre id="out"></pre>'
                     f"<script>{SORT_SCRIPT}</script><script>{clicks}</script></body></html>")
    result = browse(probe, "--dump-dom")
    assert result.returncode == 0
    assert re.search(r'<pre id="out">([^<]*)</pre>', result.stdout).group(1) == "dfaebc beafdc"
