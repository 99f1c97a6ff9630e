"""The fast scrub removes exactly what the position-by-position scrub removed (issue 10).

:func:`adapters.secrets.scrub` finds where pieces of secrets start with the C regex engine
instead of a Python loop over every position of the text. Security code: nothing scrubbed
before may stop being scrubbed, and nothing else may change. The scrub as it was (a loop that
looks every 4 characters up in the set of pieces, then merges overlapping and adjacent matches
and spares a short match inside a 64-hex-digit hash) is kept here as the reference, and tens of
thousands of seeded random texts — built from pieces of the secrets and of their URL-encoded and
base64 forms, hex runs around 64 digits, near misses, overlapping and adjacent pieces, unicode,
empty and short texts — must come out of both byte for byte the same.
"""

from __future__ import annotations

import random
import string
from collections.abc import Iterator

import pytest

from adapters import secrets

SEED = 10


@pytest.fixture(autouse=True)
def _no_registered_secrets() -> Iterator[None]:
    secrets.forget_all()
    yield
    secrets.forget_all()


# --- the reference: the scrub before issue 10, verbatim but for its set of pieces passed in ------

_HEX = frozenset("0123456789abcdef")


def reference_scrub(text: str, grams: frozenset[str]) -> str:
    if not grams or len(text) < 4:
        return text
    n = 4
    covered_until = -1
    spans: list[tuple[int, int]] = []
    for i in range(len(text) - n + 1):
        if text[i:i + n] in grams:
            if spans and i <= covered_until:
                spans[-1] = (spans[-1][0], i + n)
            else:
                spans.append((i, i + n))
            covered_until = i + n
    if not spans:
        return text
    spans = [span for span in spans if not reference_coincidence_in_a_hash(text, *span)]
    if not spans:
        return text
    out: list[str] = []
    last = 0
    for start, end in spans:
        out.append(text[last:start])
        out.append("***")
        last = end
    out.append(text[last:])
    return "".join(out)


def reference_coincidence_in_a_hash(text: str, start: int, end: int) -> bool:
    if end - start >= 8:
        return False
    left = start
    while left > 0 and text[left - 1] in _HEX:
        left -= 1
    right = end
    while right < len(text) and text[right] in _HEX:
        right += 1
    return right - left == 64 and all(ch in _HEX for ch in text[start:end])


# --- random secrets and texts --------------------------------------------------------------------

UNICODE = "äéß€中文字🙂\u0301\u200b\U0010fffdΩ"
NOISE = string.ascii_letters + string.digits + " -_/+=%:.,\n\t" + UNICODE


def random_secret(rng: random.Random) -> str:
    kind = rng.randrange(7)
    size = rng.randint(4, 48)
    if kind == 0:  # the letters no screen strings together (tests/security/support.token)
        return "".join(rng.choice("QXZJKVWqxzjkvw") for _ in range(size))
    if kind == 1:  # hex: its pieces also turn up in hashes
        return "".join(rng.choice("0123456789abcdef") for _ in range(size))
    if kind == 2:  # what URL-encoding and base64 change
        return "".join(rng.choice(string.ascii_letters + string.digits + "/+= %&?:@")
                       for _ in range(size))
    if kind == 3:  # unicode
        return "".join(rng.choice(string.ascii_letters + UNICODE) for _ in range(size))
    if kind == 4:  # a webhook URL: scrubbed by its secret parts
        token = "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(size))
        return f"https://user:{token[:6]}@hooks.example/services/T0{token[:7]}/{token}?k={size}1x"
    if kind == 5:  # repetitive: pieces overlap themselves
        unit = "".join(rng.choice("ab0f") for _ in range(rng.randint(1, 3)))
        return (unit * 30)[:max(size, 4)]
    return "".join(rng.choice(string.printable.strip()) for _ in range(size))


