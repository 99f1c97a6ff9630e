"""The ``command`` kind of traffic controller and deployer: kubectl, helm, kubectl-argo-rollouts.

Each action is an argv template (a list, never a shell string) run with ``shell=False``. Before
anything runs, every value substituted into the argv is checked against ``value_pattern`` (full
match) and against rules no pattern may loosen: no whitespace or control characters, no leading
``-`` (it would be read as an option, e.g. ``--kubeconfig=/x``) and no ``..`` path segment. A
refused value raises :class:`~adapters.base.DeployError` ("refused value for {target}: ...") and
nothing runs. Values come from the incident (``--to-version`` typed by a person under pressure, or
pasted from a chat): they are data, and must never become options, globs or shell syntax.

A command gets the parent environment plus ``env`` from the settings (secrets read from the named
variables at call time), runs in its own process group, and is killed as a group (SIGTERM, then
SIGKILL) when its ``timeout_s`` passes: :class:`~adapters.base.AdapterTimeout` ("no complete answer
within N s"). ``timeout_s`` is a total deadline, wall-clock from start to exit: a command that
prints forever, or trickles its answer, is cut there just the same. What it prints is bounded too:
at most :data:`MAX_OUTPUT_CHARS` of stdout are kept (more fails the call: a partial answer is not
parsed), the tail of stderr, and at most :data:`MAX_PROGRESS_LINES` progress lines per call (the
rest are counted, not recorded one by one). A non-zero exit is a
DeployError with the exit code and the last line(s) of stderr; output that does not match
``result_regex`` / ``result_json_path`` is a DeployError saying what was expected. Secret values are
scrubbed from every message and progress line.

``result_regex`` is searched in stdout with ``re.MULTILINE`` (``^``/``$`` match at line ends); the
named group ``value`` is the answer, else group 1, else the whole match. ``result_json_path`` is a
dotted path into stdout parsed as JSON (``items.0.status``). Without either, the answer is stdout,
stripped.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import shlex
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO, TypeVar

from adapters._common import (
    PathNotFound,
    check_context,
    check_percent,
    clean_text,
    describe_preflight_value,
    excerpt,
    lookup_path,
    parse_version,
    parse_weight,
    resolve_secret,
    scrub,
    should_advance,
    version_check,
)
from adapters.base import AdapterTimeout, DeployError, PreflightCheck, PreflightResult
from adapters.settings import (
    CommandAction,
    CommandSettings,
    SecretFromEnv,
    fill_template,
    template_names,
)

__all__ = ["CommandDeployer", "CommandTraffic", "check_value"]

# How long a command gets to exit after SIGTERM before the group is sent SIGKILL.
_TERM_GRACE_S = 1.0
#: The most stdout kept from one command; more is a failure ("printed more than ...").
MAX_OUTPUT_CHARS = 4 * 1024 * 1024
#: The most stderr kept (its tail: the last lines say why a command failed).
_MAX_STDERR_CHARS = 64 * 1024
#: Progress lines passed on per call; a command that prints thousands must not flood the timeline.
MAX_PROGRESS_LINES = 50
# One read of a pipe: a "line" without a newline is cut into pieces of this size.
_READ_CHARS = 64 * 1024
_PROGRESS_LINE_CHARS = 300
_ARGV_SHOWN_CHARS = 160
_DOT_SEGMENT = re.compile(r"(^|/)\.\.(/|$)")
_SPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")

_T = TypeVar("_T")


def check_value(name: str, value: str, pattern: str) -> None:
    """Refuse a value that must not reach an argv; DeployError says which rule it broke."""
    reason = None
    if not value:
        reason = "is empty"
    elif _SPACE_OR_CONTROL.search(value):
        reason = "contains whitespace or control characters"
    elif value.startswith("-"):
        reason = "starts with '-' and would be read as an option"
    elif _DOT_SEGMENT.search(value):
        reason = "contains a '..' path segment"
    elif re.fullmatch(pattern, value) is None:
        # fullmatch, not match: with match, '$' also matches before a trailing newline
        reason = f"does not match value_pattern {pattern}"
    if reason is not None:
        shown = value if len(value) <= 60 else value[:57] + "..."
        raise DeployError(f"refused value for {{{name}}}: {shown!r} {reason}; nothing was run")


@dataclass(frozen=True)
class _Output:
    """A finished command: what it printed, and the argv to show in messages."""

    where: str  # "action: `argv`"
    stdout: str
    secrets: tuple[str, ...]

    def fail(self, problem: str, text: str | None = None) -> DeployError:
        shown = excerpt(self.stdout if text is None else text, self.secrets)
        return DeployError(f"{self.where} {problem}: {shown or '(no output)'}")


class _CommandActions:
    """Runs the configured commands of one ``[traffic]`` or ``[deploy]`` section."""

    def __init__(self, settings: CommandSettings, context: Mapping[str, str | None]) -> None:
        self.settings = settings
        self.context = check_context(context)
        re.compile(settings.value_pattern)  # a broken pattern fails here, not mid-incident

    def has(self, name: str) -> bool:
        return name in self.settings.actions

    def uses(self, name: str) -> set[str]:
        """The placeholder names action ``name`` uses."""
        return set().union(*(template_names(arg) for arg in self.action(name).argv))

    def action(self, name: str) -> CommandAction:
        action = self.settings.actions.get(name)
        if action is None:
            raise DeployError(f"{name}: no such action is configured for the command adapter")
        return action

    def argv(self, name: str, **extra: str) -> list[str]:
        """The filled argv; every substituted value is checked before substitution."""
        action = self.action(name)
        values = {**self.context, "idempotency_key": uuid.uuid4().hex, **extra}
        used = self.uses(name)
        for key in sorted(used):
            if key not in values:
                raise DeployError(
                    f"{name}: no value for {{{key}}} (the console gave: "
                    f"{', '.join(sorted(self.context)) or 'nothing'}); nothing was run"
                )
            try:
                check_value(key, values[key], self.settings.value_pattern)
            except DeployError as error:
                raise DeployError(f"{name}: {error}") from None
        # only {identifier} placeholders are replaced: jsonpath braces ('{.spec...}') stay
        return [fill_template(arg, values) for arg in action.argv]

    def environment(self, name: str) -> tuple[dict[str, str], tuple[str, ...]]:
        env = dict(os.environ)
        secrets: list[str] = []
        for key, spec in self.settings.env.items():
            if isinstance(spec, SecretFromEnv):
                value, raw = resolve_secret(spec, f"{name}: env {key}")
                secrets.append(raw)
                secrets.append(value)
                env[key] = value
            else:
                env[key] = spec
        return env, tuple(secrets)

    def run(
        self, name: str, progress: Callable[[str], None] | None = None, **extra: str
    ) -> _Output:
        """Run action ``name`` to completion; raise on refusal, timeout or a non-zero exit."""
        action = self.action(name)
        argv = self.argv(name, **extra)
        env, secrets = self.environment(name)
        timeout_s = action.timeout_s or self.settings.timeout_s
        shown = shlex.join(argv)
        if len(shown) > _ARGV_SHOWN_CHARS:
            shown = shown[: _ARGV_SHOWN_CHARS - 3] + "..."
        where = scrub(f"{name}: `{shown}`", secrets)

        shown_lines = 0

        def on_line(line: str) -> None:
            nonlocal shown_lines
            if progress is None or not line.strip():
                return
            shown_lines += 1
            if shown_lines <= MAX_PROGRESS_LINES:
                progress(excerpt(line, secrets, _PROGRESS_LINE_CHARS))

        def unshown() -> None:
            if progress is not None and shown_lines > MAX_PROGRESS_LINES:
                progress(f"... {shown_lines - MAX_PROGRESS_LINES} more lines of output not shown")

        try:
            code, stdout, stderr = _run(argv, env, timeout_s, on_line)
        except FileNotFoundError:
            raise DeployError(f"{where}: program {argv[0]!r} not found (PATH or path)") from None
        except PermissionError:
            raise DeployError(f"{where}: program {argv[0]!r} is not executable") from None
        except _Timeout:
            unshown()
            raise AdapterTimeout(
                f"{where}: no complete answer within {timeout_s:g} s; it was killed and its "
                "outcome is unknown: read the state back"
            ) from None
        except _TooMuchOutput:
            unshown()
            raise DeployError(
                f"{where} printed more than {MAX_OUTPUT_CHARS // 1024 // 1024} MiB; it was "
                "killed and its answer not read"
            ) from None
        unshown()
        if code != 0:
            status = f"exited {code}" if code > 0 else f"was killed by signal {-code}"
            # scrubbed before _tail cuts them, so no cut leaves part of a secret
            tail = _tail(scrub(stderr, secrets)) or _tail(scrub(stdout, secrets)) or "(no output)"
            raise DeployError(f"{where} {status}: {scrub(tail, secrets)}")
        return _Output(where, stdout, secrets)

    def read(self, name: str, parse: Callable[[object], _T]) -> _T:
        """Run action ``name`` and ``parse`` its answer (see :meth:`value`).

        ``parse`` raises ValueError for a value it cannot accept: a DeployError with the value.
        """
        output = self.run(name)
        value = self.value(name, output)
        try:
            return parse(value)
        except ValueError as error:
            raise output.fail(str(error), str(value)) from None

    def value(self, name: str, output: _Output) -> str | object:
        """The answer in a command's output, per result_regex / result_json_path."""
        action = self.action(name)
        if action.result_regex is not None:
            match = re.search(action.result_regex, output.stdout, re.MULTILINE)
            if match is None:
                raise output.fail(f"printed no match for result_regex {action.result_regex!r}")
            if "value" in match.re.groupindex:
                found = match.group("value")
            elif match.re.groups:
                found = match.group(1)
            else:
                found = match.group(0)
            if found is None:
                raise output.fail(f"matched result_regex {action.result_regex!r} without a value")
            return found
        if action.result_json_path is not None:
            try:
                data = json.loads(output.stdout)
            except ValueError:
                raise output.fail("printed output that is not JSON") from None
            try:
                return lookup_path(data, action.result_json_path)
            except PathNotFound as error:
                raise output.fail(
                    f"printed JSON without result_json_path {action.result_json_path!r} ({error})"
                ) from None
        return output.stdout.strip()


