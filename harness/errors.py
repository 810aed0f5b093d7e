"""Errors a user can fix. Anything raised as ``UserError`` is printed as one line, exit code 2."""


class UserError(Exception):
    """A mistake in the user's input (task file, data, options), with how to fix it.

    The message is one line: ``<file or option>: <key>: <what is wrong>; <how to fix it>``.
    """

    def __init__(self, message: str):
        super().__init__(" ".join(message.split()))  # always one line
