"""Configuration: ``saa-lab.toml``, found as git finds its repository.

Lookup order: ``--config FILE``, then ``SAA_LAB_CONFIG``, then ``saa-lab.toml``
in the current folder or any parent. Relative paths in the file are relative to
the file's folder. Unknown keys are errors that name the file and the key and
suggest the closest known one.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from .errors import ConfigError

__all__ = [
    "CONFIG_ENV",
    "CONFIG_NAME",
    "AppConfig",
    "AutoVerificationRule",
    "User",
    "WebSettings",
    "find_config",
    "format_validation_error",
    "load_config",
    "packaged_config_dir",
]

CONFIG_NAME = "saa-lab.toml"
CONFIG_ENV = "SAA_LAB_CONFIG"


class _Section(BaseModel):
    # inf and nan are no durations, limits or thresholds (an interval of inf never polls).
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*")
    @classmethod
    def _no_nul_in_paths(cls, value: Any) -> Any:
        if isinstance(value, Path) and "\x00" in str(value):
            raise ValueError("a path cannot contain a NUL character")
        return value


class LabSettings(_Section):
    name: str = "Reference Laboratory"
    timezone: str = "UTC"
    sending_application: str = "SAA-LAB"
    sending_facility: str = "REFLAB"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # "Europe" is a folder
            msg = f"unknown time zone {value!r} (use an IANA name such as 'Europe/Berlin')"
            raise ValueError(msg) from exc
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class PathSettings(_Section):
    inbox: Path = Path("inbox")
    archive: Path = Path("archive")
    quarantine: Path = Path("quarantine")
    outbox: Path = Path("outbox")
    assays: Path = Path("config/assays")
    layouts: Path = Path("config/layouts")
    protocols: Path = Path("config/protocols")


class DatabaseSettings(_Section):
    """``[database]``: where results are stored.

    A password never goes on the command line nor, preferably, into ``url``: it comes
    from env ``SAA_LAB_DATABASE_PASSWORD`` or from ``password_file`` (env wins), and
    is put into the URL when the database is opened.
    """

    # A relative SQLite path is relative to the config file's folder.
    url: str = "sqlite:///saa-lab.db"
    # A file whose first line is the password (relative to the config file's folder).
    password_file: Path | None = None

    def password(self, base_dir: Path, source: str | None) -> str | None:
        """The password from env SAA_LAB_DATABASE_PASSWORD or ``password_file``, or None.

        An unreadable or empty password file is a ConfigError naming
        ``database.password_file``; no error message ever holds the password.
        """
        from_env = os.environ.get("SAA_LAB_DATABASE_PASSWORD")
        if from_env:
            return from_env
        if self.password_file is None:
            return None
        file = self.password_file
        file = file if file.is_absolute() else base_dir / file
        key = "database.password_file"
        try:
            text = file.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{file} is not UTF-8 text", path=source, key=key) from exc
        except OSError as exc:
            why = exc.strerror or type(exc).__name__
            msg = f"cannot read the database password file {file}: {why}"
            raise ConfigError(msg, path=source, key=key) from exc
        lines = text.splitlines()
        if not lines or not lines[0]:
            msg = f"the database password file {file} is empty (its first line is the password)"
            raise ConfigError(msg, path=source, key=key)
        return lines[0]


class WatchSettings(_Section):
    observer: Literal["native", "polling"] = "native"
    poll_interval_seconds: float = Field(default=2.0, gt=0)
    stability_seconds: float = Field(default=2.0, ge=0)
    settle_seconds: float = Field(default=0.05, ge=0)
    worklist_wait_seconds: float = Field(default=900.0, ge=0)
    # A file that stays empty (0 bytes) this long is quarantined: its export failed.
    empty_file_seconds: float = Field(default=60.0, ge=0)
    # A larger file is quarantined unread (plate exports are kilobytes; 64 MiB is no plate).
    max_file_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    ignore_patterns: tuple[str, ...] = ("*.tmp", "*.part", "~$*", ".*", "*.error.txt")
    # "auto" detects each file's format by content; a format name (see
    # `saa-lab inspect --help`) makes this inbox read every file as that format.
    format: str = "auto"

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        from .parsers.base import Instrument

        names = [str(i) for i in Instrument]
        if value != "auto" and value not in names:
            hint = difflib.get_close_matches(value, names, n=1)
            msg = f"unknown format {value!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
            raise ValueError(f"{msg}; use auto or one of {', '.join(names)}")
        return value

    @property
    def instrument(self) -> str | None:
        return None if self.format == "auto" else self.format


class ClusterSettings(_Section):
    """Several daemons on one database (a shared inbox, several instrument PCs).

    Each daemon claims a file, and the sender role of each destination, with a
    lease in the database; a lease not renewed for ``lease_seconds`` (its holder
    died) is taken over by another daemon.
    """

    lease_seconds: float = Field(default=30.0, ge=2.0, le=3600.0)


class ReportSettings(_Section):
    """Run reports beside each archived export (``saa-lab report`` makes them on demand)."""

    # Written by a separate, low-priority process after each export is archived, so
    # they never hold up results; an empty list writes none.
    formats: tuple[Literal["html", "pdf"], ...] = ("html", "pdf")


class RunSettings(_Section):
    assay: str = "aha-indooxine"
    layout: str = "aha-96"


class InterpretationSettings(_Section):
    threshold_u_per_l: float = Field(default=100.0, gt=0)
    # The protocol rule set for orders that name none (or one not configured).
    default_protocol: str = "consensus-2016"


class ListenTlsSettings(_Section):
    """``[hl7.listen_tls]``: TLS (1.2 or later) for the order listener.

    With ``require_client_cert`` (the default) every client must present a
    certificate signed by ``client_ca_file`` (mutual TLS); set it to false to accept
    clients without one (their address must still be in ``listen_allow``).
    """

    cert_file: Path
    key_file: Path
    client_ca_file: Path | None = None
    require_client_cert: bool = True
    # A client that connects and does not complete the handshake is closed after this.
    handshake_timeout_seconds: float = Field(default=10.0, gt=0)

    @model_validator(mode="after")
    def _client_ca_when_required(self) -> ListenTlsSettings:
        if self.require_client_cert and self.client_ca_file is None:
            msg = (
                "require_client_cert needs client_ca_file (the CA that signs the clients' "
                "certificates), or set require_client_cert = false"
            )
            raise ValueError(msg)
        return self


LOOPBACK_ONLY = ("127.0.0.0/8", "::1")  # = saa_lab.hl7.mllp.LOOPBACK_ONLY


class Hl7Settings(_Section):
    version: Literal["2.5.1", "2.4", "2.3.1"] = "2.5.1"
    receiving_application: str = "CLINIC-EHR"
    receiving_facility: str = "CLINIC"
    observation_code: str = "SAA"
    observation_text: str = "Asparaginase activity [Enzymatic activity/volume] in Serum or Plasma"
    coding_system: str = "L"
    units: Literal["U/L", "U/mL"] = "U/L"
    processing_id: Literal["P", "T", "D"] = "P"
    # Orders (ORM^O01 / OML^O21) over MLLP: set listen_port to start the listener
    # with `saa-lab watch`. 127.0.0.1 accepts only this machine; 0.0.0.0 all hosts.
    listen_host: str = "127.0.0.1"
    listen_port: int | None = Field(default=None, ge=0, le=65535)
    listen_read_timeout_seconds: float = Field(default=60.0, gt=0)
    listen_max_message_bytes: int = Field(default=16 * 1024 * 1024, gt=0)
    listen_max_connections: int = Field(default=64, gt=0)
    # Who may connect: addresses and CIDR networks, IPv4 or IPv6. Others are closed
    # at once and logged. The default admits this machine only, whatever listen_host.
    listen_allow: tuple[str, ...] = LOOPBACK_ONLY
    listen_tls: ListenTlsSettings | None = None

    @field_validator("listen_allow", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return (value,) if isinstance(value, str) else value

    @field_validator("listen_allow")
    @classmethod
    def _addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from .hl7.mllp import parse_allow_list

        parse_allow_list(value)  # ValueError names the entry
        return value


FILE_DESTINATION = "file"  # the implicit destination: the [paths] outbox folder


class RetrySettings(_Section):
    """Exponential backoff with jitter for AE/CE, timeouts and refused connections."""

    base_seconds: float = Field(default=5.0, gt=0)
    factor: float = Field(default=2.0, ge=1)
    max_interval_seconds: float = Field(default=600.0, gt=0)
    jitter: float = Field(default=0.2, ge=0, lt=1)
    # Long enough to outlast an overnight outage; after it the message is dead-lettered.
    budget_hours: float = Field(default=18.0, gt=0)


class TlsSettings(_Section):
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    verify_hostname: bool = True


class Destination(_Section):
    """Where results go: a directory (one file per message) or an MLLP receiver."""

    name: str = Field(min_length=1, max_length=64)
    type: Literal["directory", "mllp"]
    path: Path | None = None
    host: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    tls: TlsSettings | None = None
    version: Literal["2.5.1", "2.4", "2.3.1"] | None = None  # default: [hl7] version
    units: Literal["U/L", "U/mL"] | None = None  # default: [hl7] units
    # directory: all of a run's messages in one batch file (FHS/BHS ... BTS/FTS)
    batch: bool = False
    # Send a result waiting for review at once with OBX-11 "P", and "F" on release.
    preliminary: bool = False
    receiving_application: str | None = None  # MSH-5 (default: [hl7])
    connect_timeout_seconds: float = Field(default=5.0, gt=0)
    send_timeout_seconds: float = Field(default=5.0, gt=0)
    ack_timeout_seconds: float = Field(default=5.0, gt=0)
    retry: RetrySettings = RetrySettings()

    @model_validator(mode="after")
    def _complete(self) -> Destination:
        if self.type == "directory" and self.path is None:
            raise ValueError("a directory destination needs 'path'")
        if self.type == "mllp" and (not self.host or self.port is None):
            raise ValueError("an mllp destination needs 'host' and 'port'")
        if self.batch and self.type != "directory":
            raise ValueError("'batch' is for directory destinations")
        return self


class RoutingSettings(_Section):
    """Which destination gets a result: by the order's clinic, else the default."""

    default: str = FILE_DESTINATION
    clinics: dict[str, str] = Field(default_factory=dict)


