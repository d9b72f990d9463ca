"""The server's configuration: apps, database, broker, REST limits and realtime settings.

Apps come from a TOML config file and from the environment; an app in both
takes its secret key from the environment. The config file looks like this::

    # Contains secret keys: readable by its owner only.
    database = "talkjs-server.sqlite3"   # optional; --database overrides it
    broker = "memory://"                 # optional; TALKJS_BROKER_URL and --broker override it
    broker_prefix = "talkjs"             # optional; Redis names start with it

    [limits]                             # optional; these are the defaults
    max_body_bytes = 2097152
    requests_per_second = 50.0
    burst = 100

    [realtime]                           # optional; any key of RealtimeSettings or ServerLimits
    per_message_deflate = false
    heartbeat_interval = 20.0

    [[apps]]
    id = "my-app"
    secret_key = "sk_..."

The environment variables are ``TALKJS_APPS``, a JSON object of app ids to
secret keys, ``TALKJS_APP_ID`` with ``TALKJS_SECRET_KEY`` for a single app,
and ``TALKJS_BROKER_URL`` for the broker.

The database is a SQLite file (a path or a ``sqlite:///`` URL) for one server
process, or a ``postgresql://`` URL that several server nodes share. The
broker is ``memory://`` for one process, or a ``redis://`` URL that carries
events between the nodes.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import stat
import tempfile
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..auth import App, generate_secret_key
from ..errors import InvalidInput
from ..models import MAX_ID_LENGTH
from ..protocol import ServerLimits
from ..redaction import redact_url
from ..store.urls import is_postgres_url
from .rate_limit import RateLimit
from .realtime_settings import RealtimeSettings

__all__ = [
    "APPS_VARIABLE",
    "APP_ID_VARIABLE",
    "BROKER_URL_VARIABLE",
    "DEFAULT_BROKER",
    "DEFAULT_BROKER_PREFIX",
    "DEFAULT_CONFIG_PATH",
    "DEFAULT_DATABASE",
    "DEFAULT_MAX_BODY_BYTES",
    "SECRET_KEY_VARIABLE",
    "ConfigError",
    "ServerConfig",
    "ServerSettings",
    "add_app",
    "apps_from_environment",
    "describe_database",
    "load_database_setting",
    "load_server_config",
    "parse_broker_url",
    "parse_database",
    "read_config_file",
    "redact_url",
]

logger = logging.getLogger(__name__)

DEFAULT_CONFIG_PATH = Path("talkjs-server.toml")
"""The config file that ``serve`` and ``apps create`` use without ``--config``."""

DEFAULT_DATABASE = "talkjs-server.sqlite3"
"""The SQLite file used when neither ``--database`` nor the config file names one."""

DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024
"""Largest request body accepted, in bytes: 2 MiB.

Ten messages at the 20,000-character limit take 1.2 MB when every
character is JSON-escaped as ``\\uXXXX`` (6 bytes), so a full message batch fits.
"""

APPS_VARIABLE = "TALKJS_APPS"
"""Environment variable with a JSON object of app ids to secret keys."""

APP_ID_VARIABLE = "TALKJS_APP_ID"
"""Environment variable with the id of one app, whose key is in ``TALKJS_SECRET_KEY``."""

SECRET_KEY_VARIABLE = "TALKJS_SECRET_KEY"
"""Environment variable with the secret key of the app in ``TALKJS_APP_ID``."""

BROKER_URL_VARIABLE = "TALKJS_BROKER_URL"
"""Environment variable with the broker URL; ``--broker`` overrides it, it overrides the file."""

DEFAULT_BROKER = "memory://"
"""The broker used when no option, variable or config file names one: in-process only."""

DEFAULT_BROKER_PREFIX = "talkjs"
"""Start of the broker's names in Redis, so that several installations can share one Redis."""

_BROKER_SCHEMES = ("memory", "redis", "rediss")

_URL_UNSAFE_ID = re.compile(r"[\x00-\x1f/\\\s]")

_CONFIG_FILE_HEADER = (
    "# talkjs-components server configuration.\n"
    "# It contains secret keys: keep it readable by its owner only (mode 0600).\n"
)


class ConfigError(InvalidInput):
    """The config file, an environment variable or a command-line option is invalid."""

    code = "invalid_config"


