"""Login, sessions and CSRF for the dashboard.

* Users are the configuration's ``[[users]]``; only those with a ``password_hash``
  (werkzeug's scrypt or pbkdf2, made by ``saa-lab user password NAME``) can log in.
* The session is Flask's signed cookie (HttpOnly, SameSite=Strict, 12 hours). It
  carries the user's name and a fingerprint of their password hash: changing a
  password, or removing the user from the config, ends their sessions.
* Every POST needs the session's CSRF token in the form field ``csrf_token``
  (synchronizer token, compared in constant time), or it is refused with 400. Written
  here rather than taken from Flask-WTF: the forms are a handful of plain HTML
  forms, and the check is a few lines; SameSite=Strict cookies are the second layer.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import logging
import os
import secrets
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.security import check_password_hash, generate_password_hash

from ..errors import ConfigError

if TYPE_CHECKING:
    from flask.typing import ResponseReturnValue

    from ..config import User

__all__ = [
    "CSRF_FIELD",
    "bp",
    "check_csrf",
    "csrf_token",
    "load_secret_key",
    "require_login",
    "template_context",
]

log = logging.getLogger(__name__)
bp = Blueprint("auth", __name__)

CSRF_FIELD = "csrf_token"
_OPEN = {"auth.login", "static"}  # reachable without logging in
_UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


@functools.cache
def _dummy_hash() -> str:
    """Checked when the name is unknown, so a wrong name costs as long as a wrong password."""
    return generate_password_hash(secrets.token_hex(16))


def load_secret_key(path: Path) -> bytes:
    """The key that signs session cookies: the first line of ``path``, or, when there is
    no such file, 32 random bytes written to it (hex, mode 0600, never overwritten)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    except OSError as exc:
        msg = f"cannot create the dashboard's secret key file: {exc.strerror or exc}"
        raise ConfigError(msg, path=str(path), key="web.secret_key_file") from exc
    else:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(secrets.token_hex(32) + "\n")
        log.warning("made a new secret key for the dashboard's sessions in %s", path)
    try:
        mode = path.stat().st_mode
        key = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        msg = f"cannot read the dashboard's secret key: {getattr(exc, 'strerror', None) or exc}"
        raise ConfigError(msg, path=str(path), key="web.secret_key_file") from exc
    if len(key) < 32:
        msg = "the secret key is shorter than 32 characters; delete the file to make a new one"
        raise ConfigError(msg, path=str(path), key="web.secret_key_file")
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("%s is readable by others (mode %o): whoever reads it can forge a login; "
                    "chmod 600 it", path, stat.S_IMODE(mode))  # fmt: skip
    return key.encode("ascii")


def _fingerprint(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


def _user(name: object) -> User | None:
    """The configured user ``name`` who may log in (has a password hash), or None."""
    config = current_app.extensions["saa_lab"].config
    found = next((u for u in config.users if u.name == name), None)
    return found if found is not None and found.password_hash else None


def csrf_token() -> str:
    """This session's CSRF token (made on first use)."""
    token = session.get("csrf")
    if not isinstance(token, str):
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def check_csrf() -> None:
    """Refuse (400) a POST whose form does not carry this session's CSRF token."""
    if request.method not in _UNSAFE_METHODS:
        return
    sent = request.form.get(CSRF_FIELD, "")
    expected = session.get("csrf")
    if not isinstance(expected, str) or not hmac.compare_digest(sent.encode(), expected.encode()):
        abort(400, description="the form's security token is missing or out of date: "
                               "reload the page and try again")  # fmt: skip


def require_login() -> ResponseReturnValue | None:
    """Every page but the login page and static files needs a logged-in user."""
    if request.endpoint in _OPEN:
        return None
    user = _user(session.get("user"))
    if (
        user is None
        or user.password_hash is None
        or (session.get("pw") != _fingerprint(user.password_hash))
    ):
        session.pop("user", None)
        session.pop("pw", None)
        if request.method in _UNSAFE_METHODS:
            abort(401, description="log in first")
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    g.user = user
    return None


def template_context() -> dict[str, Any]:
    return {"csrf_token": csrf_token, "csrf_field": CSRF_FIELD, "user": g.get("user")}


def _safe_next(target: str | None) -> str:
    """Only a path on this site (no scheme, no host, not ``//host``)."""
    if target:
        parts = urlsplit(target)
        if (
            not parts.scheme
            and not parts.netloc
            and target.startswith("/")
            and (not target.startswith("//") and "\\" not in target)
        ):
            return target
    return url_for("views.runs")


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    error = None
    name = ""
    if request.method == "POST":
        name = request.form.get("username", "").strip()
        password = request.form.get("password", "")
        user = _user(name)
        stored = user.password_hash if user is not None and user.password_hash else _dummy_hash()
        with contextlib.suppress(ValueError):  # an unusable hash in the config: no login
            if check_password_hash(stored, password) and user is not None:
                session.clear()
                session.permanent = True
                session["user"] = user.name
                session["pw"] = _fingerprint(stored)
                session["csrf"] = secrets.token_urlsafe(32)
                log.info("dashboard login: %s", user.name)
                return redirect(_safe_next(request.args.get("next")))
        log.warning("dashboard login refused for %r from %s", name[:64], request.remote_addr)
        error = "Unknown user or wrong password (users need a password_hash in [[users]])."
    return render_template("login.html", error=error, username=name), 401 if error else 200


@bp.route("/logout", methods=["POST"])
def logout() -> ResponseReturnValue:
    session.clear()
    return redirect(url_for("auth.login"))
