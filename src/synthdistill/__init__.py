"""synthdistill: distil an LLM teacher into a small, fast text classifier."""

__version__ = "0.1.0"
