"""Deploy a Pulumi program's stack to a real Docker engine under Pulumi's mock runtime.

`apply_program` reads the project and stack files, runs `__main__.py` with `HarnessMocks`
(which create every resource for real), waits for every registration, and returns an
`AppliedStack`: the exports (resolved, secrets unwrapped), what was created, and timings.
`AppliedStack.destroy()` takes it all away again; `reapply()` deploys once more on the same
volumes and state after removing the containers. `plan()` says what a second `pulumi up` would
change, diffing the program's inputs against the state the provider recorded; `update()` makes
those changes, as that `pulumi up` would.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import runpy
import sys
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import docker
import pulumi
from pulumi.runtime import settings as runtime_settings

from tests.stack_config import load_config, project_name

from . import engine
from .mocks import (
    AppliedResource,
    Change,
    CreatedObject,
    HarnessMocks,
    HarnessMonitor,
    HarnessState,
    ResourceFailure,
    ResourceTiming,
    destroy_created,
)

log = logging.getLogger(__name__)

# Registrations block while containers become healthy; the SDK runs each in the event loop's
# default executor, whose default size (cores + 4) would serialise independent containers.
WORKER_THREADS = 64

# Program-directory entries that are never part of the program itself.
_NOT_PROGRAM_MODULES = {"__main__", "tests", "test", "conftest", "setup"}


class ApplyError(RuntimeError):
    """The deployment failed: the program raised, a resource could not be applied, or Pulumi logged an error."""


# --- the result -----------------------------------------------------------------------------------


@dataclass
class AppliedStack:
    """A deployed stack: what it exported, what it created, how long it took; and its teardown."""

    project: str
    stack: str
    program_dir: Path
    outputs: dict[str, Any]
    """Stack exports, resolved, secrets unwrapped."""
    secret_outputs: frozenset[str]
    """Names of the exports that are secret."""
    containers: dict[str, str]
    """Docker container name -> id."""
    networks: dict[str, str]
    """Docker network name -> id."""
    volumes: list[str]
    images: list[str]
    """Images built by docker.Image resources (never removed)."""
    resources: list[AppliedResource]
    timings: list[ResourceTiming]
    seconds_to_ready: float
    """Apply start -> the last container created (healthy, when it waits)."""
    duration_seconds: float
    """Apply start -> every registration done."""
    keep_volumes: bool = False
    state: HarnessState = field(default_factory=HarnessState)
    config_overrides: dict[str, Any] | None = None
    secrets: dict[str, Any] | None = None
    created: list[CreatedObject] = field(default_factory=list, repr=False)
    destroyed: bool = False
    successor: AppliedStack | None = field(default=None, repr=False)
    """The stack `reapply()` or `update()` deployed after this one (destroyed with it)."""
    changes: list[Change] = field(default_factory=list)
    """What this apply changed in the state it started from (or, from `plan()`, would change)."""
    removed_logs: dict[str, str] = field(default_factory=dict)
    """Docker name -> output of each container this apply stopped and removed to replace it."""
    services: dict[str, str] = field(default_factory=dict)
    """Swarm service name -> id."""
    secrets_created: dict[str, str] = field(default_factory=dict)
    """Swarm secret name -> id."""
    configs: dict[str, str] = field(default_factory=dict)
    """Swarm config name -> id."""

    def resource(self, name: str, type_: str | None = None) -> AppliedResource:
        """The registered resource with this logical name (and type token, if given)."""
        found = [r for r in self.resources if r.name == name and (type_ is None or r.type == type_)]
        if len(found) != 1:
            raise KeyError(f"{len(found)} resources named {name!r}" + (f" of type {type_}" if type_ else ""))
        return found[0]

    def ready_after(self, name: str) -> float:
        """Seconds from apply start until the resource with this logical name was ready."""
        matches = [timing.ready for timing in self.timings if timing.name == name]
        if not matches:
            raise KeyError(name)
        return max(matches)

    def destroy(self, keep_volumes: bool | None = None, run_deletes: bool = True) -> None:
        """Remove the containers and networks (and volumes unless kept), run Command deletes; idempotent."""
        if self.successor is not None:
            self.successor.destroy(keep_volumes, run_deletes)
        if self.destroyed:
            return
        client = engine.connect()
        try:
            failures = destroy_created(
                client.api, self.created, self.keep_volumes if keep_volumes is None else keep_volumes, run_deletes
            )
        finally:
            client.close()
        self.destroyed = True
        self.state.resources.clear()
        if failures:
            raise ApplyError(f"destroy of stack {self.stack!r} left objects behind:\n" + "\n".join(failures))

    def reapply(self, config_overrides: Mapping[str, Any] | None = None) -> AppliedStack:
        """Deploy again on the same volumes, generated values and names (a second `pulumi up`
        after the containers were replaced). This stack's containers and networks are removed
        first; the returned stack owns everything from then on."""
        self._require_live()
        self.destroy(keep_volumes=True, run_deletes=False)
        try:
            self.successor = self._up(config_overrides)
        except ApplyError:
            # The failed apply removed what it had taken over; the kept volumes are still ours.
            if not self.keep_volumes:
                client = engine.connect()
                try:
                    destroy_created(client.api, [item for item in self.created if item.kind == "volume"], False)
                finally:
                    client.close()
            raise
        return self.successor

    def plan(self, config_overrides: Mapping[str, Any] | None = None) -> list[Change]:
        """What `pulumi up` of the program (with these overrides, else the same ones) would change
        now, against the state recorded so far; nothing is applied."""
        self._require_live()
        return self._up(config_overrides, plan_only=True).changes

    def update(
        self, config_overrides: Mapping[str, Any] | None = None, secrets: Mapping[str, Any] | None = None
    ) -> AppliedStack:
        """A second `pulumi up` (with these overrides and secrets, else the same ones): unchanged
        resources stay, containers whose change is an update are updated in place, the rest is
        replaced. The returned stack owns everything from then on.

        When it fails, as with `pulumi up`, what it did so far stays (nothing is rolled back) and
        this stack owns it, old and new."""
        self._require_live()
        try:
            self.successor = self._up(config_overrides, secrets=secrets, destroy_on_failure=False)
        except ApplyError:
            owned = {(item.kind, item.id) for item in self.created}
            for recorded in self.state.resources.values():
                self.created += [item for item in recorded.created if (item.kind, item.id) not in owned]
            raise
        # What this stack owned is now the successor's, or was removed to be replaced.
        self.destroyed = True
        return self.successor

    def _up(
        self,
        config_overrides: Mapping[str, Any] | None,
        secrets: Mapping[str, Any] | None = None,
        plan_only: bool = False,
        destroy_on_failure: bool = True,
    ) -> AppliedStack:
        """`pulumi up` of the program again, on this stack's state and volumes, with its secrets
        unless others are given."""
        return apply_program(
            self.program_dir,
            self.stack,
            config_overrides=self.config_overrides if config_overrides is None else dict(config_overrides),
            keep_volumes=self.keep_volumes,
            secrets=self.secrets if secrets is None else dict(secrets),
            state=self.state,
            plan_only=plan_only,
            destroy_on_failure=destroy_on_failure,
        )

    def _require_live(self) -> None:
        if self.destroyed:
            raise ApplyError(f"stack {self.stack!r} was destroyed or superseded; use the stack it handed over to")

    def __enter__(self) -> AppliedStack:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.destroy()


# --- running the program --------------------------------------------------------------------------


class _ErrorLog(logging.Handler):
    """Collects what the program or the SDK logs at error level (in a real deployment, a failure)."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _program_module_names(program_dir: Path) -> set[str]:
    names = {path.stem for path in program_dir.glob("*.py")}
    names |= {path.name for path in program_dir.iterdir() if path.is_dir() and (path / "__init__.py").is_file()}
    return names - _NOT_PROGRAM_MODULES


