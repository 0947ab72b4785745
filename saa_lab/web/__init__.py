"""The dashboard: a small, read-mostly web UI over the store (``saa-lab serve``).

Server-rendered pages (Flask, Jinja2 templates with autoescape, plain CSS, no
script): recent runs, a run's report, the review queue with release and reject,
the outbox by destination with dead letters and retry, quarantined files and a
patient's timeline. Every page but ``/login`` and ``/static`` needs a logged-in
user from ``[[users]]`` with a ``password_hash``; every POST form carries a CSRF
token. Decisions go through :mod:`saa_lab.review`, as ``saa-lab release`` and
``saa-lab reject`` do, so the audit trail records the same name and meaning.

The dashboard never sends messages itself: a release queues them in the outbox and
the daemon (``saa-lab watch``) delivers them.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from flask import Flask, Response, g, request

from .auth import load_secret_key

if TYPE_CHECKING:
    from ..config import AppConfig
    from ..store import Store

__all__ = ["SESSION_HOURS", "create_app", "load_secret_key"]

log = logging.getLogger(__name__)

SESSION_HOURS = 12  # a logged-in session lasts one working day at most
_HERE = Path(__file__).resolve().parent
# No script, no external resource: the report's charts are inline SVG and it has
# inline style attributes, hence 'unsafe-inline' for styles only.
CSP = (
    "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def create_app(config: AppConfig, store: Store, *, secret_key: bytes | None = None) -> Flask:
    """The dashboard's WSGI application on ``config`` and ``store``.

    ``secret_key`` signs the session cookies; by default it is read from (or, the first
    time, made in) ``[web] secret_key_file``.
    """
    from . import auth, views

    app = Flask(
        __name__,
        template_folder=str(_HERE / "templates"),
        static_folder=str(_HERE / "static"),
    )
    app.config.update(
        SECRET_KEY=secret_key or load_secret_key(config.resolve(config.web.secret_key_file)),
        SESSION_COOKIE_NAME="saa_lab_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=SESSION_HOURS),
        MAX_CONTENT_LENGTH=64 * 1024,  # forms only: no uploads
        TEMPLATES_AUTO_RELOAD=False,
    )
    app.extensions["saa_lab"] = views.Lab(config, store)
    app.jinja_env.filters.update(views.FILTERS)
    app.register_blueprint(auth.bp)
    app.register_blueprint(views.bp)
    app.before_request(_start_clock)
    app.before_request(auth.require_login)
    app.before_request(auth.check_csrf)
    app.after_request(_headers)
    app.context_processor(auth.template_context)
    return app


def _start_clock() -> None:
    g.started = time.perf_counter()


def _headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CSP)
    headers["X-Content-Type-Options"] = "nosniff"
    headers["X-Frame-Options"] = "DENY"
    headers["Referrer-Policy"] = "same-origin"
    if request.endpoint != "static":
        headers["Cache-Control"] = "no-store"  # pages hold patient data
    started = g.get("started")
    if started is not None:
        ms = (time.perf_counter() - started) * 1000
        headers["Server-Timing"] = f"app;dur={ms:.1f}"
        log.debug("%s %s %d in %.1f ms", request.method, request.path, response.status_code, ms)
    return response
