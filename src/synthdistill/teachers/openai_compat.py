"""Any OpenAI-compatible chat-completions server: OpenAI, vLLM, TGI, Ollama, llama.cpp server, HF router."""

from __future__ import annotations

import json
import os
from typing import Any

from synthdistill.errors import SynthDistillError
from synthdistill.teachers.base import Completion, Request


class OpenAICompatTeacher:
    """Chat completions over HTTP. The API key is read from the environment variable named in
    config (``api_key_env``), never from config itself, so it cannot leak into params or logs."""

    def __init__(self, settings: dict[str, Any]) -> None:
        import openai

        key_env = settings.get("api_key_env")
        api_key = os.environ.get(key_env) if key_env else "not-needed"
        if not api_key:
            raise SynthDistillError(
                f"teacher backend openai: environment variable {key_env} (config key api_key_env) is not set"
            )
        self.client = openai.OpenAI(
            base_url=settings.get("base_url"),
            api_key=api_key,
            timeout=settings.get("timeout_s", 60.0),
            max_retries=settings.get("max_retries", 5),
        )
        self.model = settings["model"]
        self.max_concurrency = int(settings.get("concurrency", 8))
        self.identity = {"backend": "openai", "base_url": settings.get("base_url"), "model": self.model}
        self.send_seed = settings.get("send_seed", True)

    def render(self, messages: list[dict[str, str]]) -> str:
        # The server applies the chat template; what we send is the message list itself.
        return json.dumps(messages, ensure_ascii=False)

    def complete(self, request: Request) -> Completion:
        kwargs: dict[str, Any] = {}
        if request.json_schema:
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": request.json_schema, "strict": True},
            }
        elif request.choices:
            # An enum inside a JSON schema is the portable way to force one of a closed set.
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": "answer",
                    "schema": {"type": "string", "enum": request.choices},
                    "strict": True,
                },
            }
        if self.send_seed and request.seed is not None:
            kwargs["seed"] = request.seed
        response = self.client.chat.completions.create(
            model=self.model,
            messages=request.messages,
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            top_p=request.top_p,
            **kwargs,
        )
        text = response.choices[0].message.content or ""
        if request.choices and not request.json_schema:
            text = _unquote(text)
        usage = response.usage
        return Completion(
            text=text,
            input_tokens=usage.prompt_tokens if usage else None,
            output_tokens=usage.completion_tokens if usage else None,
        )


def _unquote(text: str) -> str:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return text
    return value if isinstance(value, str) else text