@dataclass(frozen=True)
class ServerSettings:
    """Limits of the REST API; docs/rest.md lists them."""

    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    """Largest request body accepted, in bytes; a larger one gets 413."""
    rate_limit: RateLimit = field(default_factory=RateLimit)
    """Requests per app, per server process; more get 429 with ``Retry-After``."""


@dataclass(frozen=True)
class ServerConfig:
    """Everything the server app needs to start."""

    apps: tuple[App, ...]
    database: Path | str
    """The SQLite file (a ``Path``), or a ``postgresql://`` URL (a ``str``).

    A URL can contain a password: log it through :func:`describe_database`.
    """
    settings: ServerSettings = field(default_factory=ServerSettings)
    broker: str = DEFAULT_BROKER
    """The broker URL: ``memory://``, or a ``redis://`` URL that can contain a password."""
    broker_prefix: str = DEFAULT_BROKER_PREFIX
    """Start of the broker's channel names; nodes of one installation share it."""
    realtime: RealtimeSettings = field(default_factory=RealtimeSettings)
    """Limits, timeouts and compression of the realtime endpoint."""


class _AppEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    secret_key: str


class _Limits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_body_bytes: Annotated[int, Field(ge=1)] = DEFAULT_MAX_BODY_BYTES
    requests_per_second: Annotated[float, Field(gt=0, allow_inf_nan=False)] = (
        RateLimit().requests_per_second
    )
    burst: Annotated[int, Field(ge=1)] = RateLimit().burst


class _Realtime(BaseModel):
    """The ``[realtime]`` table: the fields of ``RealtimeSettings`` and ``ServerLimits`` in one.

    Types are checked here and ranges by the two dataclasses, so the limits
    are stated once. Strict, so that ``per_message_deflate = "no"`` is an
    error instead of a truthy string.
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    per_message_deflate: bool | None = None
    max_queued_bytes: int | None = None
    max_held_events: int | None = None
    replay_page_size: int | None = None
    drain_timeout: float | None = None
    close_timeout: float | None = None
    max_frame_bytes: int | None = None
    heartbeat_interval: float | None = None
    idle_timeout: float | None = None
    handshake_timeout: float | None = None
    max_in_flight_requests: int | None = None

    def to_settings(self) -> RealtimeSettings:
        """Build the settings, with the defaults for the keys not given.

        Raises:
            InvalidInput: a value is out of range, or ``idle_timeout`` is not
                longer than ``heartbeat_interval``.
        """
        set_keys = self.model_dump(exclude_none=True)
        limit_names = set(ServerLimits.__dataclass_fields__)
        limits = ServerLimits(
            **{name: value for name, value in set_keys.items() if name in limit_names}
        )
        others = {name: value for name, value in set_keys.items() if name not in limit_names}
        return RealtimeSettings(limits=limits, **others)


class _ConfigFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    database: str | None = None
    broker: str | None = None
    broker_prefix: Annotated[str, Field(pattern=r"^\S+$")] = DEFAULT_BROKER_PREFIX
    limits: _Limits = Field(default_factory=_Limits)
    realtime: _Realtime = Field(default_factory=_Realtime)
    apps: list[_AppEntry] = Field(default_factory=list)


@dataclass(frozen=True)
class _FileContents:
    apps: list[App]
    database: str | None
    settings: ServerSettings
    broker: str | None = None
    broker_prefix: str = DEFAULT_BROKER_PREFIX
    realtime: RealtimeSettings = field(default_factory=RealtimeSettings)


def read_config_file(path: Path) -> _FileContents:
    """Read and check a config file.

    Raises:
        ConfigError: the file cannot be read, is not TOML, or has an unknown
            key, a value of the wrong type or an invalid app.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    try:
        parsed = _ConfigFile.model_validate(tomllib.loads(text))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        location = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"config file {path}: '{location}' is invalid: {first['msg']}") from exc
    _warn_if_readable_by_others(path)
    apps = [_make_app(entry.id, entry.secret_key, f"config file {path}") for entry in parsed.apps]
    limits = parsed.limits
    settings = ServerSettings(
        max_body_bytes=limits.max_body_bytes,
        rate_limit=RateLimit(limits.requests_per_second, limits.burst),
    )
    try:
        realtime = parsed.realtime.to_settings()
    except InvalidInput as exc:
        raise ConfigError(f"config file {path}: [realtime] is invalid: {exc.message}") from exc
    return _FileContents(
        apps, parsed.database, settings, parsed.broker, parsed.broker_prefix, realtime
    )


