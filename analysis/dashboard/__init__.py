"""``ecosim viz``: an interactive page for a run folder, a sweep folder, or a scenario stepped live.

- :mod:`analysis.dashboard.views`: what the page shows (numbers, network picture, figures), without web code;
- :mod:`analysis.dashboard.live`: a scenario's model built and stepped generation by generation;
- :mod:`analysis.dashboard.app`: the Solara page;
- :mod:`analysis.dashboard.serve`: finding out what PATH is, the port, and the local server.

Solara and uvicorn come with the ``viz`` extra (``pip install 'ecosim[viz]'``); nothing else imports them.
"""