ROLES: tuple[Literal["reviewer", "approver"], ...] = ("reviewer", "approver")
MEANINGS = {"reviewed": "reviewer", "approved": "approver"}
DEFAULT_HOLD_FLAGS = ("possible-silent-inactivation", "silent-inactivation-confirmed")


class User(_Section):
    """A person who may release, reject or correct results (21 CFR 11.50: the name and
    the meaning of each signature are recorded)."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._@-]+$")
    full_name: str = Field(min_length=1, max_length=128)
    # reviewer: release with meaning "reviewed", reject; approver: release with meaning
    # "approved", reject, correct.
    roles: tuple[Literal["reviewer", "approver"], ...] = ROLES
    # For the dashboard (saa-lab serve): a werkzeug password hash made by `saa-lab user
    # password NAME`. A user without one cannot log in to the web UI.
    password_hash: str | None = Field(default=None, max_length=512)


class WebSettings(_Section):
    """``[web]``: the dashboard (``saa-lab serve``); localhost unless told otherwise."""

    host: str = "127.0.0.1"
    port: int = Field(default=8470, ge=0, le=65535)
    # Signs the session cookies; made (mode 0600) at first start when missing. Relative
    # paths start at the config file's folder.
    secret_key_file: Path = Path("saa-lab-web.key")


class AutoVerificationRule(_Section):
    """When results may be released without a person (ISO 15189 auto-verification).

    A result is released automatically only when its run is accepted (no Westgard
    rejection), every result of the run is quantified or below the LLOQ, and its flag
    is not in ``hold_flags``. The first rule matching the run's assay and the result's
    destination applies; no matching rule means a person reviews it.
    """

    name: str = Field(default="default", min_length=1, max_length=64)
    enabled: bool = True
    assays: tuple[str, ...] = ()  # empty: every assay
    destinations: tuple[str, ...] = ()  # empty: every destination
    hold_flags: tuple[str, ...] = DEFAULT_HOLD_FLAGS
    # The statuses every result of the run must have (ISO 15189: the lab validates any
    # change). Adding "above-uloq" releases a run around samples waiting for re-assay.
    run_statuses: tuple[
        Literal["quantified", "below-lloq", "above-uloq", "above-reportable", "invalid"], ...
    ] = ("quantified", "below-lloq")
    # Hold an accepted run with QC warnings (e.g. Westgard 1-2s) for a person too.
    hold_on_qc_warnings: bool = False

    def matches(self, assay: str, destination: str) -> bool:
        return (not self.assays or assay in self.assays) and (
            not self.destinations or destination in self.destinations
        )

    @property
    def version(self) -> str:
        """``name@<hash of the rule's settings>``: recorded with every result it releases."""
        import hashlib
        import json

        settings = self.model_dump(mode="json")
        digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()
        return f"{self.name}@{digest[:12]}"


