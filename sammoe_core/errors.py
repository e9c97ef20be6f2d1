"""The exception every expected failure derives from; the CLI prints it as one line, exit 2."""


class SammoeError(ValueError):
    """Bad input or state the user can fix: the message names the thing and the problem."""
