"""Checks on endpoint settings and what keeps keys out of everything written: a task file never holds a key (only
the name of the environment variable that does), base URLs are http(s) without credentials, and error text is
redacted. Pure Python: the task loader and the advisor use it without the openai client."""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import urlsplit

from harness.errors import UserError
from harness.serve import is_loopback
from harness.spec import Endpoint

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# what API keys look like (OpenAI/Anthropic sk-, Groq gsk_, xAI xai-, Hugging Face hf_, Replicate r8_, Perplexity
# pplx-, Google AIza, and long hex tokens such as Together's): redacted wherever they appear in error text, and a
# task-file value holding one as a whole word is rejected (a path such as data/hf_cached_examples.jsonl is not one)
KEY_PATTERN = r"(?:(?:sk|gsk|xai|hf|r8|pplx)[-_][A-Za-z0-9_\-]{16,}|AIza[A-Za-z0-9_\-]{30,}|[a-fA-F0-9]{40,})"
KEY_LIKE = re.compile(rf"\b{KEY_PATTERN}\b")
KEY_WORD = re.compile(rf"^{KEY_PATTERN}$")
SECRET_KEYS = {"api_key", "apikey", "key", "token", "secret", "password", "authorization", "bearer"}


def check_base_url(url: str, where: str) -> None:
    """Only http(s) URLs with a host and no credentials in them."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserError(f"{where}: not an http(s) URL; use e.g. https://api.openai.com/v1")
    if parts.username or parts.password or parts.query:
        raise UserError(
            f"{where}: the URL holds credentials or a query string; keys go in the environment variable named by "
            f"api_key_env, never in the task file"
        )


def plain_http_remote(url: str) -> bool:
    """Plain http to a host other than this machine: requests and the key cross the network unencrypted."""
    parts = urlsplit(url)
    return parts.scheme == "http" and not is_loopback(parts.hostname or "")


def looks_like_key(text: str) -> bool:
    """A whitespace-separated word of ``text`` is, as a whole, shaped like a key."""
    return any(KEY_WORD.match(word.strip("\"'`,;()[]{}")) for word in text.split())


def check_no_keys(raw: Any, file: str, path: str = "") -> None:
    """Reject a task file that holds an API key: a key-named setting, or any value shaped like a key. The value is
    never repeated in the message."""
    if isinstance(raw, dict):
        for key, value in raw.items():
            dotted = f"{path}.{key}" if path else str(key)
            if str(key).lower().replace("-", "_") in SECRET_KEYS and value:
                raise UserError(
                    f"{file}: {dotted}: a task file never holds a key; export it in an environment variable and name "
                    f"that variable with api_key_env (e.g. api_key_env: OPENAI_API_KEY)"
                )
            check_no_keys(value, file, dotted)
    elif isinstance(raw, list):
        for i, value in enumerate(raw):
            check_no_keys(value, file, f"{path}[{i}]")
    elif isinstance(raw, str) and looks_like_key(raw):
        raise UserError(
            f"{file}: {path}: this value looks like an API key; a task file never holds a key: export it in an "
            f"environment variable and name that variable with api_key_env"
        )


def check_key_env(endpoint: Endpoint, where: str) -> None:
    """``api_key_env`` names a variable (it is not a key), and that variable is set."""
    var = endpoint.spec.api_key_env
    if var is None:
        return
    if not ENV_NAME.match(var) or looks_like_key(var):
        raise UserError(
            f"{where}.api_key_env: this looks like a key, not the name of an environment variable; never write a "
            f"key in a task file: export it (e.g. export OPENAI_API_KEY=...) and set api_key_env: OPENAI_API_KEY"
        )
    if not os.environ.get(var):
        raise UserError(
            f"{where}.api_key_env: the environment variable {var} is not set; export {var}=<your key> before "
            f"running (the key is read from the environment, never from the task file)"
        )


def read_key(endpoint: Endpoint) -> str:
    """The key from the environment; servers without keys still need a placeholder for the client."""
    var = endpoint.spec.api_key_env
    return os.environ.get(var, "") if var else "no-key"


def redact(text: str, secret: str | None) -> str:
    """``text`` without ``secret`` or anything shaped like a key."""
    if secret and secret != "no-key":
        text = text.replace(secret, "[redacted]")
    return KEY_LIKE.sub("[redacted]", text)
