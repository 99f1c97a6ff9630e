"""Sleep until a file is written: how an idle watcher notices a commit without asking SQLite
ten times a second.

A commit to a WAL database is a ``write()`` to its ``-wal`` (a checkpoint writes the database
file), which the kernel reports through inotify. :class:`FileWatch` watches each named file for
writes, and the *directory* only for files made or renamed into it — a ``-wal`` deleted and made
again by a later commander is seen, and watched from then on — so writes to other files in the
same directory (another incident's record, an export) do not wake it. :meth:`FileWatch.wait`
blocks in ``select`` until one happens, the timeout passes, or :meth:`FileWatch.close` wakes it.
It only says that something was written: the caller then asks SQLite whether a commit is
visible (``PRAGMA data_version``).

Linux only (inotify through ctypes); :func:`file_watch` returns None elsewhere, or when the
kernel refuses (no inotify instances left), and the caller polls as before.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import struct
import sys
import threading
from collections.abc import Iterable
from pathlib import Path

_IN_MODIFY = 0x00000002
_IN_MOVED_TO = 0x00000080
_IN_CREATE = 0x00000100
_IN_Q_OVERFLOW = 0x00004000
_IN_IGNORED = 0x00008000
_IN_NONBLOCK = 0o4000
_IN_CLOEXEC = 0o2000000
_EVENT = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len (then the name)


class FileWatch:
    """Writes to (or creation of) some files of one directory, as a blocking wait."""

    def __init__(self, libc: ctypes.CDLL, fd: int, directory: Path,
                 names: frozenset[bytes]) -> None:
        self._libc = libc
        self._fd = fd
        self._directory = os.fsencode(directory)
        self._names = names
        self._files: set[int] = set()  # the watch descriptors of the named files
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._lock = threading.Lock()  # held while waiting: close() waits for the waiter
        self._closed = False
        for name in names:
            self._watch_file(name)

    def _watch_file(self, name: bytes) -> None:
        """Writes to ``name`` from now on (a file that does not exist yet: when it is made)."""
        wd = self._libc.inotify_add_watch(self._fd, os.path.join(self._directory, name),
                                          _IN_MODIFY)
        if wd >= 0:
            self._files.add(wd)

    def wait(self, timeout: float) -> bool:
        """Up to ``timeout`` seconds for a write to one of the files: True when one happened
        (or events were lost, so one may have), False at the timeout or once closed."""
        with self._lock:
            if self._closed:
                return False
            try:
                ready, _, _ = select.select([self._fd, self._wake_r], [], [], max(0.0, timeout))
            except (OSError, ValueError):
                return False
            if self._wake_r in ready or self._fd not in ready:
                return False
            return self._ours(os.read(self._fd, 64 * 1024))

    @property
    def closed(self) -> bool:
        return self._closed

    def _ours(self, data: bytes) -> bool:
        offset, size, names = 0, _EVENT.size, self._names
        ours = False
        while offset + size <= len(data):
            wd, mask, _, length = _EVENT.unpack_from(data, offset)
            name = data[offset + size:offset + size + length].rstrip(b"\0")
            offset += size + length
            if mask & _IN_Q_OVERFLOW:
                ours = True
            elif mask & _IN_IGNORED:
                self._files.discard(wd)  # the file was deleted: its watch is gone
            elif wd in self._files:
                ours = True  # a write to one of the files
            elif name in names:
                self._watch_file(name)  # made (or renamed) into the directory: watched now
                ours = True
        return ours

    def __del__(self) -> None:  # a watch nobody closed still gives its descriptors back
        with contextlib.suppress(Exception):
            self.close()

    def close(self) -> None:
        """Wake a waiting :meth:`wait` (it returns False) and release the descriptors."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        with self._lock:  # the waiter has left select: the descriptors can go
            for fd in (self._fd, self._wake_r, self._wake_w):
                with contextlib.suppress(OSError):
                    os.close(fd)


def file_watch(directory: Path, names: Iterable[str]) -> FileWatch | None:
    """A :class:`FileWatch` of ``names`` in ``directory``, or None where inotify cannot be
    had (not Linux, no instances left, a directory it may not watch)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
    except (OSError, AttributeError):
        return None
    if fd < 0:
        return None
    # The directory first: a file made between the two is then reported, and watched.
    if libc.inotify_add_watch(fd, os.fsencode(directory), _IN_CREATE | _IN_MOVED_TO) < 0:
        os.close(fd)
        return None
    return FileWatch(libc, fd, directory, frozenset(os.fsencode(name) for name in names))
