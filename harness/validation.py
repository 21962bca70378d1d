"""The one wording of a spec validation error: ``<source>: key.path: message``.

Shared by experiment files (:mod:`harness.experiment`) and target profiles (:mod:`harness.targets`).
"""

from __future__ import annotations

from pydantic import ValidationError


def format_validation_error(exc: ValidationError, source: str) -> str:
    """The first error of ``exc`` as one line, with its key path and the offending input."""
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-after"))
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    elif "input" in err and not isinstance(err["input"], dict | list):
        msg = f"{msg} (got {err['input']!r})"
    where = f"{loc}: " if loc else ""
    more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"{source}: {where}{msg}{more}"
