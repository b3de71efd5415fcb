"""Limits the HTTP core enforces, and the few Gunicorn leniencies it offers. A plain object, so http/
never imports the configuration."""

from __future__ import annotations

from dataclasses import dataclass

# Gunicorn's ceilings: a limit set to 0 means "as large as we ever allow", not "unbounded", so a typo in
# a config file cannot turn off the protection the limit exists for.
MAX_REQUEST_LINE = 8190
MAX_FIELD_SIZE = 8190
MAX_FIELDS = 32768


@dataclass(frozen=True)
class Limits:
    request_line: int = 4094          # bytes in the request line, CRLF excluded (→ 414)
    request_fields: int = 100         # header fields in one request (→ 431)
    request_field_size: int = 8190    # bytes in one field line, "name: value" (→ 431)
    request_body: int = 0             # bytes of body; 0 means no limit (→ 413)
    chunk_line: int = 4096            # bytes in a chunk-size line with its extensions (→ 400)
    # Gunicorn's opt-in leniencies (off: 400, or 505 for the version), each as Gunicorn applies it:
    permit_obsolete_folding: bool = False  # a value continued on the next line: joined with " "
    permit_unconventional_method: bool = False  # any token: lowercase, "#", < 3 or > 20 characters
    permit_unconventional_version: bool = False  # HTTP/0.x served as 1.0, HTTP/2.x+ as 1.1
    casefold_method: bool = False     # the method upper-cased (after the checks above)

    def normalized(self) -> "Limits":
        """Replace the 0 ("largest allowed") spellings by the ceilings they stand for."""
        return Limits(
            request_line=self.request_line if 0 < self.request_line <= MAX_REQUEST_LINE
            else MAX_REQUEST_LINE,
            request_fields=self.request_fields if 0 < self.request_fields <= MAX_FIELDS else MAX_FIELDS,
            request_field_size=self.request_field_size if self.request_field_size > 0 else MAX_FIELD_SIZE,
            request_body=max(self.request_body, 0),
            chunk_line=self.chunk_line,
            permit_obsolete_folding=self.permit_obsolete_folding,
            permit_unconventional_method=self.permit_unconventional_method,
            permit_unconventional_version=self.permit_unconventional_version,
            casefold_method=self.casefold_method,
        )

    @property
    def head_size(self) -> int:
        """The most bytes a whole request head may take, request line and blank line included."""
        return self.request_line + 2 + self.request_fields * (self.request_field_size + 2) + 2
