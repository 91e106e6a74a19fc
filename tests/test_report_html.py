"""The HTML report in a real browser: headless Chromium loads ``index.html``, every image decodes
and the overall ranking table is on the first screen; a screenshot is taken.

Chromium comes from the distribution (Debian package ``chromium``): ``make test`` installs it
when it can (as root with apt). If it is missing here, the test installs it only when running as
root with apt-get available; otherwise it is skipped, saying why.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from matplotlib import image

from analysis.report import write_report
from stackelberg.results import ResultStore

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--disable-dev-shm-usage", "--no-first-run", "--window-size=1400,1000")

#: Appended to a copy of the page: after loading, the browser writes what it sees into the DOM.
PROBE = """<script>
window.addEventListener("load", () => {
  const images = [...document.images];
  const table = document.getElementById("ranking-overall");
  const box = table ? table.getBoundingClientRect() : null;
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify({
    images: images.length,
    broken: images.filter(i => !(i.complete && i.naturalWidth > 0)).length,
    tableTop: box ? box.top : null, tableHeight: box ? box.height : null,
    viewport: window.innerHeight,
    rows: table ? table.tBodies[0].rows.length : 0});
  document.body.appendChild(out);
});
</script>"""


def _browser() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip("no Chromium found and it cannot be installed here (needs root and apt-get"
                    "); install the distribution's `chromium` package to run this test")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
        if done.returncode != 0:
            pytest.skip(f"Chromium could not be installed ({' '.join(command)}: "
                        f"{done.stderr.strip()[-300:]})")
    found = shutil.which("chromium")
    if found is None:
        pytest.skip("apt-get installed chromium but it is not on PATH")
    return found


def _run(browser: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    # its own profile directory: concurrent runs and a user's profile stay out of each other's way
    profile = cwd / "profile"
    return subprocess.run([browser, *FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=120, cwd=cwd)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    # one game of the report tests' synthetic store (tests/ is on sys.path)
    from test_report import BETA, SSE, metrics_rows, record

    path = tmp_path_factory.mktemp("html")
    with ResultStore(path) as store:
        store.bind_spec({"seeds": [0, 1, 2], "budget": {"iterations": 10}})
        for leader, follower, seed, value, reach_at in BETA:
            store.write_match(record("beta", leader, follower, seed, value, sse=SSE),
                              metrics_rows(value, reach_at, sse=SSE))
    return write_report(path, dpi=50)


def test_the_report_renders_in_chromium_with_every_image_and_the_top_table(report, tmp_path):
    browser = _browser()
    probed = tmp_path / "probed.html"  # beside nothing: the page needs no other file
    probed.write_text(report.html.read_text().replace("</body>", PROBE + "</body>"))
    done = _run(browser, "--virtual-time-budget=10000", "--dump-dom", probed.as_uri(),
                cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, re.S)
    assert found, f"the page did not finish loading: {done.stdout[:500]!r}"
    seen = json.loads(found.group(1).replace("&quot;", '"'))
    assert seen["images"] == len(report.figures) // 2 >= 3  # every PNG figure, embedded
    assert seen["broken"] == 0
    assert seen["rows"] == 4  # the overall table: B/x, A/x, then A/y and B/y tied
    assert 0 <= seen["tableTop"] < seen["viewport"]  # on the first screen
    # the first row the browser shows is the overall ranking's first
    assert re.search(r'<table id="ranking-overall">.*?<tbody>\s*<tr class="top">'
                     r'<td class="num">1</td><td>B</td><td>x</td>', done.stdout, re.S)

    shot = tmp_path / "shot.png"
    done = _run(browser, f"--screenshot={shot}", report.html.as_uri(), cwd=tmp_path)
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    pixels = image.imread(shot)
    assert pixels.shape[:2] == (1000, 1400)
    assert pixels[..., :3].std() > 0.05  # not a blank page
