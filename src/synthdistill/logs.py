"""Logging for rule scripts: everything goes to the rule's log file and to the terminal."""

from __future__ import annotations

import logging
import sys

# HTTP clients log every request at INFO: 100,000 annotations would write 100,000 lines of
# "HTTP Request: POST ... 200 OK". Retries and failures are logged by the teachers themselves.
QUIET_LOGGERS = ("httpx", "httpx2", "httpcore", "urllib3")


def setup(log_path: str) -> None:
    """Send log records and uncaught errors of a rule script to ``log_path``."""
    handlers: list[logging.Handler] = [logging.FileHandler(log_path, mode="w"), logging.StreamHandler(sys.stderr)]
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", handlers=handlers, force=True
    )
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)

    def excepthook(kind, value, traceback):
        logging.getLogger("synthdistill").error("%s: %s", kind.__name__, value, exc_info=(kind, value, traceback))

    sys.excepthook = excepthook
