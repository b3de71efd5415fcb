"""wsgi.errors: a text stream into the server's error log."""

from __future__ import annotations

import logging


class ErrorStream:
    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger

    def write(self, text: str) -> int:
        text = str(text)
        if text.strip():
            self._logger.error(text.rstrip("\n"))
        return len(text)

    def writelines(self, lines: list[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        pass