class _Timeout(Exception):
    pass


class _TooMuchOutput(Exception):
    pass


def _run(
    argv: list[str], env: dict[str, str], timeout_s: float, on_line: Callable[[str], None]
) -> tuple[int, str, str]:
    """Run ``argv`` with ``shell=False`` in its own process group; stream stdout lines."""
    proc = subprocess.Popen(
        argv,
        shell=False,
        stdin=subprocess.DEVNULL,  # a prompt (login, confirmation) must fail, not wait forever
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
        encoding="utf-8",
        errors="replace",
        start_new_session=True,  # its own process group, so a timeout kills its children too
    )
    deadline = time.monotonic() + timeout_s
    lines: queue.Queue[tuple[str, str | None]] = queue.Queue()
    out: list[str] = []
    err: list[str] = []
    out_chars = err_chars = 0

    def pump(stream: IO[str] | None, kind: str) -> None:
        try:
            if stream is not None:
                for line in iter(lambda: stream.readline(_READ_CHARS), ""):
                    lines.put((kind, line))
        except (OSError, ValueError):
            pass
        finally:
            lines.put((kind, None))

    pumps = [
        threading.Thread(target=pump, args=(stream, kind), daemon=True)
        for stream, kind in ((proc.stdout, "out"), (proc.stderr, "err"))
    ]
    for thread in pumps:
        thread.start()
    try:
        open_streams = 2
        # progress is called here, on the caller's thread, as lines arrive
        while open_streams:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _Timeout
            try:
                kind, line = lines.get(timeout=min(remaining, 0.1))
            except queue.Empty:
                continue
            if line is None:
                open_streams -= 1
            elif kind == "out":
                out_chars += len(line)
                if out_chars > MAX_OUTPUT_CHARS:
                    raise _TooMuchOutput
                out.append(line)
                on_line(line.rstrip("\n"))
            else:
                err.append(line)
                err_chars += len(line)
                while err_chars > _MAX_STDERR_CHARS and len(err) > 1:
                    err_chars -= len(err.pop(0))
        try:
            code = proc.wait(timeout=max(deadline - time.monotonic(), 0.01))
        except subprocess.TimeoutExpired:
            raise _Timeout from None
    except BaseException:
        # a timeout, a failing progress callback, Ctrl-C: never leave the command running
        _kill_group(proc)
        raise
    finally:
        for thread, stream in zip(pumps, (proc.stdout, proc.stderr), strict=True):
            thread.join(timeout=1.0)
            # a pipe still held by an escaped grandchild stays open: closing it under a blocked
            # reader would block us too, so only finished pipes are closed here
            if stream is not None and not thread.is_alive():
                with contextlib.suppress(OSError):
                    stream.close()
    return code, "".join(out), "".join(err)


