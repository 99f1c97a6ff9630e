"""Small helpers the deploy, traffic and notify adapters share: reading an answer, cleaning text.

:mod:`adapters.http` and :mod:`adapters.command` read a weight, a version or a preflight verdict
out of what a system answered, and every adapter puts short, cleaned, secret-free excerpts into its
error messages. This module imports only the standard library and :mod:`adapters.base`, so an
adapter that needs no settings model (:mod:`adapters.notify`) does not pay for pydantic.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from adapters.base import AdapterTimeout, DeployError, PreflightCheck

if TYPE_CHECKING:
    from adapters.settings import SecretFromEnv

#: Longest excerpt of a response body or a command's output put into an error message.
EXCERPT_CHARS = 200

# ANSI escape sequences (colours, cursor moves) and the remaining control characters.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-_]")
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_AFFIRMATIVE = frozenset({"true", "ok", "yes", "pass", "passed", "ready", "success", "succeeded"})


class PathNotFound(LookupError):
    """A dotted result path does not lead to a value; ``str()`` says where it stopped."""


def lookup_path(data: object, path: str) -> object:
    """Follow a dotted ``path`` through dicts and lists (``items.0.version``)."""
    node = data
    walked: list[str] = []
    for part in path.split("."):
        if isinstance(node, Mapping):
            if part not in node:
                keys = ", ".join(sorted(str(k) for k in node)[:8]) or "none"
                at = ".".join(walked) or "the top level"
                raise PathNotFound(f"no field {part!r} at {at} (fields there: {keys})")
            node = node[part]
        elif isinstance(node, list):
            try:
                index = int(part)
            except ValueError:
                raise PathNotFound(
                    f"{'.'.join(walked) or 'the top level'} is a list; {part!r} is not an index"
                ) from None
            if not -len(node) <= index < len(node):
                raise PathNotFound(
                    f"{'.'.join(walked) or 'the top level'} has {len(node)} items; "
                    f"no index {index}"
                )
            node = node[index]
        else:
            at = ".".join(walked) or "the top level"
            raise PathNotFound(f"{at} is {kind_of(node)}, not an object or a list")
        walked.append(part)
    return node


def parse_weight(value: object) -> int:
    """A canary weight read from a system, as an int 0..100; ValueError says what was wrong."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"expected a number 0..100, got {kind_of(value)}")
    number: float
    if isinstance(value, str):
        text = value.strip().removesuffix("%").strip()
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"expected a number 0..100, got {clean_text(value, 40)!r}") from None
    else:
        number = float(value)
    if not math.isfinite(number) or not 0 <= number <= 100:
        raise ValueError(f"expected a number 0..100, got {value!r}")
    # round half up: 12.5 % of traffic is reported as 13, never silently as 12
    return math.floor(number + 0.5)


def parse_version(value: object) -> str:
    """A version read from a system, as a short one-line string; ValueError otherwise."""
    if isinstance(value, bool) or value is None or isinstance(value, dict | list):
        raise ValueError(f"expected a version string, got {kind_of(value)}")
    text = str(value).strip()
    if not text:
        raise ValueError("expected a version string, got an empty value")
    if len(text) > 200 or CONTROL.search(text):
        raise ValueError(f"expected a version string, got {clean_text(text, 60)!r}")
    return text


def describe_preflight_value(value: object, target: str) -> tuple[bool, str]:
    """Judge the value a preflight reported: True, 'ok'/'yes'/..., or exactly the target passes."""
    if isinstance(value, bool):
        return value, f"reported {str(value).lower()}"
    if isinstance(value, int | float):
        return value != 0, f"reported {value}"
    if isinstance(value, str):
        text = value.strip()
        if text == target:
            return True, f"reports {text!r}, the target"
        if text.lower() in _AFFIRMATIVE:
            return True, f"reported {text!r}"
        return False, f"reported {clean_text(text, 60)!r} (expected the target {target!r} or true)"
    return False, f"reported {kind_of(value)} (expected the target {target!r} or true)"