class AppConfig(_Section):
    """The whole configuration; ``base_dir`` is where relative paths start."""

    lab: LabSettings = LabSettings()
    paths: PathSettings = PathSettings()
    database: DatabaseSettings = DatabaseSettings()
    watch: WatchSettings = WatchSettings()
    cluster: ClusterSettings = ClusterSettings()
    reports: ReportSettings = ReportSettings()
    run: RunSettings = RunSettings()
    interpretation: InterpretationSettings = InterpretationSettings()
    hl7: Hl7Settings = Hl7Settings()
    destinations: tuple[Destination, ...] = ()
    routing: RoutingSettings = RoutingSettings()
    users: tuple[User, ...] = ()
    web: WebSettings = WebSettings()
    autoverification: tuple[AutoVerificationRule, ...] = (AutoVerificationRule(),)
    base_dir: Path = Field(default=Path(), exclude=True)
    source: str | None = Field(default=None, exclude=True)

    def resolve(self, path: Path) -> Path:
        return path if path.is_absolute() else (self.base_dir / path)

    @model_validator(mode="after")
    def _unique_names(self) -> AppConfig:
        for kind, names in (
            ("users", [u.name for u in self.users]),
            ("autoverification", [r.name for r in self.autoverification]),
            ("destinations", [d.name for d in self.destinations]),
        ):
            seen = {n for n in names if names.count(n) > 1}
            if seen:
                raise ValueError(f"{kind}: the name {sorted(seen)[0]!r} is used twice")
        return self

    def autoverification_rule(self, assay: str, destination: str) -> AutoVerificationRule | None:
        """The first enabled rule for this assay and destination (None: a person reviews)."""
        for rule in self.autoverification:
            if rule.enabled and rule.matches(assay, destination):
                return rule
        return None

    def user(self, name: str) -> User:
        """The configured user called ``name``; ReviewError for anyone else."""
        from .errors import ReviewError

        for user in self.users:
            if user.name == name:
                return user
        where = self.source or "the configuration"
        if not self.users:
            msg = (f"unknown user {name!r}: no users are configured; add [[users]] "
                   f"(name, full_name, roles) to {where}")  # fmt: skip
        else:
            known = ", ".join(u.name for u in self.users)
            msg = f"unknown user {name!r}: known users in {where} are {known}"
        raise ReviewError(msg)

    def all_destinations(self) -> dict[str, Destination]:
        """The configured destinations, plus ``file`` (the outbox folder) unless redefined."""
        found = {d.name: d for d in self.destinations}
        if FILE_DESTINATION not in found:
            found[FILE_DESTINATION] = Destination(
                name=FILE_DESTINATION, type="directory", path=self.paths.outbox
            )
        return found

    def destination_for(self, clinic: str | None) -> Destination:
        name = self.routing.clinics.get(clinic or "", self.routing.default)
        return self.all_destinations()[name]

    def check_routes(self) -> None:
        """Every route leads somewhere deliverable; raises ConfigError naming the setting.

        Run at start-up, so an undeliverable route is found before a result needs it.
        Receivers may be down (deliveries retry); a missing destination, directory or
        TLS file is an error now.
        """
        known = self.all_destinations()
        where = self.source
        routes = {"routing.default": self.routing.default}
        routes.update({f"routing.clinics.{c}": n for c, n in self.routing.clinics.items()})
        for key, name in routes.items():
            if name not in known:
                hint = difflib.get_close_matches(name, list(known), n=1)
                extra = f" (did you mean {hint[0]!r}?)" if hint else ""
                msg = f"no destination named {name!r}{extra}; known: {', '.join(known)}"
                raise ConfigError(msg, path=where, key=key)
        names = [d.name for d in self.destinations]
        if len(names) != len(set(names)):
            raise ConfigError("two destinations share a name", path=where, key="destinations")
        for dest in known.values():
            key = f"destinations.{dest.name}"
            if dest.type == "directory" and dest.path is not None:
                folder = self.resolve(dest.path)
                try:
                    folder.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise ConfigError(f"cannot create {folder}: {exc}", path=where,
                                      key=key) from exc  # fmt: skip
                if not os.access(folder, os.W_OK):
                    raise ConfigError(f"{folder} is not writable", path=where, key=key)
            if dest.tls is not None:
                for label in ("ca_file", "cert_file", "key_file"):
                    file = getattr(dest.tls, label)
                    if file is not None and not self.resolve(file).is_file():
                        msg = f"TLS {label} {self.resolve(file)} does not exist"
                        raise ConfigError(msg, path=where, key=f"{key}.tls.{label}")

    @property
    def inbox(self) -> Path:
        return self.resolve(self.paths.inbox)

    @property
    def archive(self) -> Path:
        return self.resolve(self.paths.archive)

    @property
    def quarantine(self) -> Path:
        return self.resolve(self.paths.quarantine)

    @property
    def outbox(self) -> Path:
        return self.resolve(self.paths.outbox)

    @property
    def database_url(self) -> str:
        """The database URL, with a relative SQLite path made absolute and the password
        (env SAA_LAB_DATABASE_PASSWORD or ``[database] password_file``) put in.

        It holds the password: show it with ``saa_lab.logs.mask_password``, never as is.
        """
        import logging
        from urllib.parse import urlsplit

        url = os.environ.get("SAA_LAB_DATABASE_URL") or self.database.url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/"):
            rest = url[len(prefix) :]
            if rest and rest != ":memory:":
                return prefix + str((self.base_dir / rest).resolve())
        if url.startswith("sqlite"):
            return url
        if url == self.database.url and self.source and urlsplit(url).password:
            logging.getLogger(__name__).warning(
                "%s: database.url holds a password; move it to database.password_file or "
                "env SAA_LAB_DATABASE_PASSWORD (config files are read by more people)",
                self.source,
            )
        password = self.database.password(self.base_dir, self.source)
        if password is None:
            return url
        from sqlalchemy.engine import make_url

        return make_url(url).set(password=password).render_as_string(hide_password=False)

    def search_dirs(self, kind: Literal["assays", "layouts", "protocols"]) -> list[Path]:
        """Where assay/layout/protocol files are looked up: the lab's folder, then the defaults."""
        own = self.resolve(getattr(self.paths, kind))
        return [own, packaged_config_dir() / kind]


