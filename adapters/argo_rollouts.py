"""The ``argo-rollouts`` kind: an Argo Rollouts ``Rollout`` through the Kubernetes API (httpx).

What each call does, and why (the argo-rollouts CLI does the same, ``pkg/kubectl-argo-rollouts/
cmd``; the field names are the Rollout CRD's):

* **Reading.** ``GET`` the Rollout and ``LIST`` its ReplicaSets (the selector's labels, owned by
  the Rollout's uid): current step (``status.currentStepIndex`` of ``spec.strategy.canary.steps``),
  the weights the router was given (``status.canary.weights``; without traffic routing, the
  canary's share of available pods, as ``kubectl argo rollouts get`` computes it), the stable and
  canary ReplicaSets (``status.stableRS`` / ``status.currentPodHash`` against each ReplicaSet's
  ``rollouts-pod-template-hash``) and their images. The *version* is the image tag of one
  container (``container``, default the first).
* **set_weight, plan = "steps".** Promote to the step that sets the weight: a merge patch on the
  status subresource, ``{"status": {"currentStepIndex": i, "pauseConditions": null,
  "controllerPause": false}}`` (promote.go's step patch; ``controllerPause: false`` so the
  indefinite pause after the step holds rather than counting as already promoted), with
  ``metadata.resourceVersion`` so a Rollout that moved meanwhile answers 409 and is read again.
  Each ``setWeight`` the console uses must be followed by ``pause: {}``, or Argo would move on by
  itself: such a plan is refused. 100 % is ``promoteFull``; 0 % is ``abort``.
* **set_weight, plan = "warroom".** warroom owns the steps: each weight rewrites
  ``spec.strategy.canary.steps`` to ``[{setWeight: N}, {pause: {}}]`` (a changed step hash makes
  the controller start the steps again, clearing pauses and an abort).
* **Waiting.** A write is accepted long before the controller acts on it: set_weight then reads
  the Rollout until it reports the weight, for at most ``converge_s`` ("did not reach 40 % within
  60 s: it reports 20 % (Paused: CanaryPauseStep)").
* **Abort is not a rollback.** ``abort`` sends traffic back to stable but the spec still names the
  new version: when the Rollout leaves the aborted state it goes back to it (abort.go). The
  rollback is ``undo`` to the ReplicaSet running the target (the stable one): the Rollout's
  ``spec.template`` is set to that ReplicaSet's template (undo.go), here as a merge patch computed
  against the template read, with ``metadata.resourceVersion`` (a 409 reads again and recomputes).
* **Exactly once.** The undo writes the console's idempotency key to the Rollout's
  ``warroom.io/rollback-key`` annotation in the same patch as the template; ``find_rollback``
  reads it back, so a console restarted after a crash knows whether its undo arrived (it is then
  not sent again) or not (sent once, under the same key).
* **The live version** is the stable ReplicaSet's only once the Rollout has *settled* on it (the
  controller observed the spec, the current pod hash is the stable one, not aborted, the pods are
  available). Otherwise it says what the Rollout is doing — "v1.4.3 (aborted: the spec still
  names v1.4.3; stable runs v1.4.2)" — which is never the bare target, so an abort alone, or a
  GitOps tool re-applying the bad version, can never verify a rollback.

Every call has a total deadline (``deadline_s``; set_weight ``deadline_s + converge_s``); 403
(RBAC) and 401 are reported with the API's own message and never retried; a 409 is retried after
reading the Rollout again, at most ``conflict_retries`` times.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from adapters._common import check_context, check_percent, clean_text, kind_of, version_check
from adapters._deadline import Deadline
from adapters.base import (
    AdapterTimeout,
    DeployError,
    PreflightCheck,
    PreflightResult,
    RollbackOperation,
)
from adapters.kube import KubeClient, KubeError, KubeTarget, resolve_target
from adapters.settings import ArgoRolloutsSettings, fill_template

HASH_LABEL = "rollouts-pod-template-hash"
REVISION_ANNOTATION = "rollout.argoproj.io/revision"
#: Where the undo leaves the console's key for the rollback it is.
ROLLBACK_KEY_ANNOTATION = "warroom.io/rollback-key"
_MERGE = "application/merge-patch+json"
#: Seconds between reads while waiting for the controller.
POLL_S = 0.25


# --- what a Rollout says -----------------------------------------------------------------------


def image_version(image: str) -> str:
    """The version an image reference carries: its tag, else its digest, else ``latest``."""
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        return last.split(":", 1)[1]
    return digest or "latest"


@dataclass(frozen=True)
class ReplicaSetView:
    """One ReplicaSet the Rollout owns."""

    name: str
    pod_hash: str
    revision: int
    images: dict[str, str]  # container -> image
    version: str
    replicas: int
    available: int
    template: dict[str, Any] = field(repr=False)


@dataclass(frozen=True)
class RolloutView:
    """The parts of a Rollout (and its ReplicaSets) warroom acts on, read at one moment."""

    name: str
    namespace: str
    uid: str
    resource_version: str
    observed: bool  # the controller has seen the current spec
    strategy: str  # "canary" | "blueGreen" | "none"
    steps: list[dict[str, Any]]
    step_index: int | None
    aborted: bool
    spec_paused: bool
    pause_reasons: list[str]
    phase: str
    message: str
    current_hash: str
    stable_hash: str
    desired_replicas: int
    weights: tuple[int, int] | None  # (canary, stable) from status.canary.weights
    spec_version: str
    spec_images: dict[str, str]
    workload_ref: str
    replicasets: list[ReplicaSetView]
    spec_template: dict[str, Any] = field(repr=False)
    #: The ``warroom.io/rollback-key`` annotation: the key of the last rollback sent here.
    rollback_key: str = ""

    def replicaset(self, pod_hash: str) -> ReplicaSetView | None:
        return next((rs for rs in self.replicasets if pod_hash and rs.pod_hash == pod_hash), None)

    @property
    def stable(self) -> ReplicaSetView | None:
        return self.replicaset(self.stable_hash)

    @property
    def canary(self) -> ReplicaSetView | None:
        if self.current_hash == self.stable_hash:
            return None
        return self.replicaset(self.current_hash)

    @property
    def stable_version(self) -> str:
        stable = self.stable
        return stable.version if stable is not None else ""

    @property
    def fully_promoted(self) -> bool:
        return bool(self.stable_hash) and self.current_hash == self.stable_hash

    def set_weight(self) -> int:
        """The weight the current step asks for (the CLI's ``SetWeight``)."""
        if self.aborted:
            return 0
        if self.step_index is None or self.step_index >= len(self.steps):
            return 100
        for step in reversed(self.steps[: self.step_index + 1]):
            if isinstance(step.get("setWeight"), int):
                return int(step["setWeight"])
        return 0

    def canary_weight(self, new_version: str | None) -> int:
        """The share of traffic on the canary now, 0..100.

        A Rollout with no canary under way serves one version: that is 100 % "canary" when it is
        the new version, 0 % otherwise (after a rollback, or before anything started).
        """
        if self.fully_promoted:
            return 100 if new_version and self.stable_version == new_version else 0
        if self.weights is not None:
            return self.weights[0]
        if self.aborted:
            return 0
        total = sum(rs.available for rs in self.replicasets)
        canary = self.canary
        if canary is not None and total > 0:
            return canary.available * 100 // total
        return self.set_weight()

    def settled(self) -> bool:
        """The Rollout serves its stable ReplicaSet only, and will stay there."""
        stable = self.stable
        return (self.observed and self.fully_promoted and not self.aborted
                and stable is not None and stable.available >= self.desired_replicas
                and self.phase in ("", "Healthy"))

    def live_version(self) -> str:
        """The settled version, or what the Rollout is doing instead (never just a version)."""
        stable = self.stable_version or "no stable ReplicaSet"
        if self.settled():
            return self.stable_version
        if not self.observed:
            why = "the controller has not yet seen the spec"
        elif self.aborted:
            why = f"aborted: the spec still names {self.spec_version}"
        elif not self.fully_promoted:
            why = f"canary at {self.step_text()}"
        else:
            available = self.stable.available if self.stable else 0
            why = f"rolling out: {available}/{self.desired_replicas} available"
            if self.phase not in ("", "Healthy"):
                why += f", {self.phase}"
        return clean_text(f"{self.spec_version} ({why}; stable runs {stable})", 200)

    def step_text(self) -> str:
        if self.step_index is None or not self.steps:
            return "no steps"
        return f"step {self.step_index}/{len(self.steps)}"

    def describe(self) -> str:
        """One line for a preflight or an error: step, weights, versions, phase."""
        parts = [f"Rollout {self.namespace}/{self.name}", self.step_text(),
                 f"canary weight {self.weights[0]}%" if self.weights else f"setWeight "
                 f"{self.set_weight()}%", f"spec {self.spec_version}",
                 f"stable {self.stable_version or '-'}"]
        if self.canary is not None:
            parts.append(f"canary {self.canary.version}")
        status = self.phase or "unknown phase"
        if self.message:
            status += f": {self.message}"
        parts.append(status)
        return clean_text(", ".join(parts), 240)


def _int(value: object, default: int = 0) -> int:
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return default


def _map(node: object, *path: str) -> dict[str, Any]:
    for key in path:
        node = node.get(key) if isinstance(node, Mapping) else None
    return dict(node) if isinstance(node, Mapping) else {}


def _containers(template: Mapping[str, Any]) -> dict[str, str]:
    found: dict[str, str] = {}
    for container in _map(template, "spec").get("containers") or []:
        if isinstance(container, Mapping) and container.get("name"):
            found[str(container["name"])] = str(container.get("image") or "")
    return found


def parse_rollout(rollout: object, replicasets: object, container: str | None) -> RolloutView:
    """A :class:`RolloutView` from the API's JSON; DeployError if it is not a Rollout."""
    if not isinstance(rollout, Mapping) or rollout.get("kind") not in ("Rollout", None):
        raise DeployError(f"expected a Rollout, got {kind_of(rollout)}")
    meta = _map(rollout, "metadata")
    spec = _map(rollout, "spec")
    status = _map(rollout, "status")
    strategy_node = _map(spec, "strategy")
    strategy = "canary" if "canary" in strategy_node else (
        "blueGreen" if "blueGreen" in strategy_node else "none")
    steps = [s for s in (_map(strategy_node, "canary").get("steps") or [])
             if isinstance(s, Mapping)]

    def version_of(images: dict[str, str]) -> str:
        if not images:
            return ""
        image = images.get(container) if container else next(iter(images.values()))
        return image_version(image) if image else ""

    spec_images = _containers(_map(spec, "template"))
    if container and spec_images and container not in spec_images:
        raise DeployError(f"the Rollout has no container {container!r} (containers: "
                          f"{', '.join(spec_images)})")
    uid = str(meta.get("uid") or "")
    views: list[ReplicaSetView] = []
    items = replicasets.get("items") if isinstance(replicasets, Mapping) else None
    for item in items or []:
        if not isinstance(item, Mapping):
            continue
        rs_meta = _map(item, "metadata")
        owners = [o for o in rs_meta.get("ownerReferences") or [] if isinstance(o, Mapping)]
        if uid and not any(o.get("uid") == uid and o.get("controller") for o in owners):
            continue  # not this Rollout's
        template = _map(item, "spec", "template")
        images = _containers(template)
        views.append(ReplicaSetView(
            name=str(rs_meta.get("name") or ""),
            pod_hash=str(_map(rs_meta, "labels").get(HASH_LABEL) or ""),
            revision=_int(_map(rs_meta, "annotations").get(REVISION_ANNOTATION)),
            images=images, version=version_of(images),
            replicas=_int(_map(item, "status").get("replicas")),
            available=_int(_map(item, "status").get("availableReplicas")),
            template=template,
        ))
    weights_node = _map(status, "canary", "weights")
    weights = None
    if weights_node:
        weights = (_int(_map(weights_node, "canary").get("weight")),
                   _int(_map(weights_node, "stable").get("weight")))
    generation = _int(meta.get("generation"), -1)
    observed_text = str(status.get("observedGeneration") or "")
    # v0.10+ records the generation as a number; older controllers a hash (always "observed")
    observed = not observed_text.isdigit() or generation < 0 or int(observed_text) >= generation
    index = status.get("currentStepIndex")
    workload = _map(spec, "workloadRef")
    return RolloutView(
        name=str(meta.get("name") or ""), namespace=str(meta.get("namespace") or ""), uid=uid,
        resource_version=str(meta.get("resourceVersion") or ""), observed=observed,
        strategy=strategy, steps=[dict(s) for s in steps],
        step_index=index if isinstance(index, int) and not isinstance(index, bool) else None,
        aborted=status.get("abort") is True, spec_paused=spec.get("paused") is True,
        pause_reasons=[str(c.get("reason")) for c in status.get("pauseConditions") or []
                       if isinstance(c, Mapping)],
        phase=str(status.get("phase") or ""), message=str(status.get("message") or ""),
        current_hash=str(status.get("currentPodHash") or ""),
        stable_hash=str(status.get("stableRS") or ""),
        desired_replicas=_int(spec.get("replicas"), 1),
        weights=weights, spec_version=version_of(spec_images), spec_images=spec_images,
        workload_ref=f"{workload.get('kind', '?')}/{workload.get('name', '?')}" if workload else "",
        replicasets=sorted(views, key=lambda rs: rs.revision),
        spec_template=_map(spec, "template"),
        rollback_key=str(_map(meta, "annotations").get(ROLLBACK_KEY_ANNOTATION) or ""),
    )


def merge_patch(current: object, wanted: object) -> object:
    """The JSON merge patch (RFC 7386) that turns ``current`` into ``wanted``: changed keys,
    ``null`` for keys that must go (a plain merge would keep a key the bad version added)."""
    if not isinstance(current, Mapping) or not isinstance(wanted, Mapping):
        return copy.deepcopy(wanted)
    patch: dict[str, Any] = {}
    for key, value in wanted.items():
        if key not in current:
            patch[key] = copy.deepcopy(value)
        elif current[key] != value:
            if isinstance(current[key], Mapping) and isinstance(value, Mapping):
                patch[key] = merge_patch(current[key], value)
            else:
                patch[key] = copy.deepcopy(value)
    for key in current:
        if key not in wanted:
            patch[key] = None
    return patch


# --- the API -----------------------------------------------------------------------------------


class _Rollout:
    """One Rollout through the Kubernetes API: read it, patch it. Shared by both adapters."""

    def __init__(self, settings: ArgoRolloutsSettings, context: Mapping[str, str | None],
                 target: KubeTarget | None = None) -> None:
        self.settings = settings
        self.context = check_context(context)
        try:
            self.name = fill_template(settings.rollout, self.context)
        except KeyError as error:
            raise DeployError(f"argo-rollouts: no value for {{{error.args[0]}}} in rollout = "
                              f"{settings.rollout!r}") from None
        self._target = target
        self._client: KubeClient | None = None
        self._lock = threading.Lock()

    def client(self) -> KubeClient:
        with self._lock:
            if self._client is None:
                target = self._target or resolve_target(self.settings)
                self._target = target
                self._client = KubeClient(target, self.settings.timeout_s)
            return self._client

    @property
    def namespace(self) -> str:
        return self.client().target.namespace

    def path(self, subresource: str = "") -> str:
        ns, name = quote(self.namespace, safe=""), quote(self.name, safe="")
        tail = f"/{subresource}" if subresource else ""
        return f"/apis/argoproj.io/v1alpha1/namespaces/{ns}/rollouts/{name}{tail}"

    def where(self, verb: str, subresource: str = "") -> str:
        tail = f"/{subresource}" if subresource else ""
        return f"{verb} rollouts/{self.name}{tail} in {self.namespace}"

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def read(self, deadline: Deadline, action: str) -> RolloutView:
        client = self.client()
        rollout = client.request("GET", self.path(), deadline,
                                 what=f"{action}: {self.where('GET')}")
        selector = _map(rollout, "spec", "selector", "matchLabels")
        params = {"labelSelector": ",".join(f"{k}={v}" for k, v in sorted(selector.items()))} \
            if selector else None
        ns = quote(self.namespace, safe="")
        replicasets = client.request(
            "GET", f"/apis/apps/v1/namespaces/{ns}/replicasets", deadline,
            what=f"{action}: LIST replicasets in {self.namespace}", params=params)
        return parse_rollout(rollout, replicasets, self.settings.container)

    def patch(self, deadline: Deadline, action: str, body: Mapping[str, Any], *,
              status: bool = False) -> None:
        """A merge patch, on the status subresource when ``status`` (the main resource when
        the CRD has no status subresource: 404 there, as the CLI does)."""
        client = self.client()
        if status:
            try:
                client.request("PATCH", self.path("status"), deadline, body=body,
                               content_type=_MERGE, what=f"{action}: "
                               f"{self.where('PATCH', 'status')}")
                return
            except KubeError as error:
                if error.code != 404:
                    raise
        client.request("PATCH", self.path(), deadline, body=body, content_type=_MERGE,
                       what=f"{action}: {self.where('PATCH')}")

    def may(self, deadline: Deadline, verb: str, resource: str, group: str,
            subresource: str = "") -> tuple[bool, str]:
        """Whether this account may ``verb`` the resource here (a SelfSubjectAccessReview)."""
        attributes = {"namespace": self.namespace, "verb": verb, "group": group,
                      "resource": resource, "name": self.name if resource == "rollouts" else ""}
        if subresource:
            attributes["subresource"] = subresource
        body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                "spec": {"resourceAttributes": attributes}}
        answer = self.client().request(
            "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", deadline,
            body=body, what=f"preflight: may {verb} {resource}")
        status = _map(answer, "status")
        reason = str(status.get("reason") or status.get("evaluationError") or "")
        return status.get("allowed") is True, clean_text(reason, 120)


