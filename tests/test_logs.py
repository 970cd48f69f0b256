import logging
import sys

from synthdistill import logs


def test_rule_log_keeps_progress_and_http_errors_but_not_every_request(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # setup() replaces it
    root = logging.getLogger()
    previous = root.handlers[:]
    path = tmp_path / "annotate.log"
    logs.setup(str(path))
    try:
        logging.getLogger("synthdistill.annotation.runner").info("annotated 10/10")
        logging.getLogger("httpx2").info('HTTP Request: POST http://127.0.0.1/v1/chat/completions "HTTP/1.1 200 OK"')
        logging.getLogger("httpx").warning("connection pool is full")
    finally:
        for handler in root.handlers[:]:
            handler.close()
            root.removeHandler(handler)
        root.handlers[:] = previous
    text = path.read_text()
    assert "annotated 10/10" in text
    assert "HTTP Request" not in text
    assert "connection pool is full" in text
