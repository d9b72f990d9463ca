"""Matrix Synapse as the baseline chat server: install check, config, process, client.

Synapse is not a dependency of this package. It runs from a virtual
environment of its own, never the project's, found in this order:
``--synapse-venv``, ``$BENCH_SYNAPSE_VENV``, ``benchmarks/.venv-synapse``
(git-ignored). ``INSTALL_HINT`` explains how to create it.

The homeserver runs monolithic on SQLite, on 127.0.0.1 with only the client
API, with no trusted key servers (nothing leaves the machine), logging at
WARNING, and with every rate limit raised so that it never throttles a
benchmark. Users are registered through the shared-secret admin API.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import subprocess
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from .processes import ChildProcess, free_port, running_process

__all__ = [
    "DEFAULT_VENV",
    "INSTALL_HINT",
    "MatrixClient",
    "MatrixUser",
    "SynapseServer",
    "find_synapse",
    "serving_synapse",
    "timeline_texts",
]

DEFAULT_VENV = Path(__file__).resolve().parent / ".venv-synapse"
"""The default location of Synapse's virtual environment."""

INSTALL_HINT = (
    "install Synapse into a virtual environment of its own (not the project's): "
    "python3 -m venv benchmarks/.venv-synapse && "
    "benchmarks/.venv-synapse/bin/pip install matrix-synapse==1.163.2; "
    "or pass --synapse-venv PATH (or set BENCH_SYNAPSE_VENV) to use another one"
)

_SERVER_NAME = "localhost"
_LIMIT = {"per_second": 1_000_000, "burst_count": 1_000_000}

# Every rate limit a benchmark could touch, raised out of the way. The names
# are those of Synapse's configuration manual ("Ratelimiting").
_RATE_LIMITS: dict[str, object] = {
    "rc_message": _LIMIT,
    "rc_registration": _LIMIT,
    "rc_registration_token_validity": _LIMIT,
    "rc_login": {"address": _LIMIT, "account": _LIMIT, "failed_attempts": _LIMIT},
    "rc_joins": {"local": _LIMIT, "remote": _LIMIT},
    "rc_joins_per_room": _LIMIT,
    "rc_invites": {"per_room": _LIMIT, "per_user": _LIMIT, "per_issuer": _LIMIT},
    "rc_room_creation": _LIMIT,
    "rc_presence": {"per_user": _LIMIT},
    "rc_admin_redaction": _LIMIT,
}

_LOG_CONFIG = """\
version: 1
formatters:
  precise:
    format: '%(asctime)s %(levelname)s %(name)s: %(message)s'
handlers:
  file:
    class: logging.FileHandler
    formatter: precise
    filename: {path}
root:
  level: WARNING
  handlers: [file]
disable_existing_loggers: false
"""


