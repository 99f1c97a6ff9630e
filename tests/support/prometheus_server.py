"""A real Prometheus server for tests: started on 127.0.0.1, scraping given targets, stopped by PID.

Usage (from a fixture, a demo script or the Makefile's helpers)::

    from tests.support.exporter import TestExporter
    from tests.support.prometheus_server import PrometheusServer

    with TestExporter() as exporter, PrometheusServer([exporter.target]) as server:
        exporter.set_track("canary", rps=50, error_ratio=0.02, latency_s=0.1)
        server.wait_for('up{job="test"}', lambda result: bool(result), timeout=15)
        ...  # query server.url

The binary comes from PATH or ``/usr/bin/prometheus`` (``scripts/ensure-prometheus`` installs it).
When it is missing, :func:`require_prometheus` skips the test, or fails it under ``CI=true``
(STACK.md). The first scraped sample is queryable only ≈ 6 s after start (a 5 s discovery
throttle), so wait with :meth:`PrometheusServer.wait_for`, never with a sleep.

This module uses only the standard library (and pytest when the binary is missing), so it works
even when the adapter under test is broken.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tests.support.watchdog import Watchdog, write_owner

#: What a missing server tells the person running the tests.
MISSING_MESSAGE = "prometheus not installed: run scripts/ensure-prometheus (needs root)"
#: How long a started server may take to answer /-/ready (it takes < 1 s here).
START_TIMEOUT_S = 20.0
#: Poll period of every wait in this module.
POLL_S = 0.1


def find_prometheus() -> str | None:
    """The path of a ``prometheus`` binary on PATH or in /usr/bin, or None."""
    found = shutil.which("prometheus")
    if found:
        return found
    if os.access("/usr/bin/prometheus", os.X_OK):
        return "/usr/bin/prometheus"
    return None


def require_prometheus() -> str:
    """The binary's path; otherwise skip the test (or fail it when ``CI`` is ``"true"``)."""
    import pytest

    binary = find_prometheus()
    if binary is not None:
        return binary
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{MISSING_MESSAGE} — CI must run the Prometheus tests", pytrace=False)
    pytest.skip(MISSING_MESSAGE)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def scrape_config(targets: Sequence[str], scrape_interval: str = "1s") -> str:
    """A prometheus.yml scraping ``targets`` (``"127.0.0.1:PORT"``) as job ``test``.

    JSON is valid YAML, so the config is written with :mod:`json` and needs no YAML library.
    """
    scrape_configs: list[dict[str, Any]] = []
    if targets:
        scrape_configs.append(
            {
                "job_name": "test",
                "scrape_interval": scrape_interval,
                "scrape_timeout": scrape_interval,
                "static_configs": [{"targets": list(targets)}],
            }
        )
    config = {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
        "scrape_configs": scrape_configs,
    }
    return json.dumps(config, indent=2) + "\n"


class PrometheusError(RuntimeError):
    """The test server could not start, or stopped answering."""