def random_text(rng: random.Random, forms: list[str]) -> str:
    parts: list[str] = []
    for _ in range(rng.randrange(0, 9)):
        kind = rng.randrange(9)
        form = rng.choice(forms) if forms else "QXZJ"
        if kind == 0:  # a piece of a form, any length (shorter than 4 too)
            start = rng.randrange(len(form))
            parts.append(form[start:start + rng.randint(1, len(form))])
        elif kind == 1:  # a near miss: one character changed
            piece = list(form[:rng.randint(4, min(len(form), 9))])
            piece[rng.randrange(len(piece))] = rng.choice(NOISE)
            parts.append("".join(piece))
        elif kind == 2:  # a hex run of about a hash's length, maybe holding a piece
            hex_run = [rng.choice("0123456789abcdef") for _ in range(rng.randint(56, 70))]
            if rng.random() < 0.7:
                piece = form[:rng.randint(4, 9)]
                at = rng.randrange(len(hex_run))
                hex_run[at:at + len(piece)] = piece
            parts.append("".join(hex_run))
        elif kind == 3:  # exactly 64 hex digits, a piece of the form inside at any offset
            digest = [rng.choice("0123456789abcdef") for _ in range(64)]
            piece = form[rng.randrange(len(form)):][:rng.randint(4, 8)]
            at = rng.randrange(64)
            digest[at:at + len(piece)] = piece
            parts.append("".join(digest[:64]) if rng.random() < 0.5 else "".join(digest))
        elif kind == 4:  # adjacent and overlapping pieces
            a, b = rng.choice(forms or [form]), rng.choice(forms or [form])
            cut = rng.randint(0, 3)
            parts.append(a[:rng.randint(4, len(a))] + " " * cut + b[rng.randrange(len(b)):])
        elif kind == 5:
            parts.append("".join(rng.choice(NOISE) for _ in range(rng.randint(0, 12))))
        elif kind == 6:
            parts.append(rng.choice(["", " ", "\n", "***", "sha256:", "%2F", "=="]))
        elif kind == 7:  # a whole form
            parts.append(form)
        else:  # a piece repeated with gaps of 0..4 characters (the merge rule's edge)
            piece = form[:4]
            parts.append(("x" * rng.randint(0, 4)).join([piece] * rng.randint(2, 4)))
    return "".join(parts)


def grams_of(secret_list: list[str]) -> frozenset[str]:
    grams: set[str] = set()
    for secret in secret_list:
        for form in secrets.secret_forms(secret) if len(secret) >= 4 else ():
            grams.update(form[i:i + 4] for i in range(len(form) - 3))
    return frozenset(grams)


def test_the_pieces_are_as_before() -> None:
    """The reference is fed the same pieces the product computes."""
    rng = random.Random(SEED)
    for _ in range(200):
        chosen = [random_secret(rng) for _ in range(rng.randint(1, 3))]
        assert secrets._pieces_of(chosen) == grams_of(chosen)


@pytest.mark.parametrize("case", range(40))
def test_the_scrub_equals_the_reference_on_random_texts(case: int) -> None:
    rng = random.Random(SEED * 1000 + case)
    registered = [random_secret(rng) for _ in range(rng.randint(0, 3))]
    extra = [random_secret(rng) for _ in range(rng.randint(0, 2))]
    if not registered and not extra:
        extra = [random_secret(rng)]
    secrets.register(registered)
    grams = grams_of(registered + extra)
    forms = sorted({form for s in registered + extra for form in secrets.secret_forms(s)}) \
        or registered + extra
    for index in range(1000):
        text = random_text(rng, forms)
        if index % 50 == 0:
            text = text[:rng.randint(0, 5)]  # empty and short texts
        expected = reference_scrub(text, grams)
        assert secrets.scrub(text, extra) == expected, (registered, extra, text)
        if not extra:
            assert secrets.scrub_value(text) == expected
        else:
            only_registered = reference_scrub(text, grams_of(registered))
            assert secrets.scrub(text) == only_registered, (registered, text)


def test_the_scrub_equals_the_reference_on_texts_dense_with_pieces() -> None:
    """Long texts that are mostly secret: runs merge across many overlapping matches."""
    rng = random.Random(SEED)
    for _ in range(200):
        chosen = [random_secret(rng) for _ in range(rng.randint(1, 3))]
        forms = sorted({form for s in chosen for form in secrets.secret_forms(s)}) or ["QXZJ"]
        text = "".join(rng.choice(forms)[rng.randrange(3):] + rng.choice(["", "", "-", "0"])
                       for _ in range(rng.randint(1, 40)))
        assert secrets.scrub(text, chosen) == reference_scrub(text, grams_of(chosen))


def test_an_unchanged_text_and_value_are_the_same_objects() -> None:
    secrets.register(["QXZJKVWqxzjkvw"])
    text = "canary 3.36% > limit 2.00% at 22:14"
    payload = {"text": text, "items": [text, 3, None]}
    assert secrets.scrub(text) is text
    assert secrets.scrub_value(payload) is payload
    items = [text]
    changed = secrets.scrub_value({"text": "token QXZJKVW", "items": items})
    assert changed == {"text": "token ***", "items": [text]}
    assert changed["items"] is items


def test_pieces_with_characters_special_to_a_regex_are_found_literally() -> None:
    secret = r"a.b*c+d?e(f)g[h]i{j}k|l^m$n\o"
    secrets.register([secret])
    grams = grams_of([secret])
    for text in (secret, "x" + secret[3:11] + "y", "a.b*", "aXbYc", ".b*c", "(f)g[h]", "ab*c+"):
        assert secrets.scrub(text) == reference_scrub(text, grams), text