def find_synapse(venv: Path | None) -> tuple[Path | None, str]:
    """Return Synapse's Python interpreter and version, or ``None`` and why it is unusable."""
    if venv is not None:
        directory = venv
    elif os.environ.get("BENCH_SYNAPSE_VENV"):
        directory = Path(os.environ["BENCH_SYNAPSE_VENV"])
    else:
        directory = DEFAULT_VENV
    python = directory / "bin" / "python"
    if not python.exists():
        return None, f"no virtual environment at {directory}"
    try:
        result = subprocess.run(
            [str(python), "-c", "import synapse; print(synapse.__version__)"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"running {python} failed: {exc}"
    if result.returncode != 0:
        return None, f"{python} cannot import synapse: {result.stderr.strip()[-300:]}"
    return python, result.stdout.strip()


@dataclass(frozen=True)
class MatrixUser:
    """A registered user: full id (``@name:localhost``) and access token."""

    user_id: str
    access_token: str


@dataclass(frozen=True)
class SynapseServer:
    """A running homeserver and its registration secret."""

    base_url: str
    shared_secret: str
    process: ChildProcess
    version: str

    async def register(self, http: httpx.AsyncClient, name: str) -> MatrixUser:
        """Register user ``name`` through the shared-secret admin API.

        Raises:
            httpx.HTTPStatusError: Synapse rejected the registration.
        """
        url = self.base_url + "/_synapse/admin/v1/register"
        nonce_response = await http.get(url)
        nonce_response.raise_for_status()
        nonce = nonce_response.json()["nonce"]
        password = secrets.token_hex(12)
        # The MAC of Synapse's shared-secret registration: HMAC-SHA1 over
        # nonce, user, password and "notadmin", separated by NUL bytes.
        mac = hmac.new(self.shared_secret.encode(), digestmod=hashlib.sha1)
        mac.update(f"{nonce}\0{name}\0{password}\0notadmin".encode())
        response = await http.post(
            url,
            json={
                "nonce": nonce,
                "username": name,
                "password": password,
                "admin": False,
                "mac": mac.hexdigest(),
            },
        )
        response.raise_for_status()
        body = response.json()
        return MatrixUser(body["user_id"], body["access_token"])


def _write_config(workdir: Path, python: Path, port: int, shared_secret: str) -> list[Path]:
    """Generate a config with keys, and an override file; return both, in load order."""
    # Synapse's own generator writes the signing key and the secrets.
    workdir.mkdir(parents=True, exist_ok=True)
    generated = workdir / "homeserver.yaml"
    subprocess.run(
        [
            *(str(python), "-m", "synapse.app.homeserver", "--server-name", _SERVER_NAME),
            *("--config-path", str(generated), "--generate-config", "--report-stats=no"),
            *("--data-directory", str(workdir)),
        ],
        check=True,
        capture_output=True,
        timeout=120,
        cwd=workdir,
    )

    log_config = workdir / "log.yaml"
    log_config.write_text(_LOG_CONFIG.format(path=workdir / "homeserver.log"))

    overrides: dict[str, Any] = {
        "listeners": [
            {
                "port": port,
                "bind_addresses": ["127.0.0.1"],
                "type": "http",
                "tls": False,
                "x_forwarded": False,
                "resources": [{"names": ["client"], "compress": False}],
            }
        ],
        "database": {"name": "sqlite3", "args": {"database": str(workdir / "homeserver.db")}},
        "log_config": str(log_config),
        "registration_shared_secret": shared_secret,
        "trusted_key_servers": [],
        "suppress_key_server_warning": True,
        "report_stats": False,
        **_RATE_LIMITS,
    }
    # JSON is a subset of the YAML that Synapse reads. A later config file
    # overrides the top-level keys of an earlier one.
    override = workdir / "overrides.yaml"
    override.write_text(json.dumps(overrides, indent=2))
    return [generated, override]


@contextlib.asynccontextmanager
async def serving_synapse(
    workdir: Path, python: Path, version: str
) -> AsyncIterator[SynapseServer]:
    """Run a fresh Synapse homeserver on SQLite in ``workdir`` until the context exits."""
    port = free_port()
    shared_secret = secrets.token_hex(16)
    configs = _write_config(workdir, python, port, shared_secret)
    command = [str(python), "-m", "synapse.app.homeserver"]
    for config in configs:
        command += ["--config-path", str(config)]
    base_url = f"http://127.0.0.1:{port}"
    async with running_process(
        "synapse",
        command,
        log=workdir / "synapse-output.log",
        health_url=base_url + "/health",
        cwd=workdir,
    ) as process:
        yield SynapseServer(base_url, shared_secret, process, version)


class MatrixClient:
    """The client-server API calls a chat client makes: rooms, send, and /sync long-polls."""

    def __init__(self, http: httpx.AsyncClient, base_url: str, user: MatrixUser) -> None:
        self.http = http
        self.base_url = base_url + "/_matrix/client/v3"
        self.user = user
        self.headers = {"Authorization": f"Bearer {user.access_token}"}
        self._transactions = 0

    async def _call(self, method: str, path: str, body: object | None = None) -> Any:
        response = await self.http.request(
            method, self.base_url + path, json=body, headers=self.headers
        )
        response.raise_for_status()
        return response.json()

    async def create_room(self, invite: Sequence[str] = ()) -> str:
        """Create a private room, inviting ``invite``; return its id."""
        body = {"preset": "private_chat", "invite": list(invite)}
        created = await self._call("POST", "/createRoom", body)
        return str(created["room_id"])

    async def join(self, room_id: str) -> None:
        """Join a room the user was invited to."""
        await self._call("POST", f"/join/{quote(room_id)}", {})

    async def send_text(self, room_id: str, text: str) -> str:
        """Send an ``m.text`` message with ``PUT /rooms/{room}/send``; return the event id."""
        self._transactions += 1
        transaction = f"{secrets.token_hex(4)}-{self._transactions}"
        path = f"/rooms/{quote(room_id)}/send/m.room.message/{transaction}"
        sent = await self._call("PUT", path, {"msgtype": "m.text", "body": text})
        return str(sent["event_id"])

    async def create_timeline_filter(self) -> str:
        """Create the filter a client syncs with: room timelines only, no presence."""
        body = {
            "presence": {"not_types": ["*"]},
            "account_data": {"not_types": ["*"]},
            "room": {"timeline": {"limit": 100}, "ephemeral": {"not_types": ["*"]}},
        }
        created = await self._call("POST", f"/user/{quote(self.user.user_id)}/filter", body)
        return str(created["filter_id"])

    async def sync(self, since: str | None, filter_id: str, timeout_ms: int) -> dict[str, Any]:
        """Run one ``GET /sync`` long-poll; the response is returned whole."""
        params = {"filter": filter_id, "timeout": str(timeout_ms)}
        if since is not None:
            params["since"] = since
        response = await self.http.get(
            self.base_url + "/sync",
            params=params,
            headers=self.headers,
            timeout=timeout_ms / 1000 + 30,
        )
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body


def timeline_texts(sync: dict[str, Any], room_id: str) -> list[str]:
    """Return the ``body`` of each ``m.room.message`` in the room's new timeline events."""
    room = sync.get("rooms", {}).get("join", {}).get(room_id, {})
    return [
        event["content"]["body"]
        for event in room.get("timeline", {}).get("events", [])
        if event.get("type") == "m.room.message" and "body" in event.get("content", {})
    ]
