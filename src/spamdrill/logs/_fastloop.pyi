"""The compiled classic-syslog loop (``_fastloop.pyx``); ``reader.Feed.fast`` is its
reference."""

from typing import Any

def fast(feed: Any, lines: list[str], parser: Any) -> None: ...
def scan_fields(kind: str, msg: str) -> tuple[str, ...] | None: ...
