"""Who a name is, and who is really running this process.

:func:`person` is the one function through which names are compared wherever the rules ask
"is this the same person?" (the commander, the declarer, one person in two roles): ``ROOT``,
``root `` and ``root`` + a zero-width space are all ``root``. Roster membership is stricter: only
the exact rostered spelling is on the roster (see :mod:`console.policy`), so a look-alike is
refused in both directions, never let in in either.

:func:`invoking_people` answers "who is behind this OS account?" for ``warroom approve`` run
under ``su``/``sudo``/``runuser``: the account the session logged in as (the kernel's audit login
uid), the ``SUDO_USER`` sudo sets, and the owner of the controlling terminal. ``su`` changes the
effective user, not the login session, so the real person still shows.
"""

from __future__ import annotations

import os
import pwd
import unicodedata
from dataclasses import dataclass

#: Unicode categories removed from a name: separators, controls, format characters (zero-width
#: space and joiners, bidi controls, soft hyphen), unassigned/private code points.
_DROPPED_CATEGORIES = frozenset({"Zs", "Zl", "Zp", "Cc", "Cf", "Co", "Cn", "Cs"})
#: Invisible characters Unicode classes as letters or marks; they still make no visible name.
_INVISIBLE = frozenset({"\u115f", "\u1160", "\u3164", "\uffa0", "\u034f", "\u180e", "\u2800"})
#: /proc/self/loginuid when the session has no audit login uid (or the kernel keeps none).
_NO_LOGIN_UID = 4294967295


def person(name: str) -> str:
    """The identity a name stands for: NFKC, case-folded, without whitespace or invisible
    characters. Two names with the same ``person`` are the same person to every rule."""
    folded = unicodedata.normalize("NFKC", name).casefold()
    folded = unicodedata.normalize("NFKC", folded)  # casefold can leave non-NFKC forms
    return "".join(ch for ch in folded
                   if ch not in _INVISIBLE and not ch.isspace()
                   and unicodedata.category(ch) not in _DROPPED_CATEGORIES)


def same_person(a: str, b: str) -> bool:
    """Whether two names are one person (never true for an empty name)."""
    pa = person(a)
    return bool(pa) and pa == person(b)


@dataclass(frozen=True)
class Invocation:
    """Who runs this process: the effective account and the people behind it (each source that
    names someone other than the effective account, as ``(source, name)``)."""

    user: str
    behind: tuple[tuple[str, str], ...] = ()

    @property
    def people(self) -> list[str]:
        """Distinct people behind the account (not the account itself), in source order."""
        seen: list[str] = []
        for _, name in self.behind:
            if name not in seen:
                seen.append(name)
        return seen

    def describe(self) -> str:
        """``"root (login uid), root (SUDO_USER)"`` — for the record and refusals."""
        return ", ".join(f"{name} ({source})" for source, name in self.behind)


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def _login_uid() -> int | None:
    try:
        with open("/proc/self/loginuid", "rb") as handle:
            text = handle.read().strip()
    except OSError:
        return None
    try:
        uid = int(text)  # int() reads ASCII digits from bytes: no codec to look up
    except ValueError:
        return None
    return None if uid == _NO_LOGIN_UID else uid


def _terminal_owner() -> int | None:
    """The owner of the controlling terminal (``su``/``sudo`` keep the caller's tty)."""
    for fd in (0, 1, 2):
        try:
            if os.isatty(fd):
                return os.stat(os.ttyname(fd)).st_uid
        except OSError:
            continue
    try:
        fd = os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY)
    except OSError:
        return None
    try:
        return os.fstat(fd).st_uid
    finally:
        os.close(fd)


def invoking_people(environ: dict[str, str] | None = None) -> Invocation:
    """The effective OS account and who is behind it. ``SUDO_USER`` is read from the
    environment (sudo sets it; anyone can set it too, so it only ever *adds* a person the rules
    must consider, never replaces the account)."""
    env = os.environ if environ is None else environ
    user = pwd.getpwuid(os.geteuid()).pw_name
    behind: list[tuple[str, str]] = []
    login = _login_uid()
    if login is not None:
        behind.append(("login uid", _user_name(login)))
    sudo_user = env.get("SUDO_USER", "").strip()
    if sudo_user:
        behind.append(("SUDO_USER", sudo_user))
    tty_owner = _terminal_owner()
    if tty_owner is not None:
        behind.append(("terminal owner", _user_name(tty_owner)))
    others = tuple((source, name) for source, name in behind if not same_person(name, user))
    return Invocation(user, others)
