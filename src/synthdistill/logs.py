"""Logging for rule scripts: everything goes to the rule's log file and to the terminal."""

from __future__ import annotations

import logging
import sys


def setup(log_path: str) -> None:
    """Send log records and uncaught errors of a rule script to ``log_path``."""
    handlers = [logging.FileHandler(log_path, mode="w"), logging.StreamHandler(sys.stderr)]
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", handlers=handlers, force=True
    )

    def excepthook(kind, value, traceback):
        logging.getLogger("synthdistill").error("%s: %s", kind.__name__, value, exc_info=(kind, value, traceback))

    sys.excepthook = excepthook
