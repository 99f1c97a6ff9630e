"""The one scrub: no piece of a configured secret reaches text a person or a file can read.

A secret leaks in pieces as well as whole: a command that prints its token minus the last four
characters, a URL-encoded copy in an error, the base64 of ``user:password`` in an echoed header.
:func:`scrub` therefore replaces every run of text made of pieces of at least
:data:`MIN_PIECE` characters of a secret — of the secret itself, its URL-encoded forms and its
base64 forms — with ``***``. Nothing of four characters or more that came from a secret survives.

The secrets are the values of the environment variables the config names (registered once at
start with :func:`register`) plus any a caller passes. A secret that is a URL (a chat webhook)
is scrubbed by its secret parts — userinfo, the path segments and query values that carry an id
or a token — not by ``https://`` and the host name, which are not secret and would otherwise
mangle every URL in every message.

Only the standard library: the adapters (which may not import the console) and the console's
store and exports use this same function.
"""

from __future__ import annotations

import base64
import re
import threading
from collections.abc import Iterable
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, urlsplit

#: The shortest piece of a secret that is scrubbed (shorter pieces are everywhere in any text).
MIN_PIECE = 4
MASK = "***"

_lock = threading.Lock()
_registered: frozenset[str] = frozenset()
_pieces: frozenset[str] = frozenset()


def _url_parts(secret: str) -> list[str] | None:
    """The secret parts of a secret that is a URL, or None when it is not one."""
    try:
        parts = urlsplit(secret)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    pieces: list[str] = []
    if parts.username:
        pieces.append(parts.username)
    if parts.password:
        pieces.append(parts.password)
    candidates = [segment for segment in parts.path.split("/") if segment]
    candidates += [value for _, value in parse_qsl(parts.query, keep_blank_values=False)]
    if parts.fragment:
        candidates.append(parts.fragment)
    # an id or a token: has a digit, or is long; "services", "webhooks", "api" are not secret
    pieces += [c for c in candidates if (len(c) >= 6 and any(ch.isdigit() for ch in c))
               or len(c) >= 16]
    return pieces or [parts.path + ("?" + parts.query if parts.query else "")]


