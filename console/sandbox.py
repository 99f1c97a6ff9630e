"""A thread that can open files but write none: how a reader gets no write handle on the record.

SQLite opens a WAL database's ``-wal`` (and, without ``readonly_shm``, its ``-shm``) read-write
whenever the account may write them, even on a ``mode=ro`` connection; only when the open is
refused does it fall back to read-only. :func:`forbid_writes_in_this_thread` makes the kernel
refuse it: a Landlock ruleset that handles every write right and grants none, enforced on the
calling thread only (Landlock and ``no_new_privs`` are per thread), so the rest of the process —
a watcher exporting its PIR, the terminal — is untouched. The store opens a read-only connection
in such a thread and reads once there, which opens all three files; SQLite keeps those handles
for the connection's life.

Linux 5.13 or newer with Landlock enabled; elsewhere :class:`SandboxUnavailable` is raised and
the caller decides (``warroom watch`` then checks its handles and refuses if any can write).
"""

from __future__ import annotations

import ctypes
import os
import sys

_CREATE_RULESET = 444
_RESTRICT_SELF = 446
_CREATE_RULESET_VERSION = 1
_PR_SET_NO_NEW_PRIVS = 38

# Landlock filesystem rights that change something: write a file, remove, make any node,
# re-parent (ABI 2), truncate (ABI 3).
_WRITE_FILE = 1 << 1
_REMOVE_DIR = 1 << 4
_REMOVE_FILE = 1 << 5
_MAKE_ANY = sum(1 << bit for bit in range(6, 13))  # char, dir, reg, sock, fifo, block, sym
_REFER = 1 << 13
_TRUNCATE = 1 << 14


class SandboxUnavailable(OSError):
    """This kernel (or platform) cannot restrict a thread's writes."""


def _libc() -> ctypes.CDLL:
    if not sys.platform.startswith("linux"):
        raise SandboxUnavailable("Landlock is Linux only")
    return ctypes.CDLL(None, use_errno=True)


def landlock_abi() -> int:
    """The kernel's Landlock ABI version, or 0 when it has none."""
    try:
        libc = _libc()
    except (SandboxUnavailable, OSError):
        return 0
    abi = libc.syscall(_CREATE_RULESET, None, ctypes.c_size_t(0),
                       ctypes.c_uint32(_CREATE_RULESET_VERSION))
    return max(0, int(abi))


def forbid_writes_in_this_thread() -> None:
    """From now on, this thread (and threads it starts) cannot open any file for writing,
    create, remove, rename into or truncate anything. Reading is unaffected."""
    abi = landlock_abi()
    if abi < 1:
        raise SandboxUnavailable("this kernel has no Landlock (Linux 5.13+, lsm=landlock)")
    libc = _libc()
    rights = _WRITE_FILE | _REMOVE_DIR | _REMOVE_FILE | _MAKE_ANY
    if abi >= 2:
        rights |= _REFER
    if abi >= 3:
        rights |= _TRUNCATE
    handled = ctypes.c_uint64(rights)  # struct landlock_ruleset_attr, its first field only
    ruleset = libc.syscall(_CREATE_RULESET, ctypes.byref(handled), ctypes.c_size_t(8),
                           ctypes.c_uint32(0))
    if ruleset < 0:
        raise SandboxUnavailable(ctypes.get_errno(), "landlock_create_ruleset failed")
    try:
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise SandboxUnavailable(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
        if libc.syscall(_RESTRICT_SELF, ruleset, ctypes.c_uint32(0)) != 0:
            raise SandboxUnavailable(ctypes.get_errno(), "landlock_restrict_self failed")
    finally:
        os.close(ruleset)


def writable_handles(paths: list[str]) -> list[str]:
    """Which of this process's open file descriptors on ``paths`` can write (from
    /proc/self/fd and the flags in /proc/self/fdinfo): ``["w.db-wal (fd 7)"]``."""
    wanted = {os.path.realpath(p) for p in paths}
    found: list[str] = []
    try:
        fds = os.listdir("/proc/self/fd")
    except OSError:
        return found
    for fd in fds:
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target not in wanted:
                continue
            with open(f"/proc/self/fdinfo/{fd}", "rb") as info:
                text = info.read()
        except OSError:
            continue
        flags = int(text.split(b"flags:")[1].split()[0], 8)
        if flags & os.O_ACCMODE != os.O_RDONLY:
            found.append(f"{os.path.basename(target)} (fd {fd})")
    return found
