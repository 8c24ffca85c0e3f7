"""The page the server serves at ``/``: one HTML file with its CSS and JavaScript inline; plotly.js
comes from the installed plotly package through ``/plotly.min.js``, so nothing is loaded from the
internet. It reads everything through the API, with the cookie the token link sets."""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files


@lru_cache(maxsize=1)
def render_page() -> str:
    return files("autocl.service").joinpath("page.html").read_text(encoding="utf-8")


__all__ = ["render_page"]
