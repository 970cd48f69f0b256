"""Annotation: prompts, the engine, parsing, the response cache, shards and teachers."""