def apps_from_environment(environ: Mapping[str, str]) -> list[App]:
    """Return the apps that ``TALKJS_APPS`` and ``TALKJS_APP_ID``/``TALKJS_SECRET_KEY`` define.

    Raises:
        ConfigError: a variable is malformed, or only one of the pair is set.
    """
    apps: list[App] = []
    encoded = environ.get(APPS_VARIABLE)
    if encoded:
        try:
            decoded = json.loads(encoded)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"{APPS_VARIABLE} is not valid JSON ({exc.msg}): set it to an object of app ids "
                'to secret keys, like {"my-app": "sk_..."}'
            ) from exc
        if not isinstance(decoded, dict) or not all(
            isinstance(value, str) for value in decoded.values()
        ):
            raise ConfigError(
                f"{APPS_VARIABLE} must be a JSON object of app ids to secret key strings, "
                'like {"my-app": "sk_..."}'
            )
        apps += [_make_app(app_id, key, APPS_VARIABLE) for app_id, key in decoded.items()]

    app_id = environ.get(APP_ID_VARIABLE)
    secret_key = environ.get(SECRET_KEY_VARIABLE)
    if bool(app_id) != bool(secret_key):
        missing = SECRET_KEY_VARIABLE if app_id else APP_ID_VARIABLE
        raise ConfigError(
            f"{APP_ID_VARIABLE} and {SECRET_KEY_VARIABLE} go together, but {missing} is not set"
        )
    if app_id and secret_key:
        apps.append(_make_app(app_id, secret_key, APP_ID_VARIABLE))
    return apps


def parse_database(value: str) -> Path | str:
    """Return the database that ``value`` names: a SQLite file as a ``Path``, or a PostgreSQL URL.

    As in SQLAlchemy's URLs, ``sqlite:///chat.db`` is relative to the current
    directory and ``sqlite:////srv/chat.db`` is absolute. A
    ``postgresql://`` or ``postgres://`` URL is returned unchanged.

    Raises:
        ConfigError: ``value`` is empty, or a URL of another database.
    """
    if is_postgres_url(value):
        return value
    if value.startswith("sqlite:///"):
        path = value.removeprefix("sqlite:///")
        if path:
            return Path(path)
    elif "://" not in value and value:
        return Path(value)
    raise ConfigError(
        f"database {redact_url(value)!r} is not supported: pass a SQLite file path, a "
        "sqlite:///PATH URL, or a postgresql://USER@HOST:PORT/DATABASE URL"
    )


def parse_broker_url(value: str) -> str:
    """Check a broker URL and return it: ``memory://``, ``redis://`` or ``rediss://``.

    Raises:
        ConfigError: ``value`` has another scheme, or no scheme.
    """
    scheme, separator, _ = value.partition("://")
    if not separator or scheme.lower() not in _BROKER_SCHEMES:
        raise ConfigError(
            f"broker {redact_url(value)!r} is not supported: pass memory:// for a single server "
            "process, or redis://HOST:6379 (rediss:// with TLS) to share events between nodes"
        )
    return value


def describe_database(database: Path | str) -> str:
    """Return ``database`` for logs and messages: the path, or the URL with its password masked."""
    return str(database) if isinstance(database, Path) else redact_url(database)


def load_database_setting(config_path: Path | None, *, database: str | None = None) -> Path | str:
    """Return the database that ``--database`` or the config file names; the default otherwise.

    Unlike :func:`load_server_config`, this needs no app, for commands that
    only touch the database (``talkjs-components migrate``).

    Raises:
        ConfigError: the config file named is missing or invalid, or the
            database value is not supported.
    """
    path = config_path if config_path is not None else DEFAULT_CONFIG_PATH
    file_database = None
    if config_path is not None or path.exists():
        file_database = read_config_file(path).database
    return parse_database(database or file_database or DEFAULT_DATABASE)


