"""Errors users see, and the exit statuses of the ``rvh`` command.

Guest exit codes (syscon, HTIF, SBI SRST) are passed through as the process status (modulo
256, as for any process).  rvh's own outcomes use statuses at the top of the range, which our
guests never use for test numbers; they are documented in the README.
"""

from __future__ import annotations

EXIT_USAGE = 2  # bad command line (argparse's own status)
EXIT_DEADLOCK = 123  # no hart can progress: wfi with nothing to wake it, or a trap loop
EXIT_INSN_LIMIT = 124  # --max-insns reached before the guest exited (like timeout(1))
EXIT_LOAD_ERROR = 125  # the program, an image or guest RAM could not be loaded or allocated
EXIT_EMULATOR_ERROR = 126  # the guest did something the machine cannot continue from
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, as a shell reports it)
EXIT_BROKEN_PIPE = 141  # stdout's reader went away (128 + SIGPIPE): rvh run ... | head
EXIT_TERMINATED = 143  # SIGTERM (128 + SIGTERM)


class RvhError(Exception):
    """An error with a one-line message for the user and an exit status."""

    status = EXIT_EMULATOR_ERROR

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class LoadError(RvhError):
    status = EXIT_LOAD_ERROR


class ConfigError(RvhError):
    status = EXIT_USAGE


class GuestError(RvhError):
    """The guest left the machine in a state it cannot continue from."""

    status = EXIT_EMULATOR_ERROR
