"""What the command lines share: a parser whose errors are one line (exit status 2, never argparse's usage
block) and options that may be given once (argparse would silently keep the last of `--profile a --profile b`)."""

from __future__ import annotations

import argparse


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
