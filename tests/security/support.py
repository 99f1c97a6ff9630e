"""What the security suite shares: a token no screen shows by chance, its pieces, a tmux driver,
and real OS accounts (created with useradd when root; skipped with the reason otherwise)."""

from __future__ import annotations

import grp
import os
import pwd
import random
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GROUP = "warroom-sec"

needs_root = pytest.mark.skipif(
    os.geteuid() != 0,
    reason="needs root: the case runs on real OS accounts, created with useradd (CI is root)")


def token(length: int = 40, seed: int | None = None) -> str:
    """A secret made only of letters that no screen, date, id or English word strings together
    (Q, X, Z, J, K, V, W in both cases), so any 4 of its characters on a screen are a leak."""
    rng = random.Random(seed)
    return "".join(rng.choice("QXZJKVWqxzjkvw") for _ in range(length))


def pieces(secret: str, size: int = 4) -> set[str]:
    """Every substring of ``secret`` of ``size`` characters (longer ones contain one of them)."""
    return {secret[i:i + size] for i in range(len(secret) - size + 1)}


def leaks(secret: str, texts: Iterable[tuple[str, str]]) -> list[str]:
    """Where any 4-character piece of ``secret`` shows: ``"where: piece"`` for each."""
    found = []
    grams = pieces(secret)
    for where, text in texts:
        hits = sorted(g for g in grams if g in text)
        if hits:
            found.append(f"{where}: {hits[:5]}")
    return found


def ensure_group(name: str = GROUP) -> int:
    subprocess.run(["groupadd", "-f", name], check=True, capture_output=True)
    return grp.getgrnam(name).gr_gid


def ensure_account(name: str, group: str = GROUP) -> pwd.struct_passwd:
    """A real OS account (no home, no login shell needed: su -s gives one)."""
    ensure_group(group)
    if subprocess.run(["id", name], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "-M", "-N", "-s", "/bin/sh", "-G", group, name], check=True,
                       capture_output=True)
    return pwd.getpwnam(name)


def shared_room(group: str = GROUP) -> Path:
    """A directory the war-room group can use (the database and its -wal/-shm live there),
    outside pytest's own 0700 temp tree (which another pytest session may lock down again).
    The caller removes it."""
    gid = ensure_group(group)
    room = Path(tempfile.mkdtemp(prefix="warroom-sec-room-"))
    os.chown(room, -1, gid)
    os.chmod(room, 0o2770)
    return room


def venv_python() -> str:
    candidate = REPO / ".venv" / "bin" / "python"
    return str(candidate) if candidate.exists() else shutil.which("python3") or "python3"
