"""Apps that the browser tests serve under uvicorn, each in a child process."""

import logging

import reactpy.logging  # noqa: F401  # configures the "reactpy" logger when first imported

# ReactPy adds a handler of its own that prints to stdout without times. The
# servers' logging configuration (server_logging.json) prints every record
# with its time already, so each ReactPy line would otherwise appear twice.
logging.getLogger("reactpy").handlers.clear()