@contextlib.contextmanager
def _program_environment(program_dir: Path) -> Iterator[None]:
    """Run as the Pulumi language host would: the program directory as cwd and first on sys.path,
    and the program's own modules imported afresh (module-level state does not leak between
    applies); whatever was imported before is put back afterwards."""
    names = _program_module_names(program_dir)

    def ours(module: str) -> bool:
        return module.split(".")[0] in names

    saved = {module: sys.modules[module] for module in list(sys.modules) if ours(module)}
    for module in saved:
        del sys.modules[module]
    previous_cwd = Path.cwd()
    sys.path.insert(0, str(program_dir))
    os.chdir(program_dir)
    try:
        yield
    finally:
        os.chdir(previous_cwd)
        with contextlib.suppress(ValueError):
            sys.path.remove(str(program_dir))
        for module in [module for module in list(sys.modules) if ours(module)]:
            del sys.modules[module]
        sys.modules.update(saved)


async def _resolve_exports(exports: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    values: dict[str, Any] = {}
    secret: set[str] = set()
    for key, value in exports.items():
        output = pulumi.Output.from_input(value)
        values[key] = await output.future()
        if await output.is_secret():
            secret.add(key)
    return values, secret


def _quiet_unretrieved(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    # A failed resource fails each of its output futures; those nobody awaited are reported by
    # asyncio when collected. The failure itself is already in the ApplyError.
    # Outputs still waiting on a failed resource are destroyed pending, also expected.
    message = context.get("message", "")
    if "never retrieved" in message or "destroyed but it is pending" in message:
        log.debug("unawaited failure: %s", context.get("exception") or context.get("task"))
        return
    loop.default_exception_handler(context)


def _close_current_event_loop() -> None:
    # The loop an earlier run left current is replaced now: closed first, or its finalizer closes it
    # at a later collection, after its self-pipe's sockets ("Invalid file descriptor: -1").
    with contextlib.suppress(RuntimeError):
        current = asyncio.get_event_loop_policy().get_event_loop()
        if not current.is_running():
            current.close()


def _run_program(
    program_dir: Path,
    project: str,
    stack: str,
    config: dict[str, str],
    secret_keys: list[str],
    mocks: HarnessMocks,
    errors: _ErrorLog,
) -> tuple[dict[str, Any], set[str]]:
    exports: dict[str, Any] = {}
    secret: set[str] = set()
    pulumi_log = logging.getLogger("pulumi.program")
    pulumi_log.addHandler(errors)
    _close_current_event_loop()
    loop = asyncio.new_event_loop()
    loop.set_exception_handler(_quiet_unretrieved)
    executor = ThreadPoolExecutor(max_workers=WORKER_THREADS, thread_name_prefix="harness-register")
    loop.set_default_executor(executor)
    asyncio.set_event_loop(loop)
    try:
        # A fresh root stack resource, settings and config for this run only.
        runtime_settings.ROOT.set(None)
        pulumi.runtime.set_mocks(
            mocks, project=project, stack=stack, preview=False, logger=pulumi_log, monitor=HarnessMonitor(mocks)
        )
        pulumi.runtime.set_all_config(config, secret_keys)

        def program() -> Any:
            runpy.run_path(str(program_dir / "__main__.py"), run_name="__main__")
            root = runtime_settings.get_root_resource()
            stack_exports = dict(getattr(root, "outputs", {}))

            async def collect() -> None:
                values, secret_names = await _resolve_exports(stack_exports)
                exports.update(values)
                secret.update(secret_names)

            return collect()

        with _program_environment(program_dir):
            pulumi.runtime.test(program)()
    finally:
        pulumi_log.removeHandler(errors)
        pulumi.runtime.set_all_config({}, [])
        runtime_settings.ROOT.set(None)
        executor.shutdown(wait=True)
        loop.close()
        # The program's outputs that waited on a failed resource are garbage now: destroyed here,
        # not at a later collection that may run inside a test's failure report (CPython 3.11's
        # ast.parse fails when a finalizer runs Python code during it: "AST constructor recursion
        # depth mismatch", which takes the test process down).
        gc.collect()
        asyncio.set_event_loop(asyncio.new_event_loop())
    return exports, secret


def _failure_report(stack: str, failures: list[ResourceFailure], logged: list[str], exc: BaseException | None) -> str:
    lines = [f"apply of stack {stack!r} failed:"]
    messages = [failure.message for failure in failures]
    for message in messages:
        lines.append(f"- {message}")
    if exc is not None and not any(str(exc) in message or message in str(exc) for message in messages):
        lines.append(f"- {type(exc).__name__}: {exc}")
    for message in logged:
        if not any(message in line for line in lines):
            lines.append(f"- logged error: {message}")
    return "\n".join(lines)


def apply_program(
    program_dir: Path | str,
    stack: str,
    config_overrides: Mapping[str, Any] | None = None,
    keep_volumes: bool = False,
    *,
    secrets: Mapping[str, Any] | None = None,
    state: HarnessState | None = None,
    destroy_on_failure: bool = True,
    plan_only: bool = False,
) -> AppliedStack:
    """Deploy `program_dir`'s stack `stack` to the Docker engine and return what was deployed.

    `config_overrides` (keys with or without the project namespace) are deep-merged into the
    stack file's values; `secrets` are set as secret config. `state` carries generated values
    and names from an earlier apply (see `AppliedStack.reapply`). On failure everything created
    so far is removed (unless `destroy_on_failure` is False; volumes that existed before stay when
    `keep_volumes`) and `ApplyError` is raised with the original messages.

    Resources recorded in `state` are diffed, not created again (a second `pulumi up`); with
    `plan_only`, nothing is applied and the returned stack, owning nothing, lists the changes.
    """
    program_dir = Path(program_dir).resolve()
    project = project_name(program_dir)
    config, secret_keys = load_config(program_dir, project, stack, config_overrides, secrets)
    state = state if state is not None else HarnessState()
    client = engine.connect()
    started = time.monotonic()
    mocks = HarnessMocks(client, program_dir, state, started, plan_only)
    errors = _ErrorLog()
    failure: BaseException | None = None
    exports: dict[str, Any] = {}
    secret: set[str] = set()
    try:
        exports, secret = _run_program(program_dir, project, stack, config, secret_keys, mocks, errors)
    except Exception as exc:  # noqa: BLE001 - reported below with every resource failure
        failure = exc
    duration = time.monotonic() - started
    try:
        if failure is None and not mocks.failures:
            _delete_unregistered(client.api, mocks)
            _delete_replaced(client.api, mocks)
        if failure is not None or mocks.failures or errors.messages:
            report = _failure_report(stack, mocks.failures, errors.messages, failure)
            if destroy_on_failure:
                # Volumes this apply created go too; with keep_volumes, ones that held data before stay.
                doomed = [
                    item
                    for item in mocks.replaced + mocks.created
                    if not (keep_volumes and item.kind == "volume" and item.details.get("existed"))
                ]
                leftovers = destroy_created(client.api, doomed, keep_volumes=False)
                if leftovers:
                    report += "\nand teardown left objects behind:\n" + "\n".join(leftovers)
            raise ApplyError(report) from failure
    finally:
        client.close()

    created = list(mocks.created)
    container_timings = [t for t in mocks.timings if t.type == "docker:index/container:Container"]
    return AppliedStack(
        project=project,
        stack=stack,
        program_dir=program_dir,
        outputs=exports,
        secret_outputs=frozenset(secret),
        containers={item.name: item.id for item in created if item.kind == "container"},
        networks={item.name: item.id for item in created if item.kind == "network"},
        volumes=[item.name for item in created if item.kind == "volume"],
        images=[item.name for item in created if item.kind == "image"],
        resources=list(mocks.resources),
        timings=sorted(mocks.timings, key=lambda timing: timing.started),
        seconds_to_ready=max((t.ready for t in container_timings), default=0.0),
        duration_seconds=duration,
        keep_volumes=keep_volumes,
        state=state,
        config_overrides=dict(config_overrides) if config_overrides is not None else None,
        secrets=dict(secrets) if secrets is not None else None,
        created=created,
        destroyed=plan_only,
        changes=list(mocks.changes),
        removed_logs=dict(mocks.removed_logs),
        services={item.name: item.id for item in created if item.kind == "service"},
        secrets_created={item.name: item.id for item in created if item.kind == "secret"},
        configs={item.name: item.id for item in created if item.kind == "config"},
    )


def _delete_unregistered(api: docker.APIClient, mocks: HarnessMocks) -> None:
    """Resources in the state that the program no longer declares: `pulumi up` deletes them."""
    registered = {resource.urn for resource in mocks.resources}
    for urn in [urn for urn in mocks.state.resources if urn not in registered]:
        recorded = mocks.state.resources[urn]
        mocks.changes.append(Change(urn, recorded.type, recorded.name, "delete"))
        if not mocks.plan_only:
            destroy_created(api, recorded.created, keep_volumes=False)
            del mocks.state.resources[urn]


def _delete_replaced(api: docker.APIClient, mocks: HarnessMocks) -> None:
    """The old objects of resources replaced create-before-delete: Pulumi deletes them last."""
    if mocks.plan_only or not mocks.replaced:
        return
    failures = destroy_created(api, mocks.replaced, keep_volumes=False)
    mocks.replaced.clear()
    if failures:
        raise ApplyError("deleting replaced resources failed:\n" + "\n".join(failures))


def connect_engine() -> docker.DockerClient:
    """A Docker client for the engine the harness applies to (callers close it)."""
    return engine.connect()