def load_server_config(
    config_path: Path | None,
    *,
    database: str | None = None,
    broker: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> ServerConfig:
    """Combine the config file, the environment and the ``--database`` and ``--broker`` options.

    Args:
        config_path: The config file; ``None`` reads ``DEFAULT_CONFIG_PATH``
            when it exists. A file named explicitly must exist.
        database: The ``--database`` option, which overrides the file's.
        broker: The ``--broker`` option, which overrides ``TALKJS_BROKER_URL``,
            which overrides the file's.
        environ: The environment; ``os.environ`` when omitted.

    Raises:
        ConfigError: a source is invalid, or no app is configured anywhere.
    """
    environ = os.environ if environ is None else environ
    path = config_path if config_path is not None else DEFAULT_CONFIG_PATH
    if config_path is not None or path.exists():
        contents = read_config_file(path)
    else:
        contents = _FileContents([], None, ServerSettings())

    # The database and broker are checked before the apps, so that an
    # unsupported URL is reported even where no app is configured yet.
    chosen_database = parse_database(database or contents.database or DEFAULT_DATABASE)
    chosen_broker = parse_broker_url(
        broker or environ.get(BROKER_URL_VARIABLE) or contents.broker or DEFAULT_BROKER
    )
    apps = {app.app_id: app for app in contents.apps}
    for app in apps_from_environment(environ):
        if app.app_id in apps:
            logger.info("app %r takes its secret key from the environment", app.app_id)
        apps[app.app_id] = app
    if not apps:
        raise ConfigError(
            f"no app is configured: run 'talkjs-components apps create' to add one to {path}, "
            f"or set {APP_ID_VARIABLE} and {SECRET_KEY_VARIABLE}"
        )
    return ServerConfig(
        tuple(apps.values()),
        chosen_database,
        contents.settings,
        broker=chosen_broker,
        broker_prefix=contents.broker_prefix,
        realtime=contents.realtime,
    )


def add_app(path: Path, app_id: str | None = None) -> tuple[str, str]:
    """Add an app with a new secret key to the config file and return ``(app_id, secret_key)``.

    The file is created when missing. Its text is kept as it is and a
    ``[[apps]]`` table is appended, so comments survive. The new file is
    written to a temporary file of mode 0600 and renamed over the old one, so
    a crash leaves either file whole and no other user can read the key.

    Raises:
        ConfigError: the existing file is invalid, ``app_id`` is invalid, or
            the file already has an app with that id.
    """
    existing = read_config_file(path) if path.exists() else None
    if app_id is None:
        app_id = "app_" + secrets.token_hex(6)
    secret_key = generate_secret_key()
    _make_app(app_id, secret_key, "--id")
    if existing is not None and any(app.app_id == app_id for app in existing.apps):
        raise ConfigError(
            f"config file {path} already has app {app_id!r}: choose another --id, or edit the "
            "file to replace that app's key"
        )

    text = path.read_text(encoding="utf-8") if existing is not None else _CONFIG_FILE_HEADER
    if text and not text.endswith("\n"):
        text += "\n"
    # json.dumps writes a string that is also a valid TOML basic string.
    text += f"\n[[apps]]\nid = {json.dumps(app_id)}\nsecret_key = {json.dumps(secret_key)}\n"
    _write_private(path, text)
    return app_id, secret_key


def _write_private(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` through a temporary file of mode 0600 in the same folder."""
    directory = path.parent if str(path.parent) else Path()
    descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp creates the file with mode 0600 whatever the umask.
        with os.fdopen(descriptor, "w", encoding="utf-8") as output:
            output.write(text)
            output.flush()
            os.fsync(output.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _make_app(app_id: object, secret_key: object, source: str) -> App:
    if not isinstance(app_id, str) or not isinstance(secret_key, str):
        raise ConfigError(f"{source}: app ids and secret keys must be strings")
    # App ids are URL path segments of the REST API (/v1/{appId}/...).
    if not app_id or _URL_UNSAFE_ID.search(app_id) or len(app_id) > MAX_ID_LENGTH:
        raise ConfigError(
            f"{source}: app id {app_id!r} is invalid: use 1 to {MAX_ID_LENGTH} characters "
            "without whitespace, slashes, backslashes or control characters"
        )
    try:
        return App(app_id, secret_key=secret_key)
    except InvalidInput as exc:
        raise ConfigError(f"{source}: {exc.message}") from exc


def _warn_if_readable_by_others(path: Path) -> None:
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        logger.warning(
            "config file %s contains secret keys but other users may read it (mode %o): "
            "run chmod 600 %s",
            path,
            stat.S_IMODE(mode),
            path,
        )