def _base64_forms(data: bytes) -> list[str]:
    """The base64 text ``data`` shows as wherever it sits in an encoded blob: at each of the
    three byte alignments, the characters that depend only on ``data`` (standard and URL-safe),
    and the whole encoding of ``data`` alone."""
    texts = {base64.b64encode(data).decode("ascii").rstrip("=")}
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + data).decode("ascii")
        # character k holds bits 6k..6k+5: it depends only on data when they all lie in it
        start = -(-4 * offset // 3)
        end = 4 * (offset + len(data)) // 3
        texts.add(encoded[start:end])
    forms: list[str] = []
    for text in texts:
        if len(text) >= MIN_PIECE:
            forms.append(text)
            forms.append(text.replace("+", "-").replace("/", "_"))
    return forms


def secret_forms(secret: str) -> set[str]:
    """Every form a secret may take in text: itself, URL-encoded (both hex cases, ``+`` for
    spaces or not), base64 (standard and URL-safe, at any alignment)."""
    forms: set[str] = set()
    parts = _url_parts(secret)
    for value in ([secret] if parts is None else parts):
        if not value:
            continue
        forms.add(value)
        for encoded in (quote(value, safe=""), quote_plus(value, safe=""), quote(value)):
            forms.add(encoded)
            forms.add(encoded.lower() if "%" in encoded else encoded)
        forms.update(_base64_forms(value.encode("utf-8")))
    return {form for form in forms if len(form) >= MIN_PIECE}


def _pieces_of(secrets: Iterable[str]) -> frozenset[str]:
    grams: set[str] = set()
    for secret in secrets:
        if len(secret) < MIN_PIECE:
            continue
        for form in secret_forms(secret):
            grams.update(form[i:i + MIN_PIECE] for i in range(len(form) - MIN_PIECE + 1))
    return frozenset(grams)


def register(secrets: Iterable[str]) -> None:
    """Add secrets every :func:`scrub` in this process removes (values of the environment
    variables the config names, read at start)."""
    global _registered, _pieces
    new = {s.strip() for s in secrets if s and len(s.strip()) >= MIN_PIECE}
    with _lock:
        if new <= _registered:
            return
        _registered = _registered | new
        _pieces = _pieces_of(_registered)


def registered() -> frozenset[str]:
    return _registered


def forget_all() -> None:
    """Drop every registered secret (tests)."""
    global _registered, _pieces
    with _lock:
        _registered = frozenset()
        _pieces = frozenset()


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every run of secret pieces (≥ :data:`MIN_PIECE` characters of a
    registered secret or of ``secrets``, in any form) replaced by ``***``."""
    extra = tuple(s for s in secrets if s)
    grams = _pieces if not extra else _pieces | _pieces_of(extra)
    if not grams or len(text) < MIN_PIECE:
        return text
    n = MIN_PIECE
    covered_until = -1
    spans: list[tuple[int, int]] = []
    # every position a piece starts at: each match is a character of a piece that has a piece
    # around it, and the pieces it may belong to start at most n - 1 characters before it
    starts: set[int] = set()
    for match in _finder(grams).finditer(text):
        at = match.start()
        starts.update(i for i in range(max(at - n + 1, 0), at + 1) if text[i:i + n] in grams)
    for i in sorted(starts):
        if spans and i <= covered_until:
            spans[-1] = (spans[-1][0], i + n)
        else:
            spans.append((i, i + n))
        covered_until = i + n
    if not spans:
        return text
    spans = [span for span in spans if not _coincidence_in_a_hash(text, *span)]
    if not spans:
        return text
    out: list[str] = []
    last = 0
    for start, end in spans:
        out.append(text[last:start])
        out.append(MASK)
        last = end
    out.append(text[last:])
    return "".join(out)


#: Characters by how often they occur in the text scrubbed (English, logs, JSON), most first:
#: what :func:`_finder` prefers not to look for.
_COMMON = ' etaoinsrhldcumfpgwybvkxjqz0123456789":,.-_/{}\n'


def _commonness(char: str) -> float:
    rank = _COMMON.find(char)
    return 1.0 if rank < 0 else 1000.0 / (rank + 1) + 1.0


@lru_cache(maxsize=64)
def _finder(grams: frozenset[str]) -> re.Pattern[str]:
    """A pattern that, searched for, stops at every occurrence of every piece in ``grams`` (all
    :data:`MIN_PIECE` long), in the C regex engine.

    Each piece is given an anchor: one of its characters, chosen so that the anchors of all
    pieces are few and rarely seen in text (uppercase letters before lowercase ones, a space
    never when avoidable). The pattern consumes just an anchor character, and matches where one
    of the pieces anchored on it lies around it (the characters before it looked behind at,
    those after looked ahead at); the engine skips every character that is no anchor without
    starting a match. A match is therefore one character of an occurrence, at most
    ``MIN_PIECE - 1`` after its start; matches never overlap, so no occurrence is missed."""
    uncovered = set(grams)
    anchors: set[str] = set()
    while uncovered:
        chars = sorted({char for gram in uncovered for char in gram})
        best = max(chars, key=lambda c: sum(c in gram for gram in uncovered) / _commonness(c))
        anchors.add(best)
        uncovered = {gram for gram in uncovered if best not in gram}
    around: dict[str, list[str]] = {}
    for gram in sorted(grams):
        k = next(k for k, char in enumerate(gram) if char in anchors)
        before = f"(?<={re.escape(gram[:k + 1])})" if k else ""
        after = f"(?={re.escape(gram[k + 1:])})" if k + 1 < len(gram) else ""
        around.setdefault(gram[k], []).append(before + after)
    return re.compile("|".join(re.escape(anchor) + "(?:" + "|".join(ways) + ")"
                               for anchor, ways in sorted(around.items())))


_HEX = frozenset("0123456789abcdef")
#: A sha256 (the chain's hashes, the published head) is 64 hex digits; a few digits of a secret
#: turn up in one by chance (a 4-digit piece in about 1 of 1,100 hashes), not because it leaked.
_HASH_CHARS = 64
_COINCIDENCE_BELOW = 8


def _coincidence_in_a_hash(text: str, start: int, end: int) -> bool:
    """Whether a short match lies inside a run of exactly 64 lower-case hex digits (a hash):
    scrubbing it would corrupt the hash, and the secret did not put it there."""
    if end - start >= _COINCIDENCE_BELOW:
        return False
    left = start
    while left > 0 and text[left - 1] in _HEX:
        left -= 1
    right = end
    while right < len(text) and text[right] in _HEX:
        right += 1
    return right - left == _HASH_CHARS and all(ch in _HEX for ch in text[start:end])


def scrub_value(value: Any) -> Any:
    """A JSON-like value (a payload) with every string in it scrubbed; the same object when
    nothing needed scrubbing (so the common case allocates nothing)."""
    if not _pieces:
        return value
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        changed = {key: scrub_value(item) for key, item in value.items()}
        return changed if any(changed[k] is not value[k] for k in value) else value
    if isinstance(value, list):
        items = [scrub_value(item) for item in value]
        return items if any(a is not b for a, b in zip(items, value, strict=True)) else value
    return value
