"""The one exception type for mistakes a user can fix (a bad path, value or file).

Command-line tools catch it and print its one-sentence message without a traceback (see ``segkit.cli``);
``quiet_native_stderr`` keeps C libraries from printing their own lines beside it; ``abbreviate`` fits a list
of names into one; ``check_choice`` is the one did-you-mean.
"""
import contextlib
import difflib
import os
import sys


class UserError(Exception):
    """A problem the user caused and can fix; the message says what and how.

    The library names values by their parameter (``device='cuda:3' ...``); ``parameter`` says which one, so that a
    command-line tool can show the flag that sets it instead (``segkit.cli.user_message``)."""

    def __init__(self, message: str, parameter: str | None = None):
        super().__init__(message)
        self.parameter = parameter


def check_choice(key: str, value, choices, parameter: str | None = None) -> None:
    """One sentence when ``value`` is not one of ``choices``: the closest choice, else all of them."""
    if value not in choices:
        close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"choose one of {', '.join(map(str, choices))}."
        raise UserError(f"{key}={value!r} is unknown; {hint}", parameter)


def abbreviate(names, limit: int = 6) -> str:
    """The first ``limit`` of ``names`` and, when there are more, how many in all: a list that fits a sentence."""
    names = list(names)
    return ", ".join(names[:limit]) + (f", … ({len(names)} in all)" if len(names) > limit else "")


@contextlib.contextmanager
def quiet_native_stderr():
    """Silence C libraries that write to the process's stderr (libpng's "Read Error" for a truncated PNG, FFmpeg's
    "moov atom not found", OpenCV's warnings) while they try a file, so that a failure gets exactly our one line."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
