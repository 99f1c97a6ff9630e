"""A fake Kubernetes API server on 127.0.0.1 serving Argo Rollouts, for the argo-rollouts adapters.

:class:`FakeKube` runs a :class:`http.server.ThreadingHTTPServer` on a free port. It serves one
Rollout and its ReplicaSets in the shapes a real cluster returns (the objects are built after the
argo-rollouts CLI's recorded test data, ``pkg/kubectl-argo-rollouts/info/testdata/canary``, and
the field names of the Rollout CRD), answers merge patches on the Rollout and its ``status``
subresource, LISTs ReplicaSets by label selector, answers SelfSubjectAccessReviews, and refuses
the way an API server does, with a ``Status`` body: 401 without the bearer token, 403 for what
RBAC forbids (:attr:`FakeKube.forbidden`), 409 when a patch carries a stale
``metadata.resourceVersion`` or while :attr:`FakeKube.conflicts` lasts.

A small model of the Argo Rollouts controller (:meth:`FakeKube.reconcile`) acts on the spec and
status as the real one does: a changed pod template or step list restarts the steps (clearing
pauses and an abort); ``setWeight`` sets ``status.canary.weights``; ``pause: {}`` adds a
``CanaryPauseStep`` pause condition and holds until it is cleared; the end of the steps (or
``promoteFull``) makes the canary stable; ``abort`` sends the weight back to stable; a template
equal to the stable ReplicaSet's is a fast rollback to it. The controller reconciles at the
``lag_reads``-th read after a write, so a client sees the old status first, as it would; with
``controller_running = False`` it never reconciles (a Rollout that never converges), and with
``pods_fail = True`` new pods never become available (ProgressDeadlineExceeded).
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

HASH_LABEL = "rollouts-pod-template-hash"
REVISION = "rollout.argoproj.io/revision"
TOKEN = "Zq9xV2rLm7wPk4tJ"  # no piece of it is a word another test prints
NOW = "2026-12-02T17:30:00Z"


def pod_hash(template: dict[str, Any]) -> str:
    """A stable hash of a pod template without its hash label (the controller's is FNV; any
    deterministic hash will do here)."""
    clean = copy.deepcopy(template)
    clean.get("metadata", {}).get("labels", {}).pop(HASH_LABEL, None)
    digest = hashlib.sha256(json.dumps(clean, sort_keys=True).encode()).hexdigest()
    return digest[:10]


def template(app: str, image: str, *, extra_env: bool = False) -> dict[str, Any]:
    """A pod template shaped like the recorded canary-demo's."""
    container: dict[str, Any] = {
        "image": image, "imagePullPolicy": "Always", "name": app,
        "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
        "resources": {"requests": {"cpu": "5m", "memory": "32Mi"}},
    }
    if extra_env:
        container["env"] = [{"name": "FEATURE_X", "value": "on"}]
    return {"metadata": {"creationTimestamp": None, "labels": {"app": app}},
            "spec": {"containers": [container]}}


def default_steps() -> list[dict[str, Any]]:
    """A plan the console drives: each weight followed by an indefinite pause."""
    steps: list[dict[str, Any]] = []
    for weight in (1, 10, 50):
        steps += [{"setWeight": weight}, {"pause": {}}]
    return steps


@dataclass
class Seen:
    """One request, as the server saw it."""

    method: str
    path: str
    query: dict[str, list[str]]
    content_type: str
    body: Any


