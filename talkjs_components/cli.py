"""Command line: ``talkjs-components demo``."""

from __future__ import annotations

import argparse
import logging
import socket
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="talkjs-components",
        description="Chat components for ReactPy, and the chat backend behind them.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="run the demo chat app on the embedded backend",
        description="Run the demo chat app: sign in as alice, bob or carol and chat.",
    )
    demo.add_argument(
        "--host", default="127.0.0.1", help="interface to listen on (default: %(default)s)"
    )
    demo.add_argument(
        "--port", type=int, default=8000, help="TCP port to listen on (default: %(default)s)"
    )
    demo.add_argument(
        "--data",
        default="talkjs-demo.sqlite3",
        help="path of the SQLite file holding the demo's data (default: %(default)s)",
    )
    demo.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="logging level (default: %(default)s)",
    )
    return parser


def _port_is_free(host: str, port: int) -> bool:
    """Return whether a server could listen on ``host``:``port`` right now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _run_demo(arguments: argparse.Namespace) -> int:
    try:
        import uvicorn

        from .demo.app import create_app
        from .demo.seed import load_dialogue_lines

        load_dialogue_lines("english", "greetings", 1)
    except RuntimeError as exc:
        print(f"talkjs-components demo: {exc}", file=sys.stderr)
        return 2
    if not 0 < arguments.port < 65536:
        print(
            f"talkjs-components demo: invalid --port {arguments.port}: use 1 to 65535",
            file=sys.stderr,
        )
        return 2
    if arguments.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"talkjs-components demo: warning: listening on {arguments.host}; the demo signs in "
            "anyone who types a user name, so every chat is open to whoever can reach it",
            file=sys.stderr,
        )
    if not _port_is_free(arguments.host, arguments.port):
        print(
            f"talkjs-components demo: port {arguments.port} on {arguments.host} is in use: "
            "stop the other server or pass --port with a free port",
            file=sys.stderr,
        )
        return 2
    logging.basicConfig(
        level=arguments.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = create_app(arguments.data)
    print(f"talkjs-components demo: open http://{arguments.host}:{arguments.port}/ ", flush=True)
    uvicorn.run(app, host=arguments.host, port=arguments.port, log_level=arguments.log_level)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    arguments = _parser().parse_args(argv)
    if arguments.command == "demo":
        return _run_demo(arguments)
    raise AssertionError(f"unhandled command {arguments.command!r}")


if __name__ == "__main__":
    sys.exit(main())
