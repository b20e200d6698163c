"""`ecosim viz` in a real browser: the system's Chromium (Debian's package) driven by Playwright.

Each test starts `ecosim viz PATH --port 0 --no-open` as a subprocess on a run, a sweep or a scenario, reads
the URL it prints, and uses the page as a person would. Every request the page makes must stay on the local
server (no CDN: the page works offline), and it must log no console error. They skip, saying why, only where
Playwright, Solara or Chromium is not installed (`.ci/run` installs Chromium with apt-get).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ecosystem.run import run_scenario
from ecosystem.scenario import validate_scenario
from ecosystem.sweep import run_sweep
from tests.conftest import tiny
from tests.test_viz import grouped

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("ECOSIM_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 60_000  # the first page of a server imports torch and Solara


def _skip_reason() -> str | None:
    for module, extra in (("playwright", "dev"), ("solara", "viz"), ("uvicorn", "viz")):
        try:
            __import__(module)
        except ImportError:
            return f"{module} is not installed (pip install 'ecosim[{extra}]')"
    if not Path(CHROMIUM).is_file():
        return f"no Chromium at {CHROMIUM} (apt-get install -y chromium)"
    return None


SKIP = _skip_reason()
if SKIP:
    pytest.skip(SKIP, allow_module_level=True)

from playwright.sync_api import Page, sync_playwright  # noqa: E402


class Server:
    """`ecosim viz PATH` on a free port, stopped at the end."""

    def __init__(self, path: Path) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "ecosystem.cli", "viz", str(path), "--no-open"],
                                        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        match = re.search(r"at (http://127\.0\.0\.1:\d+/)", line)
        if not match:
            self.stop()
            raise AssertionError(f"no URL printed: {line!r} {self.process.stderr.read()[-2000:]}")
        self.url = match.group(1)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("viz-browser")
    run = run_scenario(validate_scenario(grouped(steps=5)), base / "run", progress=False)
    design = {**tiny(steps=3), "name": "viz-browser",
              "sweep": {"grid": {"network": [{"kind": "ring", "k": 2}, {"kind": "complete"}]}, "replications": 2}}
    (base / "sweep.yaml").write_text(yaml.safe_dump(design))
    run_sweep(base / "sweep.yaml", out=base / "sweep", backend="serial", progress=False)
    (base / "live.yaml").write_text(yaml.safe_dump(grouped(steps=3)))
    return {"run": run, "sweep": base / "sweep", "scenario": base / "live.yaml"}


class Visit:
    """A page of a served dashboard, recording console errors and every request that leaves the server."""

    def __init__(self, browser, url: str) -> None:
        self.page: Page = browser.new_page(viewport={"width": 1280, "height": 1000})
        self.url = url
        self.errors: list[str] = []
        self.outside: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", self._request)
        self.page.goto(url)
        self.page.wait_for_selector(".viz-title", timeout=TIMEOUT_MS)

    def _request(self, request) -> None:
        if not request.url.startswith((self.url.rstrip("/"), "blob:", "data:")):
            self.outside.append(request.url)

    def fills(self) -> list[str]:
        nodes = self.page.locator("[data-testid=node]")
        return [nodes.nth(i).get_attribute("fill") for i in range(nodes.count())]

    def close(self) -> None:
        assert self.errors == [], self.errors
        assert self.outside == [], self.outside
        self.page.close()


@pytest.fixture
def serve(browser):
    servers: list[Server] = []
    visits: list[Visit] = []

    def start(path: Path) -> Visit:
        servers.append(Server(path))
        visits.append(Visit(browser, servers[-1].url))
        return visits[-1]

    yield start
    try:
        for visit in visits:
            visit.close()
    finally:
        for server in servers:
            server.stop()


def test_run_page(serve, folders):
    visit = serve(folders["run"])
    page = visit.page
    page.wait_for_selector("[data-testid=node]", timeout=TIMEOUT_MS)
    assert page.locator("[data-testid=node]").count() == 6  # N developers
    # two blocks of three that read each other (self-loops not drawn): 2 · 3 · 2 edges
    assert page.locator("[data-testid=edge]").count() == 12
    last = visit.fills()
    slider = page.locator(".viz-generation [role=slider]")
    slider.focus()
    page.keyboard.press("Home")  # generation 1
    page.wait_for_function("last => { const f = [...document.querySelectorAll('[data-testid=node]')]"
                           ".map(n => n.getAttribute('fill')); return f.join() !== last.join(); }", arg=last,
                           timeout=TIMEOUT_MS)
    assert slider.get_attribute("aria-valuenow") == "1"
    assert visit.fills() != last
    page.locator("[data-testid=node][data-developer='4']").click()
    panel = page.wait_for_selector(".viz-developer", timeout=TIMEOUT_MS)
    assert "developer 4 · community 1" in panel.inner_text()
    assert "read by: 3, 4, 5" in page.locator(".viz-reading").inner_text()
    page.locator(".viz-trajectory img").wait_for(timeout=TIMEOUT_MS)
    page.wait_for_function("() => document.querySelector('.viz-trajectory img').naturalWidth > 0",
                           timeout=TIMEOUT_MS)  # the figure decoded: a drawn picture, not a broken image
    assert page.locator(".viz-heatmap img").count() == 1 and page.locator(".viz-model img").count() == 1


def test_run_page_plays(serve, folders):
    visit = serve(folders["run"])
    page = visit.page
    slider = page.locator(".viz-generation [role=slider]")
    slider.wait_for(state="attached", timeout=TIMEOUT_MS)  # the thumb has no box of its own
    slider.focus()
    page.keyboard.press("Home")
    page.wait_for_function("() => document.querySelector('.viz-generation [role=slider]')"
                           ".getAttribute('aria-valuenow') === '1'", timeout=TIMEOUT_MS)
    page.locator(".viz-play").click()
    page.wait_for_function("() => document.querySelector('.viz-generation [role=slider]')"
                           ".getAttribute('aria-valuenow') === '5'", timeout=TIMEOUT_MS)  # played to the end
    page.locator(".viz-play", has_text="play").wait_for(timeout=TIMEOUT_MS)  # and stopped there


def test_sweep_page(serve, folders):
    visit = serve(folders["sweep"])
    page = visit.page
    table = page.locator(".viz-design-points")
    table.wait_for(timeout=TIMEOUT_MS)
    rows = table.locator("tbody tr")
    assert rows.count() == 2
    assert "ring" in rows.nth(0).inner_text() and "complete" in rows.nth(1).inner_text()
    assert "2/2" in rows.nth(0).inner_text()
    assert page.locator(".viz-conditions-figure img").count() == 1
    assert page.locator(".viz-conditions tbody tr").count() == 2  # one mean and interval per design point
    page.wait_for_selector("[data-testid=node]", timeout=TIMEOUT_MS)
    assert page.locator("[data-testid=node]").count() == 4  # the chosen run's developers
    first = page.locator(".viz-run-id").inner_text()
    page.locator(".viz-point .v-select").click()
    page.locator(".v-menu__content .v-list-item", has_text="complete").click()
    page.wait_for_function("first => document.querySelector('.viz-run-id').innerText !== first", arg=first,
                           timeout=TIMEOUT_MS)
    # the network redraws after the run id: wait for the complete graph on 4 developers (the ring has 8 edges)
    page.wait_for_function("() => document.querySelectorAll('[data-testid=edge]').length === 12",
                           timeout=TIMEOUT_MS)


def test_live_page(serve, folders):
    visit = serve(folders["scenario"])
    page = visit.page
    step = page.locator(".viz-step")
    step.wait_for(timeout=TIMEOUT_MS)
    step.click()
    page.locator(".viz-live-generation", has_text="generation 1 of 3").wait_for(timeout=TIMEOUT_MS)
    page.wait_for_selector("[data-testid=node]", timeout=TIMEOUT_MS)
    assert page.locator("[data-testid=node]").count() == 6
    page.locator(".viz-play").click()
    page.locator(".viz-live-generation", has_text="generation 3 of 3").wait_for(timeout=TIMEOUT_MS)
    page.locator(".viz-reset").click()
    page.locator(".viz-live-generation", has_text="generation 0 of 3").wait_for(timeout=TIMEOUT_MS)
    page.get_by_text("no generation yet").wait_for(timeout=TIMEOUT_MS)  # a new model, nothing drawn yet
    page.locator("[data-testid=node]").first.wait_for(state="detached", timeout=TIMEOUT_MS)
