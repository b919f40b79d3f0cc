"""The error a run folder's own files raise: a damaged file, a planted link, a run of another
configuration or on other data. Its message names the file and says what to do; the entry points
print it as one line (exit status 2), like a bad option."""


class RunDirError(ValueError):
    """A run folder's files stand in the way of the command; the message names the file."""
