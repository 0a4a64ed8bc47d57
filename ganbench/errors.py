"""Errors the user can fix. The CLI prints them as one line and exits with status 2."""


def describe(exc: BaseException) -> str:
    """``Type: first line of the message``: an exception as a one-line reason."""
    lines = str(exc).splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


class UsageError(Exception):
    """Bad input: the message names what is wrong and what is accepted."""

    exit_code = 2


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run, after every row so far was written; names the run to resume."""

    def __init__(self, run_dir: object, command: str = "run") -> None:
        super().__init__(f"interrupted; resume with: ganbench {command} --resume {run_dir}")
        self.run_dir = run_dir
        self.command = command  # what continues it: ``ganbench run`` or ``ganbench tune``
