"""Signals for the processes tests start and interrupt."""

import signal


def default_sigint() -> None:
    """A Popen `preexec_fn`: the child starts with SIGINT at its default. A test run started in the background of
    a non-interactive shell has SIGINT ignored, and an ignored signal stays ignored across exec, so Ctrl-C would
    never reach the command under test."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
