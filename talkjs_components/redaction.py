"""Masking of credentials in database and broker URLs, for logs and error messages."""

from __future__ import annotations

from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

__all__ = ["redact_url"]

_SECRET_PARAMETERS = frozenset({"password", "passwd", "sslpassword"})
"""Names of query parameters whose values are credentials, compared in lower case."""


def redact_url(url: str) -> str:
    """Return ``url`` with its password, and any ``password`` query parameter, replaced by ``***``.

    Database and broker URLs can carry credentials in both places; what this
    returns is safe for logs and error messages. A value that is not a URL is
    returned unchanged.
    """
    try:
        parts = urlsplit(url)
        password = parts.password
        hostname = parts.hostname
        port = parts.port
    except ValueError:
        # An invalid port or bracketed host: show no part of the text after the scheme.
        scheme, separator, _ = url.partition("://")
        return f"{scheme}://***" if separator else url
    if password is None and not _has_secret_parameter(parts.query):
        return url
    netloc = parts.netloc
    if password is not None:
        host = hostname or ""
        if ":" in host:
            host = f"[{host}]"
        if port is not None:
            host += f":{port}"
        user = quote(parts.username or "", safe="")
        netloc = f"{user}:***@{host}"
    query = parts.query
    if _has_secret_parameter(query):
        masked = [
            (name, "***" if name.lower() in _SECRET_PARAMETERS else value)
            for name, value in parse_qsl(query, keep_blank_values=True)
        ]
        query = urlencode(masked, safe="*")
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def _has_secret_parameter(query: str) -> bool:
    pairs = parse_qsl(query, keep_blank_values=True)
    return any(name.lower() in _SECRET_PARAMETERS for name, _ in pairs)
