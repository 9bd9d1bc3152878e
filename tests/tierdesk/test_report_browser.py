"""The HTML report in a real headless Chromium: the chart's bars are laid out with the
widths their attainment asks for, labelled, and the page loads nothing from anywhere.

Skipped when /usr/bin/chromium is missing, unless TIERDESK_REQUIRE_BROWSER=1 (CI),
which makes a missing browser a failure.
"""

from __future__ import annotations

import html
import json
import os
import re
import struct
import subprocess
import zlib
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.tierdesk.test_report import fill
from tierdesk.report import CHART_BAR_H, CHART_BAR_MAX
from tierdesk.report_command import report

CHROMIUM = Path("/usr/bin/chromium")

# Appended to a copy of the page (never to the report itself): it measures what the
# browser laid out and leaves it in the DOM for --dump-dom to print.
MEASURE = """
<script>
const svg = document.querySelector("svg#attainment");
const box = svg.getBoundingClientRect();
const bars = [...document.querySelectorAll("svg#attainment rect.bar")].map((r) => {
  const b = r.getBoundingClientRect();
  const row = r.closest("g");
  return {
    account: r.dataset.account, tier: r.dataset.tier,
    x: b.x - box.x, width: b.width, height: b.height,
    label: row.querySelector(".bar-label").textContent,
    labelWidth: row.querySelector(".bar-label").getBBox().width,
    value: row.querySelector(".bar-value").textContent,
  };
});
const out = document.createElement("pre");
out.id = "measured";
out.textContent = JSON.stringify({
  bars,
  title: svg.getAttribute("aria-label"),
  svgTitle: svg.querySelector(":scope > title").textContent,
  resources: performance.getEntriesByType("resource").length,
});
document.body.appendChild(out);
</script>
"""


def chromium_or_skip() -> Path:
    if CHROMIUM.exists():
        return CHROMIUM
    if os.environ.get("TIERDESK_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{CHROMIUM} is missing and TIERDESK_REQUIRE_BROWSER=1")
    pytest.skip(f"{CHROMIUM} is not installed")


def chromium(browser: Path, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """One headless Chromium run with a throw-away profile and no network chatter."""
    return subprocess.run(
        [
            str(browser),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def measured(browser: Path, page: Path, tmp_path: Path) -> dict[str, Any]:
    probe = tmp_path / "probe.html"
    probe.write_text(
        page.read_text(encoding="utf-8").replace("</body>", MEASURE + "</body>"),
        encoding="utf-8",
    )
    run = chromium(browser, tmp_path / "profile", "--dump-dom", probe.as_uri())
    found = re.search(r'<pre id="measured">(.*?)</pre>', run.stdout, re.S)
    assert found, f"no measurements in the DOM (exit {run.returncode}): {run.stderr[-2000:]}"
    result: dict[str, Any] = json.loads(html.unescape(found[1]))
    return result


@pytest.fixture
def page(tmp_path: Path) -> Path:
    database = tmp_path / "tierdesk.sqlite3"
    fill(database)
    out = tmp_path / "report.html"
    result = CliRunner().invoke(
        report,
        ["--format", "html", "--out", str(out), "--now", "2026-04-01T12:00:00Z"],
        env={"TIERDESK_DATABASE": str(database), "TIERDESK_CONFIG": "", "TIERDESK_MAPPINGS": ""},
    )
    assert result.exit_code == 0, result.output
    return out


def test_the_chart_has_one_bar_per_account_and_tier_as_wide_as_its_attainment(
    page: Path, tmp_path: Path
) -> None:
    browser = chromium_or_skip()
    got = measured(browser, page, tmp_path)
    assert got["resources"] == 0  # nothing fetched: the page is self-contained
    assert got["title"] == got["svgTitle"] == "SLA attainment per account and tier, 2026-03"
    bars = got["bars"]
    assert [(b["account"], b["tier"], b["label"], b["value"]) for b in bars] == [
        ("acme", "premier", "acme / premier", "33.33%"),
        ("acme", "priority", "acme / priority", "100.00%"),
        ("initech", "payg", "initech / payg", "100.00%"),
        ("o'brien<&>", "select", "o'brien<&> / select", "0.00%"),
    ]
    for bar, percent in zip(bars, (33.33, 100.0, 100.0, 0.0), strict=True):
        # Laid out by the browser, to within a pixel's rounding.
        assert bar["width"] == pytest.approx(percent * CHART_BAR_MAX / 100, abs=0.5)
        assert bar["height"] == pytest.approx(CHART_BAR_H, abs=0.5)
        assert bar["labelWidth"] > 0  # the label was drawn, not just present
    assert len({b["x"] for b in bars}) == 1  # every bar starts at the same axis


def test_the_page_renders_to_a_screenshot(page: Path, tmp_path: Path) -> None:
    browser = chromium_or_skip()
    shot = tmp_path / "report.png"
    run = chromium(
        browser,
        tmp_path / "profile",
        f"--screenshot={shot}",
        "--window-size=1000,800",
        page.as_uri(),
    )
    assert shot.exists(), f"no screenshot (exit {run.returncode}): {run.stderr[-2000:]}"
    pixels = read_png(shot.read_bytes())
    # Each bar is a solid run of its colour: the two 100 % bars green, 400 px wide and
    # 20 px high; the 33.33 % bar red, 133 px wide. (Nothing else on the page is green.)
    green = runs(pixels, (0x2E, 0x7D, 0x32))
    red = runs(pixels, (0xC6, 0x28, 0x28))
    assert sorted(set(green)) == [400] and len(green) == 2 * CHART_BAR_H, green
    assert sorted(set(red)) == [133] and len(red) == CHART_BAR_H, red


Pixels = list[list[tuple[int, int, int]]]


def runs(pixels: Pixels, colour: tuple[int, int, int]) -> list[int]:
    """The longest run of ``colour`` in each pixel row that has one (within 8 per channel:
    anti-aliasing touches only the edges)."""
    found = []
    for row in pixels:
        best = length = 0
        for px in row:
            length = (
                length + 1 if all(abs(a - b) <= 8 for a, b in zip(px, colour, strict=True)) else 0
            )
            best = max(best, length)
        if best:
            found.append(best)
    return found


def read_png(data: bytes) -> Pixels:
    """The RGB pixels of an 8-bit, non-interlaced RGB or RGBA PNG (what Chromium writes):
    enough of the format to look at a screenshot without an imaging library."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour_type in (2, 6) and interlace == 0, header
    bpp = 3 if colour_type == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    previous = bytearray(stride)
    rows: Pixels = []
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up, corner = previous[i], previous[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                pred = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                line[i] = (line[i] + pred) & 0xFF
        rows.append([tuple(line[x : x + 3]) for x in range(0, stride, bpp)])  # type: ignore[misc]
        previous = line
    return rows


def test_a_missing_browser_skips_unless_required(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(f"{__name__}.CHROMIUM", tmp_path / "no-chromium")
    monkeypatch.delenv("TIERDESK_REQUIRE_BROWSER", raising=False)
    with pytest.raises(pytest.skip.Exception):
        chromium_or_skip()
    monkeypatch.setenv("TIERDESK_REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception, match="TIERDESK_REQUIRE_BROWSER=1"):
        chromium_or_skip()
