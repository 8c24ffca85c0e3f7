"""``autocl serve``: the HTTP API and the page (see ``autocl.service``)."""

from __future__ import annotations

from typing import Optional

import typer

from autocl.cli._common import handles_errors


def serve(
    host: str = typer.Option("127.0.0.1", help="address to listen on (loopback by default)"),
    port: int = typer.Option(8000, min=1, max=65535, help="port to listen on"),
    token: Optional[str] = typer.Option(
        None,
        help=("token every request but /health must carry [default: $AUTOCL_TOKEN, else a generated one, printed]"),
    ),
    max_running: int = typer.Option(1, min=0, help="search jobs run at a time; more are queued (0: queue only)"),
) -> None:
    """Serve the API and the page: launch searches, watch them, compare fronts, download bundles.

    Jobs run in worker processes on the study storage (AUTOCL_HOME), as 'autocl search' does; their
    records survive a restart. The OpenAPI document is at /openapi.json.

    Example: autocl serve --port 8000
    """
    handles_errors(_serve)(host, port, token, max_running)


def _serve(host, port, token, max_running) -> None:
    from autocl.service import serve as run

    run(host, port, token, max_running=max_running)
