"""Where warroom keeps its files by default (platformdirs, in one place).

Directories are created on first use, not at import.
"""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "warroom"


def config_dir() -> Path:
    """The user config dir (not created: warroom only reads it)."""
    from platformdirs import user_config_dir

    return Path(user_config_dir(APP_NAME))


def data_dir(create: bool = True) -> Path:
    """The user data dir, where the default database lives."""
    from platformdirs import user_data_dir

    path = Path(user_data_dir(APP_NAME))
    if create:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def default_db_path(configured: str | None = None) -> Path:
    """`$WARROOM_DB`, then the configured store path, then warroom.db in the user data dir."""
    env = os.environ.get("WARROOM_DB")
    if env:
        return Path(env).expanduser()
    if configured:
        return Path(configured).expanduser()
    return data_dir() / "warroom.db"


def demo_db_path() -> Path:
    """The demo's own database, kept apart from real incidents."""
    return data_dir() / "demo.db"


def demo_integrations_db_path() -> Path:
    """The demo with Flagger's gate and a status page (`make demo-flagger`): its own database,
    so it never resumes the plain demo's incident, nor the other way."""
    return data_dir() / "demo-flagger.db"


def demo_prometheus_db_path() -> Path:
    """The Prometheus demo's own database: kept after it exits (like the simulator demo's), and
    apart from it, so neither resumes the other's incident."""
    return data_dir() / "demo-prometheus.db"
