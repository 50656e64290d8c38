"""report.html: the report's Markdown as one escaped, self-contained page; provenance in both."""

from __future__ import annotations

import base64
import hashlib
import json
import re

from mpstream.cli import main
from mpstream.measurement.report.htmlpage import markdown_to_html, page

from tests.unit.test_report_command import make_run

MARKDOWN = """\
**INVALID RUN** — these numbers do not describe the planned scenario:

- client1: player said <script>alert(1)</script> & left

# mpstream run r1

> note: a `code **not bold**` span and **bold** and *baseline*

| node | value |
|---|---|
| a \\| b | 1 200 |

```
{"x": "<y>"}
```

![plots/fig.png](plots/fig.png)

![plots/raster.png](plots/raster.png)

![plots/gone.png](plots/gone.png)
"""


def test_markdown_subset_escaped(tmp_path):
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots/fig.svg").write_text('<?xml version="1.0"?>\n<!DOCTYPE svg>\n<svg xmlns="x"><metadata>'
                                            '<rdf>http://purl.org</rdf></metadata><path d="M0 0"/></svg>\n')
    (tmp_path / "plots/fig.png").write_bytes(b"\x89PNG not used: the svg wins")
    (tmp_path / "plots/raster.png").write_bytes(b"\x89PNG\r\n\x1a\nraster")
    body = markdown_to_html(MARKDOWN, tmp_path)
    assert body.startswith('<p class="invalid"><strong>INVALID RUN</strong> — these numbers')
    assert '<ul class="invalid"><li>client1: player said &lt;script&gt;alert(1)&lt;/script&gt; &amp; left</li></ul>' \
        in body
    assert "<script>" not in body
    assert "<h1>mpstream run r1</h1>" in body
    assert ("<blockquote>note: a <code>code **not bold**</code> span and <strong>bold</strong> and "
            "<em>baseline</em></blockquote>") in body
    assert '<table class="sortable"><thead><tr><th>node</th><th>value</th></tr></thead>' in body
    assert "<tr><td>a | b</td><td>1 200</td></tr>" in body
    assert "<pre><code>{&quot;x&quot;: &quot;&lt;y&gt;&quot;}</code></pre>" in body
    assert '<figure><svg xmlns="x"><path d="M0 0"/></svg>' in body  # prolog and metadata gone
    raster = base64.b64encode(b"\x89PNG\r\n\x1a\nraster").decode()
    assert f'<img alt="plots/raster.png" src="data:image/png;base64,{raster}">' in body
    assert "(figure plots/gone.png is missing)" in body


def test_a_later_paragraph_is_no_banner():
    body = markdown_to_html("# r\n\n**INVALID RUN** — x:\n\n- a\n\nplain\n\n- b\n")
    assert '<ul class="invalid"><li>a</li></ul>' in body and "<ul><li>b</li></ul>" in body
    assert "<p>plain</p>" in body


def test_page_policy_admits_exactly_its_own_script():
    text = page("t <1>", "<p>x</p>")
    assert "<title>t &lt;1&gt;</title>" in text
    (script,) = re.findall(r"<script>(.*?)</script>", text, re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', text).group(1)
    assert f"script-src 'sha256-{digest}'" in policy and "default-src 'none'" in policy
    assert "img-src data:" in policy


def test_provenance_in_report_md_and_html(tmp_path):
    run = make_run(tmp_path)
    meta = json.loads((run / "meta.json").read_text())
    meta.update(mpstream={"version": "0.1.0", "commit": "8a71450"}, format="mpstream-run/2",
                command=["ansible-playbook", "-i", "inventory/testbed", "failover.yml", "-e", "x=<1>"],
                extra_vars={"failover_phase_seconds": 25}, inventory_hash="sha256:abc123")
    (run / "meta.json").write_text(json.dumps(meta))
    assert main(["report", str(run), "--no-plots"]) == 0
    report = (run / "report.md").read_text()
    assert "- **mpstream**: version 0.1.0, commit `8a71450`" in report
    assert "- **results format**: `mpstream-run/2`" in report
    assert "- **command**: `ansible-playbook -i inventory/testbed failover.yml -e 'x=<1>'`" in report
    assert '- **extra vars**: `{"failover_phase_seconds": 25}`' in report
    assert "- **inventory hash**: `sha256:abc123`" in report
    assert "Other metadata" not in report and "inventory_hash" not in report  # not said twice
    html_text = (run / "report.html").read_text()
    assert "<code>ansible-playbook -i inventory/testbed failover.yml -e &#x27;x=&lt;1&gt;&#x27;</code>" in html_text
    assert "<h1>mpstream run 20261123T221500Z</h1>" in html_text and "<figure>" not in html_text
