"""Server configuration, REST authentication and the rate limiter, without sockets."""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path

import jwt
import pytest

from talkjs_components.auth import App, create_app_token
from talkjs_components.protocol import ServerLimits
from talkjs_components.server.authentication import (
    MAX_APP_TOKEN_LIFETIME,
    AuthFailureLog,
    authenticate_request,
)
from talkjs_components.server.config import (
    DEFAULT_BROKER,
    DEFAULT_BROKER_PREFIX,
    DEFAULT_MAX_BODY_BYTES,
    ConfigError,
    add_app,
    apps_from_environment,
    describe_database,
    load_database_setting,
    load_server_config,
    parse_broker_url,
    parse_database,
    redact_url,
)
from talkjs_components.server.errors import ApiError
from talkjs_components.server.openapi import build_openapi
from talkjs_components.server.rate_limit import RateLimit, RateLimiter
from talkjs_components.server.realtime_settings import RealtimeSettings
from talkjs_components.server.routes import OPERATIONS

KEY = "sk_config_" + "0123456789abcdef" * 3
OTHER_KEY = "sk_config_" + "fedcba9876543210" * 3


# Database and broker options


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("chat.sqlite3", Path("chat.sqlite3")),
        ("/srv/chat.sqlite3", Path("/srv/chat.sqlite3")),
        ("sqlite:///chat.sqlite3", Path("chat.sqlite3")),
        ("sqlite:////srv/chat.sqlite3", Path("/srv/chat.sqlite3")),
        ("postgresql://chat@db:5432/chat", "postgresql://chat@db:5432/chat"),
        ("postgres://chat@db/chat?search_path=one", "postgres://chat@db/chat?search_path=one"),
    ],
)
def test_database_forms(value: str, expected: Path | str) -> None:
    assert parse_database(value) == expected


