"""autocl as a service: an HTTP API and a page to launch, watch, compare and download searches.

``autocl serve`` runs :func:`serve`. Searches run in worker processes through the same
``autocl.study.run_search`` as ``autocl search``, on the same study storage; fronts, trials,
figures and bundles come from the functions the CLI and the report use. Nothing in autocl imports
this package.
"""

from __future__ import annotations

import os
import secrets
import sys

from autocl.errors import ConfigError

MIN_TOKEN_CHARS = 16  # as the latency agent's
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def resolve_token(token: str | None) -> tuple[str, str]:
    """The token and where it came from: ``--token``, ``AUTOCL_TOKEN``, or generated."""
    if token:
        source = "--token"
    elif os.environ.get("AUTOCL_TOKEN", "").strip():
        token, source = os.environ["AUTOCL_TOKEN"].strip(), "AUTOCL_TOKEN"
    else:
        return secrets.token_urlsafe(24), "generated"
    if len(token) < MIN_TOKEN_CHARS:
        raise ConfigError(
            f"the token is {len(token)} characters; use at least {MIN_TOKEN_CHARS} (or leave it out "
            "and one is generated)",
            field=source,
        )
    return token, source


def serve(host: str = "127.0.0.1", port: int = 8000, token: str | None = None, *, max_running: int = 1) -> None:
    """Run the server until interrupted; prints where to open the page and the token (when generated)."""
    import uvicorn

    from autocl.runtime import home_dir
    from autocl.service._app import create_app

    token, source = resolve_token(token)
    shown = token if source == "generated" else f"<the token from {source}>"
    base = f"http://{host if ':' not in host else f'[{host}]'}:{port}"
    print(
        f"autocl serve: {base}/ (studies in {home_dir().resolve()}, {max_running} worker(s) at a time)\n"
        f"  page:    {base}/?token={shown}\n"
        f"  API:     Authorization: Bearer {shown}   (OpenAPI document: {base}/openapi.json)\n"
        f"  health:  {base}/health",
        flush=True,
    )
    if host not in LOOPBACK:
        print(
            f"autocl serve: warning: listening on {host}, reachable from other machines; the token is the only "
            "guard and travels in clear over HTTP: serve on 127.0.0.1 behind a TLS proxy, or on a trusted network only",
            file=sys.stderr,
            flush=True,
        )
    uvicorn.run(create_app(token, max_running=max_running), host=host, port=port, log_level="warning")
    print("autocl serve: stopped; running jobs were interrupted and can be resumed", file=sys.stderr)


__all__ = ["resolve_token", "serve"]