class PrometheusServer:
    """A Prometheus process on 127.0.0.1 with its own port, config and TSDB in a temp dir.

    ``targets`` are ``"127.0.0.1:PORT"`` strings scraped every ``scrape_interval`` (job ``test``).
    ``binary`` defaults to :func:`require_prometheus` (skip, or fail under CI, when missing).
    ``storage`` may name an existing TSDB directory, e.g. one backfilled with
    ``promtool tsdb create-blocks-from openmetrics``; it is then not deleted on stop.
    """

    def __init__(
        self,
        targets: Sequence[str] = (),
        *,
        scrape_interval: str = "1s",
        binary: str | None = None,
        storage: str | os.PathLike[str] | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.targets = list(targets)
        self.scrape_interval = scrape_interval
        self.binary = binary
        self.extra_args = list(extra_args)
        self._storage = Path(storage) if storage is not None else None
        self._workdir: Path | None = None
        self._log: Any = None
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.started_at = 0.0
        self._watchdog: Watchdog | None = None

    # --- lifecycle -----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL of the HTTP API, e.g. ``http://127.0.0.1:41234``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def workdir(self) -> Path:
        """The temp dir holding ``prometheus.yml``, ``prometheus.log`` and ``data/``."""
        if self._workdir is None:
            raise PrometheusError("the server has not been started")
        return self._workdir

    def start(self, timeout: float = START_TIMEOUT_S) -> PrometheusServer:
        """Start the process and wait (bounded) until ``/-/ready`` answers 200."""
        if self.process is not None:
            raise PrometheusError("already started")
        binary = self.binary or require_prometheus()
        self._workdir = Path(tempfile.mkdtemp(prefix="warroom-prometheus-"))
        # The server dies with this process, however it ends (tests/support/watchdog.py): its
        # command line names the temp dir (its config file is there). A storage dir given by the
        # caller is theirs, and stays.
        write_owner(self._workdir)
        self._watchdog = Watchdog({"marks": [[str(self._workdir), "SIGTERM"]],
                                   "remove": [str(self._workdir)]})
        config = self._workdir / "prometheus.yml"
        config.write_text(scrape_config(self.targets, self.scrape_interval))
        storage = self._storage or (self._workdir / "data")
        # The port is picked before the process binds it; another process may take it in
        # between, so a start that fails that way is tried again on a new port.
        last_error = ""
        for _attempt in range(3):
            self.port = free_port()
            self._log = open(self._workdir / "prometheus.log", "ab")  # noqa: SIM115 (kept open)
            self.started_at = time.monotonic()
            self.process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={storage}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--log.level=warn",
                    *self.extra_args,
                ],
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C in the terminal does not reach it first
            )
            try:
                self._wait_ready(timeout)
                return self
            except PrometheusError as error:
                last_error = str(error)
                self._stop_process()
                if "address already in use" not in last_error:
                    break
        self._cleanup()
        raise PrometheusError(last_error)

    def _wait_ready(self, timeout: float) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise PrometheusError(
                    f"prometheus exited with {self.process.returncode}: {self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as answer:
                    if answer.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(POLL_S)
        raise PrometheusError(
            f"prometheus was not ready within {timeout:g} s: {self.log_tail()}"
        )

    def log_tail(self, lines: int = 5) -> str:
        """The last lines of the server's log, for error messages."""
        if self._workdir is None:
            return ""
        try:
            text = (self._workdir / "prometheus.log").read_text(errors="replace")
        except OSError:
            return ""
        return " | ".join(text.strip().splitlines()[-lines:])

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the process by its PID (SIGTERM, wait, then SIGKILL) and remove the temp dir."""
        self._stop_process(timeout)
        self._cleanup()

    def kill(self) -> None:
        """SIGKILL the process now (Prometheus "killed mid-run"); the temp dir stays until stop."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def _stop_process(self, timeout: float = 10.0) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def _cleanup(self) -> None:
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
        if self._watchdog is not None:
            self._watchdog.release()
            self._watchdog = None

    def __enter__(self) -> PrometheusServer:
        if self.process is None:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- querying (standard library only) ------------------------------------------------------

    def api(self, path: str, params: dict[str, str] | None = None, timeout: float = 5.0) -> Any:
        """GET ``/api/v1/<path>`` and return ``data`` of a successful answer."""
        query = urllib.parse.urlencode(params or {})
        url = f"{self.url}/api/v1/{path}" + (f"?{query}" if query else "")
        try:
            with urllib.request.urlopen(url, timeout=timeout) as answer:
                body = json.load(answer)
        except urllib.error.HTTPError as error:
            raise PrometheusError(f"{path}: HTTP {error.code}: {error.read()[:200]!r}") from None
        if body.get("status") != "success":
            raise PrometheusError(f"{path}: {body.get('error')}")
        return body["data"]

    def instant(self, query: str) -> list[Any]:
        """``data.result`` of an instant query (a list of series, or a bare ``[ts, "v"]``)."""
        return list(self.api("query", {"query": query})["result"])

    def wait_for(
        self,
        query: str,
        predicate: Callable[[list[Any]], bool] = bool,
        timeout: float = 20.0,
    ) -> list[Any]:
        """Poll ``query`` until ``predicate(result)`` holds; return that result.

        ``result`` is Prometheus's ``data.result`` (see :func:`values`). Raises TimeoutError with
        the last result seen when ``timeout`` passes; a stopped server fails at once.
        """
        deadline = time.monotonic() + timeout
        last: object = None
        while True:
            if self.process is None or self.process.poll() is not None:
                raise PrometheusError(f"prometheus is not running: {self.log_tail()}")
            try:
                result = self.instant(query)
                if predicate(result):
                    return result
                last = result
            except (OSError, PrometheusError) as error:
                last = error
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"{query!r} did not satisfy the condition within {timeout:g} s; last: {last!r}"
                )
            time.sleep(POLL_S)

    def wait_for_first_sample(self, query: str = 'up{job="test"} == 1', timeout: float = 20.0
                              ) -> float:
        """Wait until ``query`` returns a series; return the seconds since the server started."""
        self.wait_for(query, bool, timeout)
        return time.monotonic() - self.started_at


def values(result: list[Any]) -> list[float]:
    """The float values of an instant ``data.result`` (vector or bare scalar)."""
    if len(result) == 2 and isinstance(result[0], int | float):
        return [float(result[1])]
    return [float(item["value"][1]) for item in result]


def run_forever(targets: Sequence[str]) -> None:  # pragma: no cover - manual use
    """Start a server for a person to poke at (``python -m tests.support.prometheus_server``)."""
    with PrometheusServer(targets) as server:
        print(server.url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while server.process is not None and server.process.poll() is None:
                time.sleep(1)


if __name__ == "__main__":  # pragma: no cover
    import sys

    run_forever(sys.argv[1:])
