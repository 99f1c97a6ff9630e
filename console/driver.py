"""The terminal driver: Textual's Linux driver, with an input thread that sleeps while idle.

Textual's input thread asks the terminal every 0.1 s whether a key came, so that a lone Escape
(which might begin a longer sequence) is reported once its short wait is over, and so that it
notices when input is to stop. That is ten wake-ups a second in every console, all day, in a war
room where each engineer keeps a watcher open: a third of an idle watcher's CPU. This thread
sleeps until a key comes; it wakes on time only while the parser waits to finish a sequence,
and a pipe wakes it when input stops. Everything else is Textual's driver, unchanged.
"""

from __future__ import annotations

import contextlib
import os
import selectors
from codecs import getincrementaldecoder
from threading import Event
from typing import TYPE_CHECKING, Any

from textual._parser import ParseError
from textual._time import get_time
from textual._xterm_parser import XTermParser
from textual.drivers.linux_driver import LinuxDriver

if TYPE_CHECKING:
    from textual.app import App

#: How often to look for a timed-out sequence when the parser does not say when (as Textual).
POLL_S = 0.1
#: Read at most this much input at a time (as Textual).
READ_BYTES = 4096


class _WakingEvent(Event):
    """An Event whose ``set`` also writes to a pipe, waking a thread blocked in ``select``."""

    def __init__(self, wake_fd: int) -> None:
        super().__init__()
        self._wake_fd = wake_fd

    def set(self) -> None:
        super().set()
        # Full: the thread is awake already. Closed: so is the driver.
        with contextlib.suppress(OSError):
            os.write(self._wake_fd, b"x")


class QuietLinuxDriver(LinuxDriver):
    """Textual's :class:`LinuxDriver` whose input thread blocks until there is input."""

    def __init__(self, app: App[Any], *, debug: bool = False, mouse: bool = True,
                 size: tuple[int, int] | None = None) -> None:
        super().__init__(app, debug=debug, mouse=mouse, size=size)
        self._wake_read, self._wake_write = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        # LinuxDriver.disable_input sets this, then joins the input thread: the pipe wakes it.
        self.exit_event = _WakingEvent(self._wake_write)

    def __del__(self) -> None:
        # Not in close(): Textual closes a driver on suspend (Ctrl+Z) and starts it again on
        # resume, with a new input thread that needs the pipe.
        for fd in (self._wake_read, self._wake_write):
            with contextlib.suppress(OSError):
                os.close(fd)

    def run_input_thread(self) -> None:
        """Wait for input and dispatch events (LinuxDriver's loop, with a sleeping select)."""
        selector = selectors.SelectSelector()
        fileno = self.fileno
        selector.register(fileno, selectors.EVENT_READ)
        selector.register(self._wake_read, selectors.EVENT_READ)
        parser = XTermParser(self._debug)
        decode = getincrementaldecoder("utf-8")().decode

        def timeout() -> float | None:
            """None (sleep until input) unless the parser waits for the rest of a sequence."""
            if not hasattr(parser, "_timeout_time"):
                return POLL_S  # a Textual that keeps it elsewhere: poll, as Textual does
            deadline: float | None = parser._timeout_time
            if deadline is None:
                return None
            return max(0.0, deadline - get_time())

        def process(ready: list[tuple[selectors.SelectorKey, int]], final: bool = False) -> bool:
            """Feed what is ready to the parser; False once input has ended."""
            for key, mask in ready:
                if key.fd == self._wake_read:
                    with contextlib.suppress(OSError):
                        os.read(self._wake_read, READ_BYTES)
                    continue
                if mask & selectors.EVENT_READ:
                    data = decode(os.read(fileno, READ_BYTES), final=final)
                    if not data:
                        return False  # stdin was a pipe and it ended
                    for event in parser.feed(data):
                        self.process_message(event)
            for event in parser.tick():
                self.process_message(event)
            return True

        try:
            while not self.exit_event.is_set():
                if not process(selector.select(timeout())):
                    break
            selector.unregister(fileno)
            process(selector.select(POLL_S), final=True)
        finally:
            selector.close()
            try:
                for _event in parser.feed(""):
                    pass
            except (EOFError, ParseError):
                pass
