"""Shared plumbing for the thin CLIs in tools/: user errors become one line on stderr and exit status 2."""
from __future__ import annotations

import functools
import sys

from segkit.errors import UserError


def user_message(exc: BaseException) -> str:
    """The one-line message of a UserError, also when a DataLoader worker re-raised it with its traceback."""
    text = str(exc)
    if "Original Traceback" in text:  # torch's ExceptionWrapper: the message is the last traceback line
        last = [line for line in text.splitlines() if line.strip()][-1]
        text = last.split(": ", 1)[1] if last.startswith(("segkit.", "UserError")) else last
    return text


def main_guard(main):
    """Decorate a tool's ``main``: a ``UserError`` prints ``error: <message>`` and exits 2, Ctrl-C exits 130."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except UserError as exc:
            print(f"error: {user_message(exc)}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            sys.exit(130)

    return wrapper
