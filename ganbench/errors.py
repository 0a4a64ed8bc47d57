"""Errors the user can fix. The CLI prints them as one line and exits with status 2."""


class UsageError(Exception):
    """Bad input: the message names what is wrong and what is accepted."""

    exit_code = 2
