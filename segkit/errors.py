"""The one exception type for mistakes a user can fix (a bad path, value or file).

Command-line tools catch it and print its one-sentence message without a traceback (see ``segkit.cli``).
"""


class UserError(Exception):
    """A problem the user caused and can fix; the message says what and how."""
