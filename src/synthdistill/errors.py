"""The one exception type users see for bad input: its message names the file, key or row."""


class SynthDistillError(Exception):
    """Bad input or configuration, with a message that says where to look."""
