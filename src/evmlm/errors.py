"""The base of evmlm's user-facing errors.

Every error a user can cause (bad bytecode, a missing model path, a source that does not
compile, a bad config key) is an :class:`EvmlmError` subclass whose message is one line that
names the input and says what to do. The CLI prints that line and exits with status 2.
"""


class EvmlmError(Exception):
    """A user-facing error with a one-line message naming the input and the fix."""
