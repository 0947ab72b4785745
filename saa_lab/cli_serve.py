"""``saa-lab serve`` (the dashboard) and ``saa-lab user password NAME``.

Registered on the ``saa-lab`` group by :mod:`saa_lab.cli`. Flask and waitress are
imported inside the command, so ``saa-lab --help`` stays fast.
"""

from __future__ import annotations

import ipaddress
import json
import signal
import socket
import sys
from typing import NoReturn

import click

from .cli import AppContext, _handle_errors, cli, pass_app
from .errors import SaaLabError

MIN_PASSWORD_LENGTH = 10


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


@cli.command()
@click.option("--host", metavar="ADDRESS",
              help="Listen on this address (default: [web] host, 127.0.0.1).")  # fmt: skip
@click.option("--port", type=click.IntRange(0, 65535),
              help="Listen on this port, 0: any free one (default: [web] port, 8470).")  # fmt: skip
@click.option("--threads", type=click.IntRange(1, 64), default=4, show_default=True,
              help="Requests served at once.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True,
              help="Once listening, print the address as one JSON line.")  # fmt: skip
@pass_app
@_handle_errors
def serve(app: AppContext, host: str | None, port: int | None, threads: int,
          as_json: bool) -> None:  # fmt: skip
    """Serve the dashboard: recent runs, run reports, the review queue (release, reject),
    the outbox (retry dead letters), quarantined files and patient timelines.

    It listens on localhost unless told otherwise; every page needs a login (users
    from [[users]] with a password_hash, see 'saa-lab user password'). Put a reverse
    proxy with TLS in front before listening on another address. Runs until Ctrl-C
    or SIGTERM; messages released here are sent by the daemon (saa-lab watch).
    """
    from waitress.server import create_server

    from .web import create_app

    config = app.config
    host = host if host is not None else config.web.host
    port = port if port is not None else config.web.port
    if not _loopback(host):
        click.echo(
            f"warning: the dashboard listens on {host}, reachable from other computers; it "
            "speaks plain HTTP, so put a reverse proxy with TLS in front (docs/dashboard.md)",
            err=True,
        )
    if not any(u.password_hash for u in config.users):
        click.echo("warning: no user can log in: give a [[users]] entry a password_hash "
                   "(saa-lab user password NAME)", err=True)  # fmt: skip
    web = create_app(config, app.store)
    try:  # bound here, so a taken port fails before waitress starts its threads
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listening = socket.create_server((host.strip("[]"), port), family=family)
    except OSError as exc:
        raise SaaLabError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    server = create_server(web, sockets=[listening], threads=threads, ident="saa-lab",
                           clear_untrusted_proxy_headers=True)  # fmt: skip

    def stop(_signum: int, _frame: object) -> NoReturn:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    bound_port = listening.getsockname()[1]
    shown = f"[{host.strip('[]')}]" if ":" in host else host
    url = f"http://{shown}:{bound_port}/"
    if as_json:
        click.echo(json.dumps({"url": url, "host": host, "port": bound_port}))
        sys.stdout.flush()
    click.echo(f"saa-lab dashboard on {url} (Ctrl-C to stop)", err=True)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


@cli.group()
def user() -> None:
    """The people in [[users]]: passwords for the dashboard."""


@user.command("password")
@click.argument("name")
@pass_app
def user_password(app: AppContext, name: str) -> None:
    """Print a password hash for NAME to paste into their [[users]] entry.

    Asks for the password twice, without showing it. The hash (werkzeug scrypt) is
    all the configuration holds; the password itself is stored nowhere. Without a
    password_hash a user cannot log in to the dashboard (the CLI needs none).
    """
    from werkzeug.security import generate_password_hash

    try:
        found = app.config.user(name)
    except SaaLabError as exc:
        click.echo(f"note: {exc}; add the [[users]] entry too", err=True)
        found = None

    def long_enough(value: str) -> str:
        if len(value) < MIN_PASSWORD_LENGTH:
            raise click.BadParameter(f"use at least {MIN_PASSWORD_LENGTH} characters")
        return value

    password = click.prompt(f"Password for {name}", hide_input=True, confirmation_prompt=True,
                            value_proc=long_enough, err=True)  # fmt: skip
    hashed = generate_password_hash(password)
    where = f"{app.config.source}" if app.config.source and found else "saa-lab.toml"
    click.echo(f'# paste into the [[users]] entry with name = "{name}" in {where}:')
    click.echo(f'password_hash = "{hashed}"')
