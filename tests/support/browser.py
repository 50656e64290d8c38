"""Headless chromium for the HTML reports: load a page offline, dump its DOM, screenshot it."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
UNSHARE = shutil.which("unshare")

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
         "--enable-logging=stderr", "--v=0"]
# an attribute or CSS reference to anything but the page itself or a data: URI
REFERENCE = re.compile(r"""(?:\b(?:src|href|action|poster|srcset)\s*=\s*["']?|url\(\s*["']?|@import\s+["']?)"""
                       r"""(?!data:|#)([^"'\s>)]+)""", re.IGNORECASE)


def browse(page: Path, *args: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        command = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args, page.resolve().as_uri()]
        if UNSHARE:
            command = [UNSHARE, "--net", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)


def external_references(text: str) -> list[str]:
    return REFERENCE.findall(text)


def inked_and_colours(screenshot: Path) -> tuple[float, int]:
    """The share of the screenshot that is not white, and how many colours it has."""
    import numpy as np
    from matplotlib.image import imread

    pixels = imread(screenshot)[:, :, :3]
    inked = float((pixels.min(axis=2) < 0.9).mean())
    colours = len(np.unique((pixels * 255).astype(np.uint8).reshape(-1, 3), axis=0))
    return inked, colours
