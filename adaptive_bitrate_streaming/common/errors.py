"""User-facing errors: one clear line, exit code 2, no traceback."""
import functools
import sys


class InputError(Exception):
    """Bad input from the user (a flag, a file, a folder); the message says what is wrong and how to fix it."""


def exit_on_input_error(main):
    """Decorate a script's main(): an InputError prints `error: <message>` and exits with code 2."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except InputError as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(2)

    return wrapper
