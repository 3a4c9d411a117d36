"""Logging: one JSON object per line (or plain text), never a secret.

LOG_LEVEL=DEBUG turns on the publisher's own DEBUG lines (one per HTTP request, outcome and
database statement, claims per platform; see http_transport, batching, store) and nothing
else: other libraries stay at INFO, and the HTTP ones at WARNING, because their DEBUG and
INFO lines can show request URLs and headers, and with them tokens.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

NOISY = ("httpx", "httpcore", "hpack", "h2", "uvicorn.access", "pgserver", "aiohttp",
         "asyncio", "postgrest", "supabase", "realtime", "websockets")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def setup_logging(level: str = "INFO", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    wanted = logging.getLevelName(level.upper())
    wanted = wanted if isinstance(wanted, int) else logging.INFO
    root.setLevel(max(wanted, logging.INFO))      # libraries: never their DEBUG
    logging.getLogger("publisher").setLevel(wanted)
    # httpx logs every request URL at INFO; URLs can carry tokens on some APIs. The others
    # log request lines or headers (hpack, h2) or just chatter (asyncio, aiohttp, pgserver).
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(logging.WARNING)
