"""What the command lines share: a parser whose errors are one line (exit status 2, never argparse's usage
block), options that may be given once (argparse would silently keep the last of `--profile a --profile b`),
SIGTERM handled as Ctrl-C, and output into a closed pipe (`--dry-run | head`) ending quietly."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Callable


class UsageError(Exception):
    """A bad command line; the message is one line."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse prints the usage and exits; we want one line and exit status 2
        raise UsageError(message)


class Once(argparse.Action):
    """An option that may be given once."""

    def __call__(self, parser, namespace, values, option_string=None):
        given = namespace.__dict__.setdefault("_given", set())
        if self.dest in given:
            parser.error(f"{'/'.join(self.option_strings)} given more than once")
        given.add(self.dest)
        setattr(namespace, self.dest, True if self.nargs == 0 else values)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def stop_on_sigterm() -> None:
    """SIGTERM (`kill`, a session or cluster ending a job) stops the command as Ctrl-C does: its runs in flight
    are noted as interrupted, their temporary folders removed and their checkpoints kept."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)


def run_command(main: Callable[[], int]) -> int:
    """`main()`'s exit status; output into a pipe its reader closed (`--dry-run | head`) ends the command
    quietly (status 141, as a shell reports SIGPIPE) instead of with a traceback."""
    try:
        code = main()
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python exits
        return 141
