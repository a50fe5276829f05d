"""User-facing errors: one clear line, exit code 2, no traceback.

Library code raises an InputError in its own terms, naming the setting at fault (`setting="which_layer"`) and
any that would fix it (`fixes=("overwrite",)`); the scripts, whose flags are their settings' names
(common/settings.py), print those as flags."""
import functools
import sys


class InputError(Exception):
    """Bad input from the user (a setting, a file, a folder); the message says what is wrong and how to fix it."""

    def __init__(self, message: str, setting: str | None = None, fixes: tuple[str, ...] = ()):
        super().__init__(message)
        self.setting, self.fixes = setting, fixes


def flag_name(setting: str) -> str:
    return "--" + setting.replace("_", "-")


def exit_on_input_error(main):
    """Decorate a script's main(): an InputError prints `error: [--flag: ]<message>` and exits with code 2."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except InputError as error:
            flag = f"{flag_name(error.setting)}: " if error.setting else ""
            fixes = f" ({', '.join(map(flag_name, error.fixes))})" if error.fixes else ""
            print(f"error: {flag}{error}{fixes}", file=sys.stderr)
            sys.exit(2)

    return wrapper