@dataclass
class FakeKube:
    """The API server's state and knobs; ``start()`` it or use it as a context manager."""

    name: str = "payments"
    namespace: str = "payments"
    stable_image: str = "registry.example/payments:v1.4.2"
    replicas: int = 5
    steps: list[dict[str, Any]] = field(default_factory=default_steps)
    traffic_routing: bool = True
    token: str = TOKEN
    #: ``(verb, resource)`` pairs RBAC refuses, e.g. ``("patch", "rollouts/status")``.
    forbidden: set[tuple[str, str]] = field(default_factory=set)
    #: The next N patches answer 409 Conflict (contention on the object).
    conflicts: int = 0
    #: The controller reconciles at the ``lag_reads``-th GET of the Rollout after a write.
    lag_reads: int = 1
    controller_running: bool = True
    pods_fail: bool = False
    #: A status subresource on the CRD (old CRDs have none: 404, and the CLI patches the object).
    status_subresource: bool = True
    #: ``(certfile, keyfile)``: serve HTTPS with this certificate.
    tls: tuple[str, str] | None = None
    seen: list[Seen] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def __post_init__(self) -> None:
        self.uid = "b350ba76-f6ed-11e9-a15b-42010aa80033"
        self.generation = 1
        self.resource_version = 28253567
        self.replicasets: dict[str, dict[str, Any]] = {}
        self._pending_reads: int | None = None
        spec_template = template(self.name, self.stable_image)
        stable_hash = pod_hash(spec_template)
        self.rollout: dict[str, Any] = {
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {
                "annotations": {REVISION: "1"}, "creationTimestamp": "2026-10-25T06:07:18Z",
                "generation": self.generation, "labels": {"app": self.name},
                "name": self.name, "namespace": self.namespace,
                "resourceVersion": str(self.resource_version), "uid": self.uid,
            },
            "spec": {
                "replicas": self.replicas, "revisionHistoryLimit": 3,
                "selector": {"matchLabels": {"app": self.name}},
                "strategy": {"canary": self._canary_strategy()},
                "template": spec_template,
            },
            "status": {
                "HPAReplicas": self.replicas, "availableReplicas": self.replicas,
                "blueGreen": {}, "canary": {}, "stableRS": stable_hash,
                "currentPodHash": stable_hash, "currentStepHash": self._steps_hash(),
                "currentStepIndex": len(self.steps), "observedGeneration": "1",
                "phase": "Healthy", "readyReplicas": self.replicas, "replicas": self.replicas,
                "selector": f"app={self.name}", "updatedReplicas": self.replicas,
                "conditions": [{"lastTransitionTime": NOW, "lastUpdateTime": NOW,
                                "message": "Rollout has minimum availability",
                                "reason": "AvailableReason", "status": "True",
                                "type": "Available"}],
            },
        }
        self._replicaset_for(spec_template, stable_hash)
        self.reconcile()

    def _canary_strategy(self) -> dict[str, Any]:
        strategy: dict[str, Any] = {"canaryService": f"{self.name}-canary",
                                    "stableService": f"{self.name}-stable",
                                    "steps": copy.deepcopy(self.steps)}
        if self.traffic_routing:
            strategy["trafficRouting"] = {"smi": {"rootService": self.name,
                                                  "trafficSplitName": f"{self.name}-split"}}
        return strategy

    def _steps_hash(self) -> str:
        steps = self.rollout["spec"]["strategy"]["canary"].get("steps", []) \
            if hasattr(self, "rollout") else self.steps
        return hashlib.sha256(json.dumps(steps, sort_keys=True).encode()).hexdigest()[:8]

    # --- what tests do to the cluster -----------------------------------------------------------

    def deploy(self, image: str, *, observed: bool = True, **template_options: Any) -> None:
        """Someone (CI, a GitOps tool) sets the Rollout's image: a new canary starts. With
        ``observed`` the controller has already acted on it (it happened a while ago)."""
        with self.lock:
            self.rollout["spec"]["template"] = template(self.name, image, **template_options)
            self._spec_changed()
            if observed and self.controller_running:
                self._pending_reads = None
                self.reconcile()

    def get(self) -> dict[str, Any]:
        with self.lock:
            return copy.deepcopy(self.rollout)

    def patches(self) -> list[Seen]:
        return [s for s in self.seen if s.method == "PATCH"]

    def _spec_changed(self) -> None:
        self.generation += 1
        self.rollout["metadata"]["generation"] = self.generation
        self._bump()
        self._pending_reads = self.lag_reads

    def _bump(self) -> None:
        self.resource_version += 1
        self.rollout["metadata"]["resourceVersion"] = str(self.resource_version)

    # --- the controller --------------------------------------------------------------------------

    def _replicaset_for(self, spec_template: dict[str, Any], h: str) -> dict[str, Any]:
        name = f"{self.name}-{h}"
        revision = 1 + max((int(rs["metadata"]["annotations"][REVISION])
                            for rs in self.replicasets.values()), default=0)
        rs = self.replicasets.get(name)
        if rs is None:
            rs_template = copy.deepcopy(spec_template)
            rs_template["metadata"].setdefault("labels", {})[HASH_LABEL] = h
            rs = {
                "apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {
                    "annotations": {REVISION: str(revision),
                                    "rollout.argoproj.io/desired-replicas": str(self.replicas)},
                    "labels": {"app": self.name, HASH_LABEL: h}, "name": name,
                    "namespace": self.namespace,
                    "ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1",
                                         "blockOwnerDeletion": True, "controller": True,
                                         "kind": "Rollout", "name": self.name, "uid": self.uid}],
                },
                "spec": {"replicas": 0, "selector": {"matchLabels": {"app": self.name,
                                                                     HASH_LABEL: h}},
                         "template": rs_template},
                "status": {"replicas": 0, "availableReplicas": 0, "readyReplicas": 0},
            }
            self.replicasets[name] = rs
        return rs

    def _scale(self, h: str, count: int) -> None:
        for rs in self.replicasets.values():
            if rs["metadata"]["labels"][HASH_LABEL] == h:
                available = 0 if (self.pods_fail and h != self.rollout["status"]["stableRS"]) \
                    else count
                rs["spec"]["replicas"] = count
                rs["status"].update(replicas=count, availableReplicas=available,
                                    readyReplicas=available)

    def reconcile(self) -> None:
        """One pass of the (modelled) Argo Rollouts controller."""
        with self.lock:
            ro = self.rollout
            spec, status = ro["spec"], ro["status"]
            steps: list[dict[str, Any]] = spec["strategy"]["canary"].get("steps", [])
            h = pod_hash(spec["template"])
            self._replicaset_for(spec["template"], h)
            steps_hash = self._steps_hash()
            if status.get("currentPodHash") != h or status.get("currentStepHash") != steps_hash:
                for key in ("abort", "abortedAt", "promoteFull", "controllerPause"):
                    status.pop(key, None)
                status.pop("pauseConditions", None)
                status["currentStepIndex"] = 0 if steps else None
                status["currentPodHash"], status["currentStepHash"] = h, steps_hash
            stable = status.get("stableRS") or h
            status["stableRS"] = stable
            if h != stable and status.get("promoteFull"):
                stable = status["stableRS"] = h
                status.pop("promoteFull", None)
            weight = 0
            if h == stable:
                status["currentStepIndex"] = len(steps) if steps else None
                status.pop("pauseConditions", None)
                status.pop("controllerPause", None)
                status.pop("abort", None)
            elif status.get("abort"):
                status.pop("pauseConditions", None)
                status["abortedAt"] = NOW
            else:
                index = status.get("currentStepIndex") or 0
                while index < len(steps):
                    step = steps[index]
                    if "setWeight" in step:
                        index += 1
                        continue
                    if "pause" in step and "duration" not in (step["pause"] or {}):
                        if status.get("pauseConditions"):
                            break
                        if status.get("controllerPause"):  # the pause was cleared: go on
                            status.pop("controllerPause", None)
                            index += 1
                            continue
                        status["pauseConditions"] = [{"reason": "CanaryPauseStep",
                                                      "startTime": NOW}]
                        status["controllerPause"] = True
                        break
                    index += 1  # a timed pause, an analysis: time passes at once here
                if index >= len(steps):
                    stable = status["stableRS"] = h  # the steps are done: the canary is stable
                    status["currentStepIndex"] = len(steps)
                    status.pop("pauseConditions", None)
                    status.pop("controllerPause", None)
                else:
                    status["currentStepIndex"] = index
                    weight = next((int(s["setWeight"]) for s in reversed(steps[: index + 1])
                                   if "setWeight" in s), 0)
            canary_available = 0
            if h != stable:
                canary_count = 0 if status.get("abort") else max(
                    1, -(-self.replicas * weight // 100)) if weight else 0
                self._scale(h, canary_count)
                canary_available = self._available(h)
                if self.pods_fail and weight and not status.get("abort"):
                    weight = 0  # the router is not moved to pods that never became available
            for rs in self.replicasets.values():
                rs_hash = rs["metadata"]["labels"][HASH_LABEL]
                if rs_hash == stable:
                    self._scale(rs_hash, self.replicas)
                elif rs_hash != h:
                    self._scale(rs_hash, 0)
            if self.traffic_routing:
                status["canary"] = {"weights": {
                    "canary": {"podTemplateHash": h, "serviceName": f"{self.name}-canary",
                               "weight": weight},
                    "stable": {"podTemplateHash": stable, "serviceName": f"{self.name}-stable",
                               "weight": 100 - weight}}}
            else:
                status["canary"] = {}
            if h == stable:
                status["phase"], status["message"] = "Healthy", ""
            elif status.get("abort"):
                revision = self._revision(h)
                status["phase"] = "Degraded"
                status["message"] = f"RolloutAborted: Rollout aborted update to revision {revision}"
            elif self.pods_fail:
                status["phase"] = "Degraded"
                status["message"] = (f"ProgressDeadlineExceeded: ReplicaSet \"{self.name}-{h}\" "
                                     "has timed out progressing.")
            elif status.get("pauseConditions"):
                status["phase"], status["message"] = "Paused", "CanaryPauseStep"
            else:
                status["phase"] = "Progressing"
                status["message"] = "more replicas need to be updated"
            stable_available = self._available(stable)
            status["availableReplicas"] = stable_available + canary_available
            status["updatedReplicas"] = self.replicas if h == stable else canary_available
            status["observedGeneration"] = str(self.generation)
            annotations = ro["metadata"].setdefault("annotations", {})
            annotations[REVISION] = str(self._revision(h))
            self._bump()

    def _available(self, h: str) -> int:
        return sum(rs["status"]["availableReplicas"] for rs in self.replicasets.values()
                   if rs["metadata"]["labels"][HASH_LABEL] == h)

    def _revision(self, h: str) -> int:
        for rs in self.replicasets.values():
            if rs["metadata"]["labels"][HASH_LABEL] == h:
                return int(rs["metadata"]["annotations"][REVISION])
        return 0

    def _after_read(self) -> None:
        if self._pending_reads is None or not self.controller_running:
            return
        self._pending_reads -= 1
        if self._pending_reads <= 0:
            self._pending_reads = None
            self.reconcile()

    # --- HTTP ----------------------------------------------------------------------------------

    def start(self) -> FakeKube:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, code: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode(errors="replace")
                parts = urlsplit(self.path)
                seen = Seen(self.command, parts.path, parse_qs(parts.query),
                            self.headers.get("Content-Type", ""), body)
                with fake.lock:
                    fake.seen.append(seen)
                    code, answer = fake.route(seen, self.headers.get("Authorization", ""))
                self._answer(code, answer)

            do_GET = do_PATCH = do_POST = do_PUT = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if self.tls is not None:
            import ssl

            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self.tls)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True, name="fake-kube")
        self.thread.start()
        return self

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> FakeKube:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # --- the API -------------------------------------------------------------------------------

    def status_body(self, code: int, reason: str, message: str,
                    details: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": message, "reason": reason, "details": details or {}, "code": code}

    def _forbidden(self, verb: str, resource: str) -> tuple[int, dict[str, Any]]:
        group = "argoproj.io" if resource.startswith("rollouts") else "apps"
        message = (f"{resource.split('/')[0]}.{group} \"{self.name}\" is forbidden: User "
                   f"\"system:serviceaccount:{self.namespace}:warroom\" cannot {verb} resource "
                   f"\"{resource}\" in API group \"{group}\" in the namespace \"{self.namespace}\"")
        return 403, self.status_body(403, "Forbidden", message,
                                     {"name": self.name, "group": group, "kind": resource})

    def route(self, seen: Seen, authorization: str) -> tuple[int, Any]:
        if authorization != f"Bearer {self.token}":
            return 401, self.status_body(401, "Unauthorized", "Unauthorized")
        base = f"/apis/argoproj.io/v1alpha1/namespaces/{self.namespace}/rollouts/{self.name}"
        if seen.path == "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews":
            attributes = seen.body["spec"]["resourceAttributes"]
            resource = attributes["resource"] + (f"/{attributes['subresource']}"
                                                 if attributes.get("subresource") else "")
            allowed = (attributes["verb"], resource) not in self.forbidden
            answer = copy.deepcopy(seen.body)
            answer["status"] = {"allowed": allowed}
            return 201, answer
        if seen.path == f"/apis/apps/v1/namespaces/{self.namespace}/replicasets":
            if ("list", "replicasets") in self.forbidden:
                return self._forbidden("list", "replicasets")
            selector = (seen.query.get("labelSelector") or [""])[0]
            wanted = dict(p.split("=", 1) for p in selector.split(",") if "=" in p)
            items = [copy.deepcopy(rs) for rs in self.replicasets.values()
                     if all(rs["metadata"]["labels"].get(k) == v for k, v in wanted.items())]
            return 200, {"apiVersion": "apps/v1", "kind": "ReplicaSetList",
                         "metadata": {"resourceVersion": str(self.resource_version)},
                         "items": items}
        if seen.path in (base, f"{base}/status"):
            subresource = "rollouts/status" if seen.path.endswith("/status") else "rollouts"
            if seen.method == "GET":
                if ("get", "rollouts") in self.forbidden:
                    return self._forbidden("get", "rollouts")
                answer = copy.deepcopy(self.rollout)
                self._after_read()
                return 200, answer
            if seen.method == "PATCH":
                return self._patch(seen, subresource)
            return 405, self.status_body(405, "MethodNotAllowed", "method not allowed")
        if seen.path.startswith("/apis/argoproj.io/"):
            name = seen.path.rstrip("/").split("/")[-1]
            return 404, self.status_body(404, "NotFound",
                                         f"rollouts.argoproj.io \"{name}\" not found")
        return 404, self.status_body(404, "NotFound", "the server could not find the requested "
                                                      "resource")

    def _patch(self, seen: Seen, subresource: str) -> tuple[int, Any]:
        if subresource == "rollouts/status" and not self.status_subresource:
            return 404, self.status_body(404, "NotFound", "the server could not find the "
                                                          "requested resource")
        if ("patch", subresource) in self.forbidden:
            return self._forbidden("patch", subresource)
        if seen.content_type != "application/merge-patch+json":
            return 415, self.status_body(415, "UnsupportedMediaType",
                                         f"the body of the request was in an unknown format - "
                                         f"accepted media types include: application/json-patch+"
                                         f"json, application/merge-patch+json (got "
                                         f"{seen.content_type})")
        conflict = (f"Operation cannot be fulfilled on rollouts.argoproj.io \"{self.name}\": the "
                    "object has been modified; please apply your changes to the latest version "
                    "and try again")
        if self.conflicts > 0:
            self.conflicts -= 1
            return 409, self.status_body(409, "Conflict", conflict,
                                         {"name": self.name, "group": "argoproj.io",
                                          "kind": "rollouts"})
        body = seen.body if isinstance(seen.body, dict) else {}
        wanted_version = (body.get("metadata") or {}).get("resourceVersion")
        if wanted_version is not None and wanted_version != str(self.resource_version):
            return 409, self.status_body(409, "Conflict", conflict)
        before_spec = copy.deepcopy(self.rollout["spec"])
        patch = copy.deepcopy(body)
        metadata = patch.pop("metadata", None) or {}
        for key in ("annotations", "labels"):  # the rest of metadata is the server's
            if isinstance(metadata.get(key), dict):
                _merge(self.rollout["metadata"].setdefault(key, {}), metadata[key])
        if subresource == "rollouts/status":
            patch = {"status": patch.get("status", {})}  # the status subresource ignores spec
        else:
            if self.status_subresource:
                patch.pop("status", None)  # the main resource ignores status
        _merge(self.rollout, patch)
        if self.rollout["spec"] != before_spec:
            self._spec_changed()
        else:
            self._bump()
            self._pending_reads = self.lag_reads
        return 200, copy.deepcopy(self.rollout)


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    """RFC 7386: null deletes, objects merge, anything else replaces."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)
