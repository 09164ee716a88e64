"""One exception type for every user-facing error: the message is a single line naming the problem."""


class HepFastSimError(Exception):
    """A problem with the user's input (file, shape, value); the CLI prints only its message."""