def _kill_group(proc: subprocess.Popen[str]) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left after a short grace."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=_TERM_GRACE_S)
        except subprocess.TimeoutExpired:
            continue
        if sig == signal.SIGTERM:
            # the leader is gone; children that ignored SIGTERM still get SIGKILL
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        return


def _tail(text: str, limit: int = 200) -> str:
    """The last non-empty line(s) of ``text``, cleaned, at most ``limit`` characters."""
    kept: list[str] = []
    size = 0
    for line in reversed(text.splitlines()):
        line = clean_text(line, limit)
        if not line:
            continue
        if kept and size + len(line) + 3 > limit:
            break
        kept.insert(0, line)
        size += len(line) + 3
        if len(kept) == 3:
            break
    joined = " | ".join(kept)
    return joined if len(joined) <= limit else "..." + joined[-(limit - 3):]


# --- the adapters ------------------------------------------------------------------------------


class CommandTraffic:
    """A :class:`~adapters.base.TrafficController` driven by local commands.

    ``context`` holds placeholder values (``service``, ``version``, ``target``, ``incident``);
    ``percent`` and ``idempotency_key`` are added per call (``base_url`` does not exist here).
    """

    def __init__(self, settings: CommandSettings, context: Mapping[str, str | None]) -> None:
        self._actions = _CommandActions(settings, context)

    def set_weight(self, percent: int) -> None:
        """Run ``set_weight`` with ``{percent}``; success is exit status 0.

        A command that does not take ``{percent}`` (``kubectl argo rollouts promote``) can only
        move the canary forward: it runs only when ``percent`` is above the current weight, does
        nothing when equal, and is refused for a lower weight (it would promote, not abort).
        """
        value = check_percent(percent)
        if "percent" not in self._actions.uses("set_weight"):
            why = "the configured command does not take {percent}"
            if not should_advance(percent, self.current_weight(), why):
                return
        self._actions.run("set_weight", percent=value)

    def current_weight(self) -> int:
        """Run ``current_weight`` and parse its answer as a weight 0..100."""
        return self._actions.read("current_weight", parse_weight)


