"""Errors a user can fix, reported by the command line as one line without a traceback.

Raise `UsageError` for a bad flag or argument (exit code 2) and `UserError` for bad input
the user named: a missing dataset, a corrupt checkpoint, a config key that does not exist
(exit code 1). Anything else that escapes is a bug and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input; the message names it in one line."""

    exit_code = 1


class UsageError(UserError):
    """A bad command-line flag or value."""

    exit_code = 2
