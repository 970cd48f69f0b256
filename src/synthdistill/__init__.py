"""synthdistill: distil an LLM teacher into a small, fast text classifier."""

# The one place the version is written: pyproject.toml reads it ([tool.setuptools.dynamic]).
__version__ = "0.1.0"


class SynthDistillError(Exception):
    """Bad input or configuration, with a message that says where to look: the one exception type
    users see for bad input (its message names the file, key or row)."""
