"""Builds the adapters an incident runs with from the config (sim, prometheus, http, command,
argo-rollouts).

Each adapter module is imported only when its kind is configured, so a console on the simulator
never pays for httpx or prometheus-api-client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from adapters.base import Clock
from adapters.settings import SimDeploySettings, SimMetricsSettings
from console.config import Config, environment_problems, register_secrets
from console.engine import Adapters

if TYPE_CHECKING:
    from adapters.sim import SimulatedService
    from console.state import IncidentState


def adapter_context(state: IncidentState) -> dict[str, str]:
    """Placeholder values every http/command template may use."""
    return {
        "service": state.service,
        "version": state.to_version,
        "target": state.rollback_target or state.from_version,
        "incident": state.id_text,
    }


def simulated_service(config: Config, state: IncidentState, clock: Clock,
                       **overrides: Any) -> SimulatedService:
    from adapters.sim import SimulatedService

    metrics = config.metrics if isinstance(config.metrics, SimMetricsSettings) \
        else SimMetricsSettings()
    deploy = config.deploy if isinstance(config.deploy, SimDeploySettings) \
        else SimDeploySettings()
    values: dict[str, Any] = {"service": state.service, "stable_version": state.from_version,
                              "canary_version": state.to_version}
    values.update(overrides)
    return SimulatedService.from_settings(metrics, deploy, clock, **values)


def build_adapters(config: Config, state: IncidentState, clock: Clock,
                   sim_service: SimulatedService | None = None,
                   serve_port: int | None = None) -> Adapters:
    """The metrics source, traffic controller and deployer the config names.

    ``serve_port`` exports the simulated service's conventional metrics over HTTP (for a real
    Prometheus to scrape); ``[metrics] serve_port`` does the same when metrics are simulated.

    Raises :class:`~console.config.ConfigError` when this host lacks what a configured adapter
    needs (an unset secret variable, a missing CA file): a console must not open on adapters
    that will fail at the first advance, nor quietly on anything else.
    """
    problems = environment_problems(config, store=False)
    if problems:
        raise problems[0]
    register_secrets(config)
    needs_sim = "sim" in (config.metrics.kind, config.traffic.kind, config.deploy.kind)
    if needs_sim and sim_service is None:
        sim_service = simulated_service(config, state, clock)
    context = adapter_context(state)
    stoppers: list[Any] = []

    if serve_port is None and config.metrics.kind == "sim":
        serve_port = config.metrics.serve_port
    if serve_port is not None and sim_service is not None:
        from adapters.sim import serve_metrics

        stoppers.append(serve_metrics(sim_service, serve_port))

    if config.metrics.kind == "sim":
        from adapters.sim import SimMetricsSource

        assert sim_service is not None
        metrics: Any = SimMetricsSource(sim_service)
    else:
        from adapters.prometheus import PrometheusMetrics

        # A canary, a baseline and an evidence query per guardrail, all of a poll at once.
        metrics = PrometheusMetrics(config.metrics, connections=3 * len(config.guardrails) + 2)

    traffic: Any
    if config.traffic.kind == "sim":
        from adapters.sim import SimTrafficController

        assert sim_service is not None
        traffic = SimTrafficController(sim_service)
    elif config.traffic.kind == "http":
        from adapters.http import HttpTraffic

        traffic = HttpTraffic(config.traffic, context)
    elif config.traffic.kind == "argo-rollouts":
        from adapters.argo_rollouts import ArgoRolloutsTraffic

        traffic = ArgoRolloutsTraffic(config.traffic, context)
    else:
        from adapters.command import CommandTraffic

        traffic = CommandTraffic(config.traffic, context)

    deployer: Any
    if config.deploy.kind == "sim":
        from adapters.sim import SimDeployer

        assert sim_service is not None
        deployer = SimDeployer(sim_service)
    elif config.deploy.kind == "http":
        from adapters.http import HttpDeployer

        deployer = HttpDeployer(config.deploy, context)
    elif config.deploy.kind == "argo-rollouts":
        from adapters.argo_rollouts import ArgoRolloutsDeployer

        deployer = ArgoRolloutsDeployer(config.deploy, context)
    else:
        from adapters.command import CommandDeployer

        deployer = CommandDeployer(config.deploy, context)

    notifier: Any = None
    notify = config.notify
    if notify.webhook_url_env:
        from adapters.chat import ChatWebhook

        notifier = ChatWebhook(notify.webhook_url_env, timeout_s=notify.timeout_s,
                               deadline_s=notify.deadline_s)
    targets: list[Any] = []
    if notify.urls_env:
        from adapters.chat import AppriseNotifier

        targets = [AppriseNotifier(name, timeout_s=notify.timeout_s,
                                   deadline_s=notify.deadline_s) for name in notify.urls_env]

    statuspage: Any = None
    if config.statuspage is not None:
        from adapters.statuspage import StatuspageClient

        page = config.statuspage
        statuspage = StatuspageClient(api_url=page.api_url, page_id=page.page_id,
                                      api_key_env=page.api_key_env, timeout_s=page.timeout_s,
                                      deadline_s=page.deadline_s,
                                      deliver_notifications=page.deliver_notifications,
                                      ca_file=page.ca_file)

    def close() -> None:
        for stopper in stoppers:
            stopper.stop()
        for adapter in (metrics, traffic, deployer, notifier, *targets):
            closer = getattr(adapter, "close", None)
            if callable(closer):
                closer()

    return Adapters(metrics=metrics, traffic=traffic, deployer=deployer, notifier=notifier,
                    notifiers=targets, statuspage=statuspage, on_close=close)
