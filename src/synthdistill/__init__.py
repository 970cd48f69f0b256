"""synthdistill: distil an LLM teacher into a small, fast text classifier."""

# The one place the version is written: pyproject.toml reads it ([tool.setuptools.dynamic]).
__version__ = "0.1.0"
