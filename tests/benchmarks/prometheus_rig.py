"""A real Prometheus for the guardrail benchmark, in a process of its own.

    python -m tests.benchmarks.prometheus_rig SERVICE DELAY_S MARKER

Starts the test exporter (the service's conventional metrics, canary and baseline tracks),
Debian's Prometheus scraping it every second, and a delaying proxy in front of that Prometheus
that holds only the requests containing MARKER for DELAY_S seconds. When the error ratio can be
computed on both tracks it prints one JSON line, ``{"url": proxy URL, "direct": server URL}``, and
serves until its standard input closes. Everything runs here rather than in the benchmark's
process, so the proxy's and exporter's threads never compete with the engine for one GIL.
"""

from __future__ import annotations

import json
import sys

from tests.support.delay_proxy import DelayProxy
from tests.support.exporter import TestExporter
from tests.support.prometheus_server import PrometheusServer, find_prometheus

ERROR_RATIO = ('sum(rate(http_requests_total{{service="{service}",track="{track}",code=~"5.."}}'
               '[30s])) / sum(rate(http_requests_total{{service="{service}",track="{track}"}}'
               '[30s]))')


def main(service: str, delay_s: float, marker: str) -> int:
    binary = find_prometheus()
    if binary is None:
        print(json.dumps({"error": "prometheus is not installed (scripts/ensure-prometheus)"}),
              flush=True)
        return 0
    with TestExporter(service) as exporter:
        exporter.set_track("canary", rps=40, error_ratio=0.004, latency_s=0.09)
        exporter.set_track("baseline", rps=160, error_ratio=0.003, latency_s=0.08)
        with PrometheusServer([exporter.target], binary=binary) as server:
            for track in ("canary", "baseline"):
                server.wait_for(ERROR_RATIO.format(service=service, track=track), bool, 40)
            with DelayProxy(("127.0.0.1", server.port), delay=delay_s,
                            only=marker.encode()) as proxy:
                print(json.dumps({"url": proxy.url, "direct": server.url}), flush=True)
                sys.stdin.read()  # serve until the benchmark closes our stdin
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], float(sys.argv[2]), sys.argv[3]))