class CommandDeployer:
    """A :class:`~adapters.base.Deployer` driven by local commands (see :class:`CommandTraffic`)."""

    def __init__(self, settings: CommandSettings, context: Mapping[str, str | None]) -> None:
        self._actions = _CommandActions(settings, context)

    def current_version(self) -> str:
        """Run ``current_version`` and return the version it reports."""
        return self._actions.read("current_version", parse_version)

    def preflight_rollback(self, target: str) -> PreflightResult:
        """Check, without changing anything, that a rollback to ``target`` can run.

        Never raises for a failing check: every problem becomes a failed :class:`PreflightCheck`.
        A configured ``preflight`` command passes when it exits 0 and, if it has a parser, reports
        the target itself or an affirmative word (true, ok, yes, passed, ...).
        """
        checks = [self._target_check(target), version_check(self.current_version)]
        if self._actions.has("preflight"):
            checks.append(self._command_check(target))
            detail = "checked by the preflight command"
        else:
            checks.append(PreflightCheck(
                "preflight command", True,
                "no preflight command is configured: only read-only checks were run",
            ))
            detail = "no preflight command is configured; read-only checks only"
        return PreflightResult(
            target=target, ok=all(c.ok for c in checks), checks=checks, detail=detail
        )

    def _target_check(self, target: str) -> PreflightCheck:
        # the rollback would refuse this value later; say so now, before the first stage
        try:
            check_value("target", target, self._actions.settings.value_pattern)
        except DeployError as error:
            return PreflightCheck("target version usable", False, str(error))
        return PreflightCheck("target version usable", True, f"rollback target {target!r}")

    def _command_check(self, target: str) -> PreflightCheck:
        try:
            output = self._actions.run("preflight", target=target)
            action = self._actions.action("preflight")
            if action.result_regex is None and action.result_json_path is None:
                return PreflightCheck("preflight command", True, "exited 0")
            ok, said = describe_preflight_value(self._actions.value("preflight", output), target)
            return PreflightCheck("preflight command", ok, f"exited 0 and {said}")
        except (DeployError, AdapterTimeout) as error:  # a timeout is not a DeployError
            return PreflightCheck("preflight command", False, str(error))

    def rollback(self, target: str, progress: Callable[[str], None] | None = None, *,
                 idempotency_key: str | None = None) -> str:
        """Run ``rollback`` with ``{target}``; stdout lines go to ``progress`` as they come.

        Returns the parsed answer if a parser is configured, else the last line of output.
        Completion is confirmed by the console, by reading :meth:`current_version`.
        ``{idempotency_key}`` is the console's key for this rollback, when it gives one.
        """
        keyed = {"idempotency_key": idempotency_key} if idempotency_key else {}
        output = self._actions.run("rollback", progress, target=target, **keyed)
        action = self._actions.action("rollback")
        if action.result_regex is not None or action.result_json_path is not None:
            value = self._actions.value("rollback", output)
            if isinstance(value, dict | list) or value is None:
                raise output.fail("reported an object where a short description was expected")
            return excerpt(str(value), output.secrets, 120)
        lines = [ln for ln in output.stdout.splitlines() if ln.strip()]
        if not lines:
            return "exited 0"
        return excerpt(lines[-1], output.secrets, 120)
