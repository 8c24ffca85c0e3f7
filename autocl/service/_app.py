"""The HTTP API and the page: ``create_app(token)`` builds the FastAPI application.

Every route but ``/health`` needs the token: ``Authorization: Bearer <token>``, or the cookie the
page gets by opening ``/?token=<token>`` once. Bodies over ``MAX_BODY_BYTES`` are refused (413)
before the application reads them. Every error is JSON ``{"detail": reason}`` with a 4xx status.
"""

from __future__ import annotations

import hmac
import json
from contextlib import asynccontextmanager
from dataclasses import replace
from http.cookies import SimpleCookie
from typing import Any, Optional
from urllib.parse import parse_qs

from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.security import APIKeyCookie, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException as StarletteHTTPException

import autocl
from autocl.errors import AutoclError, redact
from autocl.service import _studies
from autocl.service._inputs import (
    MAX_YAML_CHARS,
    STUDY_NAME,
    InputError,
    check_study_name,
    check_workload,
    resolve_profile,
    resolve_space,
    shipped_profiles,
    shipped_spaces,
    workload_names,
)
from autocl.service._jobs import JOB_ID, Job, JobService, jobs_dir
from autocl.service._worker import STATUS_FILE

MAX_BODY_BYTES = 65_536
COOKIE = "autocl_token"
LOG_TAIL_LINES = 20


class JobRequest(BaseModel):
    """A search to run: a registered workload, a space and a profile (shipped name or inline YAML),
    a trial budget and/or a time budget (neither: 12 trials, as ``autocl search``), a study name."""

    model_config = ConfigDict(extra="forbid")

    workload: str = Field(max_length=100, description="a built-in or entry-point workload name (GET /api/options)")
    study: str = Field(
        max_length=200,
        json_schema_extra={"pattern": STUDY_NAME},
        description="letters, digits, '-', '_', '.', no leading dot; an existing study is resumed",
    )
    space: Optional[str] = Field(None, max_length=100, description="shipped search space name [default: default]")
    space_yaml: Optional[str] = Field(
        None, json_schema_extra={"maxLength": MAX_YAML_CHARS}, description="a search space as YAML, instead of space"
    )
    profile: Optional[str] = Field(None, max_length=100, description="shipped profile name [default: cpu-local]")
    profile_yaml: Optional[str] = Field(
        None,
        json_schema_extra={"maxLength": MAX_YAML_CHARS},
        description="a local hardware profile as YAML, instead of profile",
    )
    trials: Optional[int] = Field(None, ge=1, le=100_000, description="trials to run")
    time_budget_s: Optional[float] = Field(None, gt=0, le=7 * 86400, description="seconds the search may run")
    seed: int = Field(0, ge=0, le=2**31 - 1)

    @field_validator("study")
    @classmethod
    def _study(cls, v: str) -> str:
        try:
            return check_study_name(v)
        except InputError as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _one_of_each(self) -> JobRequest:
        for kind in ("space", "profile"):
            if getattr(self, kind) is not None and getattr(self, f"{kind}_yaml") is not None:
                raise ValueError(f"give {kind} or {kind}_yaml, not both")
        return self


class Error(BaseModel):
    detail: str


ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": Error} for code in (400, 401, 404, 409, 413, 422, 429)}
SECURITY_HEADERS = [
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (
        b"content-security-policy",
        # the page's one inline script and style, plotly from this server, nothing from elsewhere
        b"default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
        b"img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
        b"form-action 'self'",
    ),
]


def _with_names(schema: dict) -> dict:
    """The OpenAPI document with the names a job may use as enums (they are known at start), and the
    rule that a space (a profile) is named or inline, not both."""
    request = schema.get("components", {}).get("schemas", {}).get("JobRequest", {})
    props = request.get("properties", {})
    request["allOf"] = [
        {
            "not": {
                "required": [kind, f"{kind}_yaml"],
                "properties": {kind: {"type": "string"}, f"{kind}_yaml": {"type": "string"}},
            }
        }
        for kind in ("space", "profile")
    ]
    for field, names in (
        ("workload", workload_names()),
        ("space", list(shipped_spaces())),
        ("profile", list(shipped_profiles())),
    ):
        prop = props.get(field, {})
        for branch in prop.get("anyOf", [prop]):
            if branch.get("type") == "string":
                branch["enum"] = names
    return schema


