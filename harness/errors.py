"""Errors a user can fix. Anything raised as ``UserError`` is printed as one line, exit code 2."""


class UserError(Exception):
    """A mistake in the user's input (task file, data, options), with how to fix it.

    The message is one line: ``<file or option>: <key>: <what is wrong>; <how to fix it>``.
    """

    def __init__(self, message: str):
        super().__init__(" ".join(message.split()))  # always one line


def where(file: object, key: str | None = None, line: int | None = None) -> str:
    """Format the ``file[:line]: key`` prefix of an error message."""
    text = str(file)
    if line is not None:
        text += f":{line}"
    if key:
        text += f": {key}"
    return text