def packaged_config_dir() -> Path:
    """The defaults shipped inside the package (``config/`` in the repository)."""
    return Path(str(resources.files("saa_lab.default_config")))


def find_config(start: Path | None = None) -> Path | None:
    """``SAA_LAB_CONFIG`` if set, else the nearest ``saa-lab.toml`` upwards from ``start``."""
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env)
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return candidate
    return None


def load_config(path: Path | None) -> AppConfig:
    """Load and validate a config file; ``None`` gives the embedded defaults in the cwd."""
    if path is None:
        return AppConfig(base_dir=Path.cwd())
    if not path.is_file():
        msg = f"configuration file not found (run 'saa-lab init {path.parent}' to create one)"
        raise ConfigError(msg, path=str(path))
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {_printable(str(exc))}", path=str(path)) from exc
    except RecursionError as exc:
        raise ConfigError("not valid TOML: nested too deeply", path=str(path)) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError("not UTF-8 text", path=str(path)) from exc
    try:
        return AppConfig.model_validate(
            {**data, "base_dir": path.resolve().parent, "source": str(path)}
        )
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, AppConfig), path=str(path)) from exc


def _known_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    current: type[BaseModel] | None = model
    for part in loc[:-1]:
        if current is None or not isinstance(part, str) or part not in current.model_fields:
            return []
        annotation = current.model_fields[part].annotation
        current = (
            annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel)
            else None
        )
    if current is None:
        return []
    return [name for name, f in current.model_fields.items() if not f.exclude]


def format_validation_error(exc: ValidationError, model: type[BaseModel]) -> str:
    """One line per problem: ``key: what is wrong`` (with "did you mean" for typos)."""
    lines = []
    for error in exc.errors():
        loc = tuple(_printable(str(p)) if isinstance(p, str) else p for p in error["loc"])
        key = ".".join(str(p) for p in loc)
        if error["type"] == "extra_forbidden":
            known = _known_keys(model, loc)
            hint = difflib.get_close_matches(str(loc[-1]), known, n=1)
            text = f"unknown setting '{key}'"
            if hint:
                text += f" (did you mean '{'.'.join([*map(str, loc[:-1]), hint[0]])}'?)"
            elif known:
                text += f"; known here: {', '.join(sorted(known))}"
            lines.append(text)
        else:
            lines.append(f"{key}: {_printable(error['msg'])}")
    return "; ".join(lines)


def _printable(text: str) -> str:
    """``text`` with control characters escaped (``\\n``): an error stays one line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
