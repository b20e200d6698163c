"""Serve the dashboard on a local port: what ``ecosim viz PATH`` does.

The page is Solara's (the stack of Mesa's own SolaraViz) run by uvicorn in this process. It works offline:
Solara's scripts, styles and fonts come from the ``solara-assets`` package, served by the page's own server,
and Solara's usage telemetry is switched off. Solara and uvicorn are imported only in :func:`serve` (the
``viz`` extra), so finding out what PATH is needs no web dependency.
"""

from __future__ import annotations

import os
import socket
import sys
import warnings
import webbrowser
from pathlib import Path

from ecosystem.results import ResultsError, RunFolder, is_run, is_sweep, read_manifest

KIND, PATH = "ECOSIM_VIZ_KIND", "ECOSIM_VIZ_PATH"  # read by analysis.dashboard.app
# Solara's settings are read from the environment when it is first imported.
SOLARA_ENV = {
    "SOLARA_APP": "analysis.dashboard.app",
    "SOLARA_TELEMETRY_MIXPANEL_ENABLE": "False",  # no usage reports: the page never calls out
    "SOLARA_MODE": "production",  # no reloader, no check that loads a page from the web
    "SOLARA_THEME_SHOW_BANNER": "False",
}


class DashboardError(ValueError):
    """Something ``ecosim viz`` cannot serve (the message is one line naming what is wrong)."""


def kind_of(path: Path) -> str:
    """``run``, ``sweep`` or ``scenario`` (a YAML file, validated by the caller)."""
    path = Path(path)
    try:
        if is_run(path):
            RunFolder(path).meta  # noqa: B018 (reads meta.json: a broken folder fails here, in one line)
            return "run"
        if is_sweep(path):
            read_manifest(path)
            return "sweep"
    except ResultsError as err:
        raise DashboardError(str(err)) from None
    if path.is_file() and path.suffix in (".yaml", ".yml"):
        return "scenario"
    what = "no such file or folder" if not path.exists() else "not a run folder (meta.json), a sweep folder " \
        "(runs/ and manifest.jsonl) or a scenario file (.yaml)"
    raise DashboardError(f"{path}: {what}")


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: a free one), or a one-line error if it cannot be had."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        if os.name == "posix":  # a port a closed server left in TIME_WAIT may be taken again; a live one may not
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as err:
        reason = "in use" if err.errno in (98, 48, 10048) else err.strerror or str(err)
        raise DashboardError(f"--port: {port} on {host} cannot be used ({reason}); choose another port, or "
                             "leave --port out for a free one") from None
    sock.listen(128)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/"


def require_viz() -> None:
    """Set Solara's environment and import it, or a one-line error naming the extra to install.

    Solara reads its settings when first imported, so nothing may import it before this runs."""
    os.environ.update(SOLARA_ENV)
    try:
        import solara.server.starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as err:
        raise DashboardError(f"viz: the page needs the viz extra ({err.name} is missing): "
                             "pip install 'ecosim[viz]'") from None


def serve(path: Path, kind: str, sock: socket.socket, open_browser: bool = True) -> None:
    """Serve the page for ``path`` on ``sock`` until interrupted (Ctrl-C)."""
    require_viz()
    os.environ.update({KIND: kind, PATH: str(path)})
    warnings.filterwarnings("ignore", message="Cookies with samesite")  # plain http on localhost is intended
    import uvicorn
    from solara.server.starlette import app

    url = url_of(sock)
    print(f"serving {kind} {path} at {url}  (Ctrl-C stops)", flush=True)
    if open_browser:
        webbrowser.open(url)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    server.run(sockets=[sock])
    sys.stdout.flush()