def _job_view(job: Job, *, log: bool = False) -> dict:
    view = {k: v for k, v in job.__dict__.items() if k != "stop_requested"}
    view["stopping"] = job.stop_requested and job.state == "running"
    before = job.trials_before
    done = _studies.progress(job.study, before) if before is not None else _studies.Progress()
    if job.state != "running" and done.running:  # its worker is gone: what it left running was cut off
        done = replace(done, interrupted=done.interrupted + done.running, running=0)
    view["progress"] = done.to_dict()
    status = {}
    if job.state == "running":
        try:
            status = json.loads((jobs_dir() / job.id / STATUS_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            pass
    view["stage"] = status.get("stage", "starting" if job.state == "running" else "")
    if log:
        try:
            lines = (jobs_dir() / job.id / "log.txt").read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            lines = []
        view["log_tail"] = lines[-LOG_TAIL_LINES:]
    return view


def _bearer(headers: dict[bytes, bytes]) -> str:
    value = headers.get(b"authorization", b"").decode("latin-1")
    return value[7:].strip() if value.lower().startswith("bearer ") else ""


def _cookie(headers: dict[bytes, bytes]) -> str:
    jar = SimpleCookie()
    try:
        jar.load(headers.get(b"cookie", b"").decode("latin-1"))
    except Exception:
        return ""
    return jar[COOKIE].value if COOKIE in jar else ""


class Guard:
    """ASGI middleware: the token on every route but /health, and the body size limit."""

    def __init__(self, app, token: str, max_body: int = MAX_BODY_BYTES) -> None:
        self.app, self.token, self.max_body = app, token, max_body

    def _ok(self, candidate: str) -> bool:
        return bool(candidate) and hmac.compare_digest(candidate.encode(), self.token.encode())

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        send = _secured(send)
        headers = dict(scope.get("headers") or [])
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        link = (query.get("token") or [""])[0]
        if scope["path"] == "/" and link and not self._ok(link):
            # checked even with a valid cookie: the page link must never set a cookie to any value
            return await _reply(
                send, 401, "the token in the page link is not valid: open the link autocl serve printed"
            )
        login = scope["path"] == "/" and self._ok(link)
        if scope["path"] != "/health" and not (login or self._ok(_bearer(headers)) or self._ok(_cookie(headers))):
            return await _reply(
                send,
                401,
                "a valid token is required: send 'Authorization: Bearer <token>' (the "
                "token autocl serve printed, or --token / AUTOCL_TOKEN)",
            )
        length = headers.get(b"content-length", b"0")
        if not length.isdigit():
            return await _reply(send, 400, "malformed Content-Length header")
        if int(length) > self.max_body:
            return await _reply(send, 413, f"request body over {self.max_body} bytes")
        if scope["method"] == "OPTIONS":
            return await self._options(scope, send)
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_body:
                return await _reply(send, 413, f"request body over {self.max_body} bytes")
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _options(self, scope, send) -> None:
        """``OPTIONS``: 204 with every method the path's routes answer (Starlette names one route's)."""
        from starlette.routing import Match

        allowed: set[str] = set()
        for route in getattr(self.app, "routes", []):
            match, _ = route.matches({**scope, "method": "GET"})
            if match != Match.NONE:
                allowed |= set(getattr(route, "methods", None) or ())
        if not allowed:
            return await _reply(send, 404, "Not Found")
        allow = ", ".join(sorted(allowed | {"OPTIONS"}))
        await send({"type": "http.response.start", "status": 204, "headers": [(b"allow", allow.encode())]})
        await send({"type": "http.response.body", "body": b""})


def _secured(send):
    """``send`` adding the security headers to every response (the page must not be framed, types
    must not be sniffed, scripts come from this server)."""

    async def secured(message) -> None:
        if message["type"] == "http.response.start":
            names = {k.lower() for k, _ in message.get("headers", [])}
            extra = [(k, v) for k, v in SECURITY_HEADERS if k not in names]
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return secured


async def _reply(send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _describe(exc: RequestValidationError) -> str:
    parts = []
    for e in exc.errors()[:4]:
        where = ".".join(str(p) for p in e.get("loc", ()))
        parts.append(f"{where}: {str(e.get('msg', 'invalid')).removeprefix('Value error, ')}")
    return "; ".join(parts) or "invalid request"


def create_app(token: str, *, max_running: int = 1) -> FastAPI:
    """The application; ``max_running`` workers at a time (0 records and queues jobs, runs none)."""
    jobs = JobService(max_running=max_running)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        jobs.start()
        yield
        await run_in_threadpool(jobs.shutdown)

    # the bearer and cookie schemes only document the token in the OpenAPI; Guard enforces it
    documented = [Depends(HTTPBearer(auto_error=False)), Depends(APIKeyCookie(name=COOKIE, auto_error=False))]
    app = FastAPI(
        title="autocl",
        version=autocl.__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        responses=ERRORS,
        description="Launch, watch, compare and download compression searches. Every route but "
        "/health needs the token.",
    )
    app.state.jobs = jobs

    @app.exception_handler(InputError)
    async def _input_error(_req: Request, exc: InputError):
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    @app.exception_handler(AutoclError)
    async def _autocl_error(_req: Request, exc: AutoclError):
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_req: Request, exc: RequestValidationError):
        return JSONResponse({"detail": _describe(exc)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_req: Request, exc: StarletteHTTPException):
        return JSONResponse({"detail": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _crash(_req: Request, exc: Exception):  # a bug: still JSON, and said plainly
        return JSONResponse({"detail": redact(f"internal error: {type(exc).__name__}: {exc}")}, status_code=500)

    @app.get("/health", tags=["service"])
    def health() -> dict:
        """Liveness; the only route without the token."""
        return {"status": "ok", "version": autocl.__version__}

    @app.get("/openapi.json", include_in_schema=False)
    def openapi() -> JSONResponse:
        if app.openapi_schema is None:
            app.openapi_schema = _with_names(app.openapi())
        return JSONResponse(app.openapi_schema)

    @app.get("/", include_in_schema=False)
    def page(token: Optional[str] = None) -> Response:
        from autocl.service._page import render_page

        if token:  # the printed link: keep the token in a cookie and drop it from the address bar
            response = RedirectResponse("/", status_code=303)
            response.set_cookie(COOKIE, token, httponly=True, samesite="strict")
            return response
        return HTMLResponse(render_page())

    @app.get("/plotly.min.js", include_in_schema=False)
    def plotly_js() -> Response:
        import plotly.offline

        return Response(
            plotly.offline.get_plotlyjs(),
            media_type="application/javascript",
            headers={"Cache-Control": "private, max-age=86400"},
        )

    @app.get("/api/options", tags=["jobs"], dependencies=documented)
    def options() -> dict:
        """What a job may name: registered workloads, shipped search spaces and profiles."""
        return {"workloads": workload_names(), "spaces": list(shipped_spaces()), "profiles": list(shipped_profiles())}

    @app.post("/api/jobs", status_code=201, tags=["jobs"], dependencies=documented)
    def create_job(req: JobRequest) -> dict:
        """Queue a search; it starts when a worker slot is free."""
        check_workload(req.workload)
        space = resolve_space(req.space, req.space_yaml)
        profile = resolve_profile(req.profile, req.profile_yaml)
        trials = req.trials if req.trials or req.time_budget_s else 12
        job = jobs.create(
            study=req.study,
            workload=req.workload,
            space=space,
            profile=profile,
            trials=trials,
            time_budget_s=req.time_budget_s,
            seed=req.seed,
        )
        return _job_view(job)

    @app.get("/api/jobs", tags=["jobs"], dependencies=documented)
    def list_jobs() -> list[dict]:
        """Every job, newest first, with its state and progress (trials done, failed, best so far)."""
        return [_job_view(j) for j in jobs.all()]

    job_id = Path(pattern=JOB_ID, description="a job id from POST /api/jobs")

    @app.get("/api/jobs/{job_id}", tags=["jobs"], dependencies=documented)
    def get_job(job_id: str = job_id) -> dict:
        """One job, with the tail of its worker's log."""
        return _job_view(jobs.get(job_id), log=True)

    @app.post("/api/jobs/{job_id}/stop", tags=["jobs"], dependencies=documented)
    def stop_job(job_id: str = job_id) -> dict:
        """Stop a job: the trial in progress ends the run; finished trials are kept."""
        return _job_view(jobs.stop(job_id))

    @app.post("/api/jobs/{job_id}/resume", tags=["jobs"], dependencies=documented)
    def resume_job(job_id: str = job_id) -> dict:
        """Queue a stopped, interrupted or failed job again with what is left of its budgets."""
        return _job_view(jobs.resume(job_id))

    study = Path(max_length=200, json_schema_extra={"pattern": STUDY_NAME}, description="study name")
    profile = Query(None, max_length=256, description="profile name [default: the study's primary profile]")

    @app.get("/api/studies", tags=["studies"], dependencies=documented)
    def list_studies() -> list[dict]:
        """Every study in AUTOCL_HOME with its progress and best so far."""
        return _studies.list_studies()

    @app.get("/api/studies/{study}", tags=["studies"], dependencies=documented)
    def get_study(study: str = study) -> dict:
        return _studies.summary(study)

    @app.get("/api/studies/{study}/front", tags=["studies"], dependencies=documented)
    def get_front(study: str = study, profile: Optional[str] = profile) -> list[dict]:
        """The Pareto front on a profile: what ``autocl front --format json`` prints."""
        return _studies.front(study, profile)

    @app.get("/api/studies/{study}/trials", tags=["studies"], dependencies=documented)
    def get_trials(study: str = study, profile: Optional[str] = profile) -> list[dict]:
        """Every trial with its status on the profile and the reason for anything off the front."""
        return _studies.trials(study, profile)

    @app.get("/api/studies/{study}/figures", tags=["studies"], dependencies=documented)
    def get_figures(study: str = study, profile: Optional[str] = profile) -> dict:
        """The report's Pareto figures as plotly JSON."""
        return _studies.figures(study, profile)

    @app.get(
        "/api/studies/{study}/bundle",
        tags=["studies"],
        response_class=FileResponse,
        responses={200: {"content": {"application/zip": {}}, "description": "the bundle as a zip"}},
        dependencies=documented,
    )
    def get_bundle(
        study: str = study,
        trial: Optional[int] = Query(None, ge=0, le=10**9),
        pick: Optional[str] = Query(None, max_length=200, description="e.g. knee, fastest-within:0.01"),
        profile: Optional[str] = profile,
        latency_tolerance: Optional[float] = Query(
            None, gt=0, le=1000, description="as 'autocl export --latency-tolerance' (default: its default)"
        ),
    ) -> FileResponse:
        """Export one trial (or the front member ``pick`` chooses) as ``autocl export`` does, verified,
        and download the bundle as a zip."""
        _studies.open_study(study)  # 404 first for a study that does not exist
        if trial is None and not pick:
            raise InputError(422, "give trial (a front member's number) or pick (e.g. knee)")
        archive, filename = _studies.export_zip(study, trial, pick, profile, latency_tolerance)
        return FileResponse(
            archive,
            media_type="application/zip",
            filename=filename,
            background=BackgroundTask(_studies.discard, archive),
        )

    return Guard(app, token)  # type: ignore[return-value]


__all__ = ["MAX_BODY_BYTES", "Guard", "JobRequest", "create_app"]
