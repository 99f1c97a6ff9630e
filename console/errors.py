"""What the command line and the launcher both need, below both: the user-error type and who is
running this process. (It ends the ``cli`` ↔ ``launch`` import cycle.)"""

from __future__ import annotations

import os
import pwd


class UsageError(Exception):
    """Bad input: exit 2 with this one line."""


def os_user() -> str:
    """The OS account running this process (never a flag or an environment variable)."""
    return pwd.getpwuid(os.geteuid()).pw_name