def _conflict(error: Exception) -> bool:
    return isinstance(error, KubeError) and error.code == 409


# --- the adapters ------------------------------------------------------------------------------


class ArgoRolloutsTraffic:
    """A :class:`~adapters.base.TrafficController` on an Argo Rollouts canary."""

    def __init__(self, settings: ArgoRolloutsSettings, context: Mapping[str, str | None],
                 *, target: KubeTarget | None = None, poll_s: float = POLL_S) -> None:
        self.settings = settings
        self.rollout = _Rollout(settings, context, target)
        self.new_version = self.rollout.context.get("version")
        self.poll_s = poll_s

    def status(self) -> RolloutView:
        """The Rollout as it is now (for tests, the preflight and `check-config`)."""
        with Deadline(self.settings.deadline_s) as deadline:
            return self.rollout.read(deadline, "status")

    def current_weight(self) -> int:
        """The canary's share of traffic the Rollout reports now."""
        with Deadline(self.settings.deadline_s) as deadline:
            view = self.rollout.read(deadline, "current_weight")
        self._check_canary(view, "current_weight")
        return view.canary_weight(self.new_version)

    def set_weight(self, percent: int) -> None:
        """Bring the canary to ``percent`` and wait (``converge_s``) until the Rollout says so."""
        check_percent(percent)
        with Deadline(self.settings.deadline_s + self.settings.converge_s) as deadline:
            view = self._write(percent, deadline)
            if self.settings.converge_s > 0:
                self._wait(percent, view, deadline)

    def _write(self, percent: int, deadline: Deadline) -> RolloutView:
        attempts = self.settings.conflict_retries + 1
        for attempt in range(1, attempts + 1):
            view = self.rollout.read(deadline, "set_weight")
            self._check_canary(view, "set_weight")
            try:
                self._patch_for(percent, view, deadline)
            except KubeError as error:
                if _conflict(error) and attempt < attempts:
                    continue  # the Rollout moved under us: read it again, decide again
                if _conflict(error):
                    raise DeployError(f"{error} (still conflicting after {attempts} attempts)"
                                      ) from None
                raise
            return view
        raise AssertionError("unreachable")  # pragma: no cover

    def _patch_for(self, percent: int, view: RolloutView, deadline: Deadline) -> None:
        current = view.canary_weight(self.new_version)
        if percent == 0:
            if view.aborted or not view.spec_version or view.spec_version == view.stable_version:
                return  # aborted already, or going back to stable (a rollback): nothing to abort
            self.rollout.patch(deadline, "abort", {"status": {"abort": True}}, status=True)
            return
        if percent == current and not view.aborted:
            return
        if percent == 100:
            if view.spec_paused:
                self.rollout.patch(deadline, "promote --full", {"spec": {"paused": False}})
            body: dict[str, Any] = {"promoteFull": True}
            if view.aborted:
                body["abort"] = False
            self.rollout.patch(deadline, "promote --full", {"status": body}, status=True)
            return
        if self.settings.plan == "warroom":
            steps = [{"setWeight": percent}, {"pause": {}}]
            spec: dict[str, Any] = {"strategy": {"canary": {"steps": steps}}}
            if view.spec_paused:
                spec["paused"] = False
            self.rollout.patch(deadline, "set_weight", {"spec": spec})
            return
        index = self._step_for(percent, current, view)
        if view.spec_paused:
            self.rollout.patch(deadline, "promote", {"spec": {"paused": False}})
        status: dict[str, Any] = {"currentStepIndex": index, "pauseConditions": None,
                                  "controllerPause": False}
        if view.aborted:
            status["abort"] = False
        self.rollout.patch(deadline, "promote",
                           {"metadata": {"resourceVersion": view.resource_version},
                            "status": status}, status=True)

    def _step_for(self, percent: int, current: int, view: RolloutView) -> int:
        weights = [(i, s["setWeight"]) for i, s in enumerate(view.steps)
                   if isinstance(s.get("setWeight"), int)]
        index = next((i for i, w in weights if w == percent), None)
        if index is None:
            carried = ", ".join(f"{w}%" for _, w in weights) or "none"
            raise DeployError(
                f"set_weight: no step of Rollout {view.name} sets {percent}% (its setWeight "
                f"steps: {carried}); make the console's canary plan match, or use "
                f"plan = \"warroom\"; nothing was changed")
        if percent < current and not view.aborted:
            raise DeployError(
                f"set_weight: promoting can only advance the canary; refusing to go from "
                f"{current}% down to {percent}% (abort or roll back instead); nothing was changed")
        following = view.steps[index + 1] if index + 1 < len(view.steps) else None
        if following is not None and not (isinstance(following.get("pause"), Mapping)
                                          and "duration" not in following["pause"]):
            shown = clean_text(str(following), 60)
            raise DeployError(
                f"set_weight: step {index + 1} of Rollout {view.name} ({shown}) would move the "
                f"canary on by itself after {percent}%; follow each setWeight the console uses "
                f"with pause: {{}} (warroom holds the stages), or use plan = \"warroom\"; "
                f"nothing was changed")
        return index

    def _wait(self, percent: int, before: RolloutView, deadline: Deadline) -> None:
        """Read the Rollout until it reports ``percent``, for ``converge_s`` after the write."""
        converge_s = self.settings.converge_s
        until = time.monotonic() + converge_s
        last = before
        while True:
            try:
                last = self.rollout.read(deadline, "set_weight (waiting)")
            except AdapterTimeout:
                break
            if last.observed and last.canary_weight(self.new_version) == percent:
                return
            left = min(until - time.monotonic(), deadline.remaining())
            if left <= self.poll_s:
                break
            time.sleep(self.poll_s)
        raise DeployError(
            f"set_weight: the patch was accepted, but Rollout {last.name} did not reach "
            f"{percent}% within {converge_s:g} s: it reports "
            f"{last.canary_weight(self.new_version)}% ({last.describe()})")

    def _check_canary(self, view: RolloutView, action: str) -> None:
        if view.strategy != "canary":
            raise DeployError(f"{action}: Rollout {view.name} uses the {view.strategy} strategy; "
                              "the argo-rollouts traffic adapter drives canary steps only")

    def close(self) -> None:
        self.rollout.close()

    def __enter__(self) -> ArgoRolloutsTraffic:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class ArgoRolloutsDeployer:
    """A :class:`~adapters.base.Deployer`: the live version, preflight, and undo to stable."""

    def __init__(self, settings: ArgoRolloutsSettings, context: Mapping[str, str | None],
                 *, target: KubeTarget | None = None) -> None:
        self.settings = settings
        self.rollout = _Rollout(settings, context, target)

    def status(self) -> RolloutView:
        with Deadline(self.settings.deadline_s) as deadline:
            return self.rollout.read(deadline, "status")

    def current_version(self) -> str:
        """The stable version once the Rollout has settled on it; else what it is doing."""
        with Deadline(self.settings.deadline_s) as deadline:
            return self.rollout.read(deadline, "current_version").live_version()

    def preflight_rollback(self, target: str) -> PreflightResult:
        """Read-only: the Rollout, the ReplicaSet to go back to, and the account's rights."""
        checks = [PreflightCheck(
            "target version known", bool(target.strip()),
            f"rollback target {target!r}" if target.strip() else "no rollback target given")]
        try:
            with Deadline(self.settings.deadline_s) as deadline:
                view = self.rollout.read(deadline, "preflight")
                checks.append(PreflightCheck("Rollout readable", True, view.describe()))
                checks.append(self._workload_check(view))
                checks.append(self._target_check(view, target))
                for verb, resource, group, sub, why in (
                        ("patch", "rollouts", "argoproj.io", "", "undo"),
                        ("patch", "rollouts", "argoproj.io", "status", "promote and abort"),
                        ("list", "replicasets", "apps", "", "reading the ReplicaSets")):
                    name = f"may {verb} {resource}{'/' + sub if sub else ''} ({why})"
                    try:
                        allowed, reason = self.rollout.may(deadline, verb, resource, group, sub)
                    except (DeployError, AdapterTimeout) as error:
                        checks.append(PreflightCheck(name, False, f"could not ask: {error}"))
                    else:
                        checks.append(PreflightCheck(
                            name, allowed, "allowed" if allowed else
                            f"RBAC refuses it{': ' + reason if reason else ''}"))
        except (DeployError, AdapterTimeout) as error:
            checks.append(PreflightCheck("Rollout readable", False, str(error)))
        checks.append(version_check(self.current_version))
        ok = all(check.ok for check in checks)
        failed = [c.name for c in checks if not c.ok]
        detail = (f"undo of Rollout {self.rollout.name} to {target} can run" if ok else
                  f"undo of Rollout {self.rollout.name} to {target} cannot run: failed "
                  f"{', '.join(failed)}")
        return PreflightResult(target=target, ok=ok, checks=checks, detail=detail)

    @staticmethod
    def _workload_check(view: RolloutView) -> PreflightCheck:
        if view.workload_ref:
            return PreflightCheck("Rollout has its own pod template", False,
                                  f"spec.workloadRef names {view.workload_ref}: roll that back, "
                                  "not the Rollout (not supported here)")
        return PreflightCheck("Rollout has its own pod template", True, "spec.template")

    def _target_check(self, view: RolloutView, target: str) -> PreflightCheck:
        found = self._target_replicaset(view, target)
        name = f"a ReplicaSet runs {target}"
        if found is None:
            seen = ", ".join(f"{rs.name}={rs.version}" for rs in view.replicasets) or "none"
            return PreflightCheck(name, False, f"no ReplicaSet of {view.name} runs {target} "
                                               f"(ReplicaSets: {seen})")
        role = "the stable one" if found.pod_hash == view.stable_hash else "not the stable one"
        return PreflightCheck(name, True, f"{found.name}, revision {found.revision}, {role}, "
                                          f"{found.available}/{found.replicas} available")

    @staticmethod
    def _target_replicaset(view: RolloutView, target: str) -> ReplicaSetView | None:
        stable = view.stable
        if stable is not None and stable.version == target:
            return stable
        candidates = [rs for rs in view.replicasets if rs.version == target]
        return candidates[-1] if candidates else None  # the newest revision running it

    def rollback(self, target: str, progress: Callable[[str], None] | None = None, *,
                 idempotency_key: str | None = None) -> str:
        """Undo: set the Rollout's pod template to the ReplicaSet that runs ``target``.

        Safe to repeat: a Rollout whose spec already names the target is left alone. The
        ``idempotency_key`` (the console's name for this rollback) is written to the Rollout's
        ``warroom.io/rollback-key`` annotation with the undo, so it can be found there later.
        """
        if not target.strip():
            raise DeployError("rollback: no rollback target given; nothing was sent")
        say = progress or (lambda _line: None)
        attempts = self.settings.conflict_retries + 1
        with Deadline(self.settings.deadline_s) as deadline:
            for attempt in range(1, attempts + 1):
                view = self.rollout.read(deadline, "rollback")
                if view.workload_ref:
                    raise DeployError(f"rollback: Rollout {view.name} takes its pod template from "
                                      f"{view.workload_ref}; roll that back instead; nothing "
                                      "was sent")
                found = self._target_replicaset(view, target)
                if found is None:
                    seen = ", ".join(f"{rs.name}={rs.version}" for rs in view.replicasets)
                    raise DeployError(f"rollback: no ReplicaSet of Rollout {view.name} runs "
                                      f"{target} (ReplicaSets: {seen or 'none'}); nothing was sent")
                wanted = copy.deepcopy(found.template)
                labels = wanted.get("metadata", {}).get("labels")
                if isinstance(labels, dict):
                    labels.pop(HASH_LABEL, None)
                diff = merge_patch(view.spec_template, wanted)
                if not diff and not view.spec_paused:
                    say(f"Rollout {view.name}'s spec already names {target} (revision "
                        f"{found.revision}): nothing to undo")
                    return f"rollout '{view.name}' already at {target}"
                spec: dict[str, Any] = {"template": diff} if diff else {}
                if view.spec_paused:
                    spec["paused"] = False
                metadata: dict[str, Any] = {"resourceVersion": view.resource_version}
                if idempotency_key:
                    metadata["annotations"] = {ROLLBACK_KEY_ANNOTATION: idempotency_key}
                try:
                    self.rollout.patch(deadline, "rollback (undo)",
                                       {"metadata": metadata, "spec": spec})
                except KubeError as error:
                    if _conflict(error) and attempt < attempts:
                        say(f"Rollout {view.name} changed while rolling back (409 Conflict); "
                            "reading it again")
                        continue
                    raise
                say(f"undo: Rollout {view.name}'s pod template set to ReplicaSet {found.name} "
                    f"(revision {found.revision}, {target}); the controller now scales it up")
                if found.pod_hash != view.stable_hash:
                    self._promote_undo(found, deadline, say)
                return f"rollout '{view.name}' undo to revision {found.revision} ({target})"
        raise DeployError(f"rollback: Rollout {self.rollout.name} kept changing (409 Conflict "
                          f"{attempts} times); nothing was changed")

    def _promote_undo(self, found: ReplicaSetView, deadline: Deadline,
                      say: Callable[[str], None]) -> None:
        """The target is not the stable ReplicaSet (the new version was fully promoted): Argo
        would walk the canary steps back to it, pausing at each. A rollback must not wait for
        promotions: once the controller has taken the undo in (it resets promoteFull on a new
        template), promote it fully."""
        while not deadline.expired:
            try:
                view = self.rollout.read(deadline, "rollback (waiting for the controller)")
            except (DeployError, AdapterTimeout):
                break
            if view.observed and view.current_hash == found.pod_hash:
                if view.fully_promoted:
                    return
                self.rollout.patch(deadline, "rollback (promote --full)",
                                   {"status": {"promoteFull": True}}, status=True)
                say(f"the undo goes to a ReplicaSet that was not stable: promoted fully to "
                    f"{found.version}, skipping the canary steps")
                return
            time.sleep(min(POLL_S, max(0.0, deadline.remaining() - 0.1)))
        say(f"the controller has not yet taken in the undo: the Rollout will walk its canary "
            f"steps to {found.version} (pausing at each) unless it is promoted fully")

    def find_rollback(self, idempotency_key: str) -> RollbackOperation:
        """Whether the undo sent under ``idempotency_key`` reached the Rollout: the undo writes
        the key to the ``warroom.io/rollback-key`` annotation in the same patch as the pod
        template, so the annotation carrying it proves the undo was applied (one patch is
        applied whole or not at all). Another key, or none, means this rollback never arrived.
        Raises DeployError / AdapterTimeout when the Rollout cannot be read (the console then
        judges by the live version, and never sends blindly)."""
        with Deadline(self.settings.deadline_s) as deadline:
            view = self.rollout.read(deadline, "find_rollback")
        if view.rollback_key == idempotency_key:
            return RollbackOperation(True, clean_text(
                f"Rollout {view.name} carries {ROLLBACK_KEY_ANNOTATION}={idempotency_key}: the "
                f"undo was applied (spec {view.spec_version}, stable "
                f"{view.stable_version or '-'})", 200))
        holds = (f"{ROLLBACK_KEY_ANNOTATION}={view.rollback_key}" if view.rollback_key
                 else f"no {ROLLBACK_KEY_ANNOTATION} annotation")
        return RollbackOperation(False, clean_text(
            f"Rollout {view.name} has {holds}: the undo under {idempotency_key} never "
            f"arrived", 200))

    def close(self) -> None:
        self.rollout.close()

    def __enter__(self) -> ArgoRolloutsDeployer:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


__all__ = [
    "ArgoRolloutsDeployer",
    "ArgoRolloutsTraffic",
    "ReplicaSetView",
    "RolloutView",
    "image_version",
    "merge_patch",
    "parse_rollout",
]