@pytest.mark.parametrize("value", ["", "sqlite:///", "redis://x", "mysql://root:hunter2@db/chat"])
def test_database_rejects(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_database(value)
    assert "sqlite:///PATH" in caught.value.message
    assert "postgresql://" in caught.value.message
    assert "hunter2" not in caught.value.message


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://chat:hunter2@db:5432/chat", "postgresql://chat:***@db:5432/chat"),
        ("postgresql://chat@db/chat?password=hunter2", "postgresql://chat@db/chat?password=***"),
        (
            "postgresql://db/chat?user=chat&PASSWORD=hunter2&search_path=one",
            "postgresql://db/chat?user=chat&PASSWORD=***&search_path=one",
        ),
        ("redis://:hunter2@cache:6379/0", "redis://:***@cache:6379/0"),
        ("redis://[::1]:6379", "redis://[::1]:6379"),
        ("rediss://user:hunter2@[::1]:6380", "rediss://user:***@[::1]:6380"),
        ("postgresql://chat:hunter2@db:notaport/chat", "postgresql://***"),
        ("memory://", "memory://"),
        ("chat.sqlite3", "chat.sqlite3"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_describe_database_masks_url_only() -> None:
    assert describe_database(Path("p:w@chat.sqlite3")) == "p:w@chat.sqlite3"
    assert describe_database("postgresql://u:pw@db/chat") == "postgresql://u:***@db/chat"


@pytest.mark.parametrize("value", ["memory://", "redis://cache:6379/0", "REDISS://cache"])
def test_broker_forms(value: str) -> None:
    assert parse_broker_url(value) == value


@pytest.mark.parametrize("value", ["", "cache:6379", "amqp://guest:hunter2@mq/"])
def test_broker_rejects(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_broker_url(value)
    assert "redis://HOST:6379" in caught.value.message
    assert "hunter2" not in caught.value.message


@pytest.mark.parametrize(
    ("option", "variable", "in_file", "expected"),
    [
        (None, None, None, DEFAULT_BROKER),
        (None, None, "redis://file", "redis://file"),
        (None, "redis://variable", "redis://file", "redis://variable"),
        ("redis://option", "redis://variable", "redis://file", "redis://option"),
    ],
)
def test_broker_precedence(
    tmp_path: Path, option: str | None, variable: str | None, in_file: str | None, expected: str
) -> None:
    config = tmp_path / "server.toml"
    text = f'broker = "{in_file}"\n' if in_file is not None else ""
    config.write_text(text + f'[[apps]]\nid = "one"\nsecret_key = "{KEY}"\n')
    config.chmod(0o600)
    environ = {} if variable is None else {"TALKJS_BROKER_URL": variable}
    loaded = load_server_config(config, broker=option, environ=environ)
    assert loaded.broker == expected
    assert loaded.broker_prefix == DEFAULT_BROKER_PREFIX


def test_broker_prefix_from_file(tmp_path: Path) -> None:
    config = tmp_path / "server.toml"
    config.write_text(f'broker_prefix = "staging"\n[[apps]]\nid = "one"\nsecret_key = "{KEY}"\n')
    config.chmod(0o600)
    assert load_server_config(config, environ={}).broker_prefix == "staging"


def test_database_setting_needs_no_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_database_setting(None) == Path("talkjs-server.sqlite3")
    config = tmp_path / "talkjs-server.toml"
    config.write_text('database = "postgresql://chat@db/chat"\n')
    config.chmod(0o600)
    assert load_database_setting(None) == "postgresql://chat@db/chat"
    assert load_database_setting(config, database="other.sqlite3") == Path("other.sqlite3")
    with pytest.raises(ConfigError) as caught:
        load_database_setting(tmp_path / "missing.toml")
    assert "cannot read config file" in caught.value.message


# Environment


def test_apps_from_both_variables() -> None:
    environ = {
        "TALKJS_APPS": json.dumps({"one": KEY}),
        "TALKJS_APP_ID": "two",
        "TALKJS_SECRET_KEY": OTHER_KEY,
    }
    apps = apps_from_environment(environ)
    assert [(app.app_id, app.secret_key) for app in apps] == [("one", KEY), ("two", OTHER_KEY)]


@pytest.mark.parametrize(
    ("environ", "fragment"),
    [
        ({"TALKJS_APPS": "{not json"}, "not valid JSON"),
        ({"TALKJS_APPS": '["one"]'}, "JSON object"),
        ({"TALKJS_APPS": '{"one": 5}'}, "JSON object"),
        ({"TALKJS_APP_ID": "one"}, "TALKJS_SECRET_KEY is not set"),
        ({"TALKJS_SECRET_KEY": KEY}, "TALKJS_APP_ID is not set"),
        ({"TALKJS_APPS": json.dumps({"one": "short"})}, "minimum is 32"),
        ({"TALKJS_APPS": json.dumps({"a/b": KEY})}, "app id 'a/b' is invalid"),
    ],
)
def test_environment_errors(environ: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        apps_from_environment(environ)
    assert fragment in caught.value.message
    assert KEY not in caught.value.message


# Config file


def test_config_file_with_limits(tmp_path: Path) -> None:
    config = tmp_path / "server.toml"
    config.write_text(
        'database = "sqlite:///data.sqlite3"\n'
        "[limits]\nmax_body_bytes = 4096\nrequests_per_second = 2.5\nburst = 7\n"
        f'[[apps]]\nid = "one"\nsecret_key = "{KEY}"\n'
    )
    config.chmod(0o600)
    loaded = load_server_config(config, environ={})
    assert [app.app_id for app in loaded.apps] == ["one"]
    assert loaded.database == Path("data.sqlite3")
    assert loaded.settings.max_body_bytes == 4096
    assert loaded.settings.rate_limit == RateLimit(requests_per_second=2.5, burst=7)


def test_config_file_realtime_section(tmp_path: Path) -> None:
    config = tmp_path / "server.toml"
    config.write_text(
        "[realtime]\nper_message_deflate = true\nmax_queued_bytes = 65536\n"
        "heartbeat_interval = 5\nidle_timeout = 12.5\nmax_in_flight_requests = 8\n"
        f'[[apps]]\nid = "one"\nsecret_key = "{KEY}"\n'
    )
    config.chmod(0o600)

    realtime = load_server_config(config, environ={}).realtime

    assert realtime.per_message_deflate is True
    assert realtime.max_queued_bytes == 65536
    assert realtime.limits.heartbeat_interval == 5.0
    assert realtime.limits.idle_timeout == 12.5
    assert realtime.limits.max_in_flight_requests == 8
    assert realtime.limits.max_frame_bytes == ServerLimits().max_frame_bytes
    assert realtime.drain_timeout == RealtimeSettings().drain_timeout


def test_realtime_defaults_without_section(tmp_path: Path) -> None:
    config = tmp_path / "server.toml"
    config.write_text(f'[[apps]]\nid = "one"\nsecret_key = "{KEY}"\n')
    config.chmod(0o600)

    realtime = load_server_config(config, environ={}).realtime

    assert realtime == RealtimeSettings()
    assert realtime.per_message_deflate is False


def test_environment_overrides_file_key(tmp_path: Path) -> None:
    config = tmp_path / "server.toml"
    config.write_text(f'[[apps]]\nid = "one"\nsecret_key = "{KEY}"\n')
    loaded = load_server_config(
        config, database="other.sqlite3", environ={"TALKJS_APPS": json.dumps({"one": OTHER_KEY})}
    )
    assert [app.secret_key for app in loaded.apps] == [OTHER_KEY]
    assert loaded.database == Path("other.sqlite3")
    assert loaded.settings.max_body_bytes == DEFAULT_MAX_BODY_BYTES


def test_default_config_file_optional(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    loaded = load_server_config(None, environ={"TALKJS_APP_ID": "one", "TALKJS_SECRET_KEY": KEY})
    assert [app.app_id for app in loaded.apps] == ["one"]
    assert loaded.database == Path("talkjs-server.sqlite3")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[[apps]\n", "not valid TOML"),
        ("port = 80\n", "'port' is invalid"),
        ("[limits]\nburst = 0\n", "'limits.burst' is invalid"),
        ("[limits]\nrequests_per_second = -1.0\n", "'limits.requests_per_second'"),
        ('[[apps]]\nid = "x"\n', "'apps.0.secret_key' is invalid"),
        ('broker_prefix = "has space"\n', "'broker_prefix' is invalid"),
        ('broker = "amqp://mq"\n', "broker 'amqp://mq' is not supported"),
        ('[realtime]\nper_message_deflate = "no"\n', "'realtime.per_message_deflate'"),
        ("[realtime]\nmax_queued_bytes = 1.5\n", "'realtime.max_queued_bytes' is invalid"),
        ("[realtime]\nheartbeat = 3\n", "'realtime.heartbeat' is invalid"),
        (
            "[realtime]\nmax_held_events = 0\n",
            "[realtime] is invalid: max_held_events must be a positive integer, got 0",
        ),
        (
            "[realtime]\nheartbeat_interval = 90\n",
            "[realtime] is invalid: idle_timeout (60 s) must be longer than heartbeat_interval",
        ),
        ("[realtime]\nclose_timeout = nan\n", "close_timeout must be a positive number"),
        # An infinite close or drain timeout would make shutdown wait forever.
        ("[realtime]\nclose_timeout = inf\n", "close_timeout must be a positive number"),
        ("[realtime]\ndrain_timeout = inf\n", "drain_timeout must be a positive number"),
    ],
)
def test_config_file_errors(tmp_path: Path, text: str, fragment: str) -> None:
    config = tmp_path / "server.toml"
    config.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_server_config(config, environ={"TALKJS_APP_ID": "one", "TALKJS_SECRET_KEY": KEY})
    assert fragment in caught.value.message


def test_readable_config_logs_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = tmp_path / "server.toml"
    config.write_text(f'[[apps]]\nid = "one"\nsecret_key = "{KEY}"\n')
    config.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="talkjs_components.server"):
        load_server_config(config, environ={})
    assert "chmod 600" in caplog.text
    assert KEY not in caplog.text


def test_add_app_creates_private_file(tmp_path: Path) -> None:
    config = tmp_path / "new.toml"
    old_umask = os.umask(0o022)
    try:
        app_id, secret_key = add_app(config, "fresh")
    finally:
        os.umask(old_umask)
    assert app_id == "fresh"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert secret_key in config.read_text()
    assert list(tmp_path.iterdir()) == [config]


def test_add_app_quotes_unusual_id(tmp_path: Path) -> None:
    config = tmp_path / "new.toml"
    app_id, _ = add_app(config, 'quote"and\u00e9')
    loaded = load_server_config(config, environ={})
    assert [app.app_id for app in loaded.apps] == [app_id]


# REST authentication


def test_secret_key_accepted() -> None:
    authenticate_request(App("one", secret_key=KEY), f"Bearer {KEY}")


def test_app_token_accepted() -> None:
    app = App("one", secret_key=KEY)
    authenticate_request(app, f"Bearer {create_app_token(app)}")
    authenticate_request(app, f"bearer  {create_app_token(app)}")


@pytest.mark.parametrize(
    ("header", "error_code"),
    [
        (None, "credentials_missing"),
        ("", "credentials_missing"),
        (f"Basic {KEY}", "credentials_malformed"),
        ("Bearer", "credentials_malformed"),
        (f"Bearer {OTHER_KEY}", "credentials_invalid"),
        (f"Bearer {KEY}x", "credentials_invalid"),
        ("Bearer a.b.c", "token_malformed"),
    ],
)
def test_bad_headers_401(header: str | None, error_code: str) -> None:
    with pytest.raises(ApiError) as caught:
        authenticate_request(App("one", secret_key=KEY), header)
    assert caught.value.status == 401
    assert caught.value.error_code == error_code
    assert KEY not in caught.value.reason
    assert OTHER_KEY not in caught.value.reason


def test_app_token_lifetime_limit() -> None:
    app = App("one", secret_key=KEY)
    now = 1_800_000_000.0
    at_limit = create_app_token(app, expires_in=MAX_APP_TOKEN_LIFETIME, now=now)
    authenticate_request(app, f"Bearer {at_limit}", now=now)
    over = create_app_token(app, expires_in=MAX_APP_TOKEN_LIFETIME + 1, now=now)
    with pytest.raises(ApiError) as caught:
        authenticate_request(app, f"Bearer {over}", now=now)
    assert caught.value.error_code == "token_lifetime_too_long"


def test_app_token_without_expiry_rejected() -> None:
    token = jwt.encode({"tokenType": "app", "iss": "one"}, KEY, algorithm="HS256")
    with pytest.raises(ApiError) as caught:
        authenticate_request(App("one", secret_key=KEY), f"Bearer {token}")
    assert caught.value.error_code == "token_expiry_missing"


def test_auth_failures_logged_once_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    failures = AuthFailureLog(interval=3600)
    error = ApiError(401, "credentials_invalid", "wrong key")
    with caplog.at_level(logging.WARNING, logger="talkjs_components.server"):
        for _ in range(5):
            failures.record("one", "127.0.0.1", error)
        failures.record("two", "127.0.0.1", error)
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 2
    assert "app 'one'" in lines[0]
    assert "credentials_invalid" in lines[0]
    assert "app 'two'" in lines[1]


# Rate limiter


class Clock:
    """A clock the test moves by hand, in seconds."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_rate_limiter_burst_then_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(RateLimit(requests_per_second=2, burst=3), clock)
    assert [limiter.acquire("app") for _ in range(3)] == [None, None, None]
    assert limiter.acquire("app") == 1
    clock.now += 0.5
    assert limiter.acquire("app") is None
    assert limiter.acquire("app") == 1


def test_rate_limiter_retry_after_rounds_up() -> None:
    clock = Clock()
    limiter = RateLimiter(RateLimit(requests_per_second=0.1, burst=1), clock)
    assert limiter.acquire("app") is None
    assert limiter.acquire("app") == 10
    clock.now += 2.5
    assert limiter.acquire("app") == 8


def test_rate_limiter_per_key_and_capped() -> None:
    clock = Clock()
    limiter = RateLimiter(RateLimit(requests_per_second=1, burst=2), clock)
    assert limiter.acquire("one") is None
    assert limiter.acquire("one") is None
    assert limiter.acquire("one") == 1
    assert limiter.acquire("two") is None
    clock.now += 1000
    # Idle time refills up to the burst only.
    assert [limiter.acquire("one") for _ in range(3)] == [None, None, 1]


# OpenAPI document


def test_openapi_documents_errors_per_operation() -> None:
    document = build_openapi(OPERATIONS, version="test")
    send = document["paths"]["/v1/{appId}/conversations/{conversationId}/messages"]["post"]
    assert set(send["responses"]) == {"200", "400", "401", "403", "404", "413", "429", "503"}
    assert "Retry-After" in send["responses"]["429"]["headers"]
    get_user = document["paths"]["/v1/{appId}/users/{userId}"]["get"]
    assert set(get_user["responses"]) == {"200", "400", "401", "404", "429", "503"}
    assert "requestBody" not in get_user
    assert document["security"] == [{"bearerAuth": []}]
    assert document["paths"]["/health"]["get"]["security"] == []


def test_openapi_message_type_required() -> None:
    schemas = build_openapi(OPERATIONS, version="test")["components"]["schemas"]
    assert schemas["NewUserMessage"]["required"] == ["type", "text", "sender"]
    assert schemas["NewSystemMessage"]["required"] == ["type", "text"]
    assert schemas["UserUpdate"]["additionalProperties"] is False
