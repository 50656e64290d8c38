"""`report.html`: the report's Markdown as one self-contained, shareable HTML file.

The HTML says what report.md says (one text, two renderings): this module turns the small
Markdown subset the report writes (headings, paragraphs, lists, quotes, tables, fenced code,
images alone on a line, `code`, **bold**, *emphasis*) into HTML, everything escaped. Images
are put inline: a plot's SVG when it was drawn as one (text stays searchable), else the PNG
as a data: URI. Tables sort by a click on their header (a few lines of inline script).

Nothing leaves the file: no external script, style, font or image, and a Content Security
Policy that forbids loading any (only inline styles, data: images and the one script, by
its hash), so a copy opened anywhere makes no request.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from pathlib import Path

SORT_SCRIPT = """\
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("th").forEach(function (th, column) {
    th.title = "sort";
    th.addEventListener("click", function () {
      var body = table.tBodies[0], up = th.getAttribute("aria-sort") !== "ascending";
      table.querySelectorAll("th").forEach(function (o) { o.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", up ? "ascending" : "descending");
      function key(row) {
        var text = row.cells[column] ? row.cells[column].textContent.trim() : "";
        if (text === "never") return [0, Infinity];
        var number = parseFloat(text.replace(/\\s/g, "").replace(/^\\+/, ""));
        return isNaN(number) ? (text === "–" || text === "" ? [2, ""] : [1, text]) : [0, number];
      }
      Array.from(body.rows).sort(function (a, b) {
        var x = key(a), y = key(b);
        if (x[0] !== y[0]) return x[0] - y[0];
        var order = x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : 0;
        return up ? order : -order;
      }).forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""

STYLE = """\
body { font: 15px/1.45 system-ui, sans-serif; margin: 1.5em auto; max-width: 78em; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.3em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
h3 { font-size: 1.1em; }
table { border-collapse: collapse; margin: 0.6em 0 1.2em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: left; vertical-align: top; }
th { background: #f2f2f2; cursor: pointer; user-select: none; }
th[aria-sort=ascending]::after { content: " ▲"; } th[aria-sort=descending]::after { content: " ▼"; }
tr:nth-child(even) td { background: #fafafa; }
code, pre { font-family: ui-monospace, monospace; font-size: 0.9em; background: #f5f5f5; }
pre { padding: 0.6em; overflow-x: auto; }
blockquote { margin: 0.3em 0; padding: 0.1em 0.8em; border-left: 4px solid #e0c060; background: #fffbea; }
figure { margin: 1em 0; } figure svg, figure img { max-width: 100%; height: auto; }
figcaption { font-size: 0.85em; color: #666; }
.invalid { background: #fde8e8; border: 2px solid #c62828; padding: 0.5em 1em; margin: 0.4em 0; }
p.invalid { margin-bottom: 0; border-bottom: none; }
ul.invalid { margin-top: 0; border-top: none; padding-left: 2.5em; }
"""

INVALID_CLASS = ' class="invalid"'
_IMAGE = re.compile(r"^!\[([^\]]*)\]\(([^)\s]+)\)$")
_SVG_PROLOG = re.compile(r"<\?xml[^>]*\?>|<!DOCTYPE[^>]*>|<metadata>.*?</metadata>", re.DOTALL)


def inline(text: str) -> str:
    """One line of Markdown to HTML: escaped, with `code`, **bold** and *emphasis*."""
    parts = text.split("`")
    out = []
    for number, part in enumerate(parts):
        if number % 2 and number < len(parts) - 1:
            out.append(f"<code>{html.escape(part)}</code>")
            continue
        piece = html.escape(part if number % 2 == 0 else "`" + part)
        piece = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", piece)
        piece = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"<em>\1</em>", piece)
        out.append(piece)
    return "".join(out)


def _cells(line: str) -> list[str]:
    body = line.strip()
    body = body[1:] if body.startswith("|") else body
    body = body[:-1] if body.endswith("|") and not body.endswith("\\|") else body
    return [cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", body)]


def _table(lines: list[str]) -> str:
    header = _cells(lines[0])
    rows = [_cells(line) for line in lines[2:]] if len(lines) > 1 and set(lines[1].strip()) <= set("|-: ") else [
        _cells(line) for line in lines[1:]]
    head = "".join(f"<th>{inline(c)}</th>" for c in header)
    body = "".join("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in row) + "</tr>\n" for row in rows)
    return f'<table class="sortable"><thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody></table>'


def figure_html(source: str, base: Path | None, alt: str) -> str:
    """An image of the report, inline: its SVG sibling if there is one, else the file as a data: URI."""
    path = (base / source) if base is not None else Path(source)
    svg = path.with_suffix(".svg")
    caption = f"<figcaption>{html.escape(alt)}</figcaption>"
    if svg.is_file():
        text = _SVG_PROLOG.sub("", svg.read_text(encoding="utf-8")).strip()
        return f"<figure>{text}{caption}</figure>"
    if path.is_file():
        kind = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg"}.get(path.suffix, "image/png")
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        return f'<figure><img alt="{html.escape(alt)}" src="data:{kind};base64,{data}">{caption}</figure>'
    return f"<p><em>(figure {html.escape(source)} is missing)</em></p>"


def markdown_to_html(text: str, base: Path | None = None) -> str:
    """The body of the page; images are looked up relative to `base`."""
    lines = text.split("\n")
    out: list[str] = []
    paragraph: list[str] = []
    banner = False

    def flush() -> None:
        nonlocal banner
        if paragraph:
            joined = " ".join(paragraph)
            banner = joined.startswith("**INVALID")
            out.append(f"<p{INVALID_CLASS if banner else ''}>{inline(joined)}</p>")
            paragraph.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if not stripped:
            flush()
            i += 1
            continue
        if stripped.startswith("```"):
            flush()
            block = []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith("```"):
                block.append(lines[i])
                i += 1
            out.append(f"<pre><code>{html.escape(chr(10).join(block))}</code></pre>")
            i += 1
            continue
        heading = re.match(r"^(#{1,6})\s+(.*)$", stripped)
        image = _IMAGE.match(stripped)
        if heading or image or stripped.startswith(("|", "- ", "> ")):
            flush()
        if heading:
            level = len(heading.group(1))
            out.append(f"<h{level}>{inline(heading.group(2))}</h{level}>")
            banner = False
        elif image:
            out.append(figure_html(image.group(2), base, image.group(1)))
        elif stripped.startswith("|"):
            block = []
            while i < len(lines) and lines[i].strip().startswith("|"):
                block.append(lines[i])
                i += 1
            out.append(_table(block))
            continue
        elif stripped.startswith("- "):
            items = []
            while i < len(lines) and lines[i].strip().startswith("- "):
                items.append(f"<li>{inline(lines[i].strip()[2:])}</li>")
                i += 1
            out.append(f"<ul{INVALID_CLASS if banner else ''}>" + "".join(items) + "</ul>")
            banner = False
            continue
        elif stripped.startswith("> "):
            out.append(f"<blockquote>{inline(stripped[2:])}</blockquote>")
        else:
            paragraph.append(stripped)
        i += 1
    flush()
    return "\n".join(out)


def script_hash(script: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")


def page(title: str, body: str) -> str:
    """A complete, self-contained HTML document."""
    policy = (f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
              f"script-src '{script_hash(SORT_SCRIPT)}'; base-uri 'none'; form-action 'none'")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{policy}\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{html.escape(title)}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n"
        f"{body}\n<script>{SORT_SCRIPT}</script>\n</body>\n</html>\n"
    )


def write_html(markdown_text: str, path: Path, title: str) -> Path:
    """`path` (report.html) from the report's Markdown; images relative to its folder."""
    path.write_text(page(title, markdown_to_html(markdown_text, path.parent)), encoding="utf-8")
    return path