_HTML_START = re.compile(r"^\s*(?:<!doctype\s+html|<html|<head|<body|<\?xml|<!--)", re.IGNORECASE)


def looks_like_html(text: str) -> bool:
    """Whether an answer is an HTML page (a login page, a proxy's error page) rather than data."""
    return _HTML_START.match(text[:512]) is not None


def clean_text(text: str, limit: int = EXCERPT_CHARS) -> str:
    """One line of at most ``limit`` characters: escapes and control characters removed."""
    text = _ANSI.sub("", text)
    text = CONTROL.sub(" ", text)
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 3].rstrip() + "..."
    return text


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with no piece of ``secrets`` or of the registered secrets in it (see
    :func:`adapters.secrets.scrub`: every run of four characters or more of a secret, in any of
    its forms, becomes ``***``)."""
    from adapters import secrets as secrets_module

    return secrets_module.scrub(text, secrets)


def excerpt(text: str, secrets: Iterable[str], limit: int = EXCERPT_CHARS) -> str:
    """``text`` for an error message or a progress line: cleaned, cut, and with no secret in it.

    Secrets are replaced before the text is cut, or a cut through one would leave most of it
    showing; and again after cleaning, which can join the pieces of one.
    """
    secrets = tuple(secrets)
    return scrub(clean_text(scrub(text, secrets), limit), secrets)


def resolve_secret(secret: SecretFromEnv, where: str) -> tuple[str, str]:
    """``(formatted value, raw secret)`` of a secret read from the environment now.

    A missing or empty variable raises DeployError naming the variable, never a value.
    """
    raw = os.environ.get(secret.env)
    if not raw:
        raise DeployError(
            f"{where}: environment variable {secret.env} is not set (it holds a secret); "
            "nothing was sent"
        )
    return secret.format.replace("{}", raw), raw


def check_context(context: Mapping[str, str | None]) -> dict[str, str]:
    """A copy of the console's placeholder values; unknown names are a programming error.

    ``None`` and ``""`` mean "not known" (an incident declared without ``--to-version``): the key
    is dropped, and an action that needs it fails with "no value for {version}" when it runs.
    """
    from adapters.settings import PLACEHOLDERS  # here: adapters.settings imports pydantic

    unknown = sorted(set(context) - set(PLACEHOLDERS))
    if unknown:
        raise ValueError(f"unknown context key {unknown[0]!r} (known: {', '.join(PLACEHOLDERS)})")
    values: dict[str, str] = {}
    for key, value in context.items():
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            raise TypeError(f"context value for {key!r} must be a str, got {kind_of(value)}")
        values[key] = value
    return values


def check_percent(percent: int) -> str:
    """The canary weight to set, as the text a template gets; DeployError unless an int 0..100."""
    if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100:
        raise DeployError(f"set_weight: percent must be an integer 0..100, got {percent!r}")
    return str(percent)


def should_advance(percent: int, current: int, why: str) -> bool:
    """Whether a set_weight action that can only advance the canary should run to reach ``percent``.

    Such an action does not carry ``{percent}`` (a "promote to the next step" call): it is not
    needed when the weight is already ``percent``, and going down with it would promote, not
    abort, so a lower ``percent`` is refused. ``why`` starts the refusal: "the configured ...".
    """
    if percent < current:
        raise DeployError(
            f"set_weight: {why}, so it can only advance the canary; refusing to use it to go from "
            f"{current}% down to {percent}% (abort or roll back instead)"
        )
    return percent > current


def version_check(read: Callable[[], str]) -> PreflightCheck:
    """The console confirms a rollback by reading the version: it must be readable now."""
    try:
        return PreflightCheck("current version readable", True, f"reports {read()!r}")
    except (DeployError, AdapterTimeout) as error:
        return PreflightCheck("current version readable", False, str(error))


def kind_of(value: object) -> str:
    """What a JSON-ish value is, in words, for a message: "null", "a list", "a number"..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return type(value).__name__
