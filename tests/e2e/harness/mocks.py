"""Pulumi mocks that apply each registered resource for real.

`HarnessMocks.new_resource` runs in the SDK's worker threads, after the resource's dependencies
have been registered (the SDK awaits them first), so creation follows dependency order.
Docker resources go to the engine, commands run locally or over SSH, random and TLS values are generated;
provider and component resources only echo their inputs. Any other type fails, naming it.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs, Mocks

from . import commands, docker_mapping, engine, planning, provider_state
from .docker_mapping import CONTAINER, IMAGE, NETWORK, REMOTE_IMAGE, SECRET, SERVICE, SERVICE_CONFIG, TAG, VOLUME
from .generators import GENERATORS, RANDOM_ID, RANDOM_INTEGER, RANDOM_STRING, RANDOM_UUID
from .planning import Change, Options
from .values import UnsupportedInput, is_secret_wrapper, unwrap_secrets, wrap_secret

log = logging.getLogger(__name__)

SUPPORTED_TYPES = (
    CONTAINER,
    NETWORK,
    VOLUME,
    SERVICE,
    SECRET,
    SERVICE_CONFIG,
    REMOTE_IMAGE,
    IMAGE,
    TAG,
    commands.COMMAND,
    commands.REMOTE_COMMAND,
    *GENERATORS,
)


# Types whose `name` the provider's auto-naming fills in when the program leaves it out.
_NAMED = (CONTAINER, NETWORK, VOLUME, SERVICE, SECRET, SERVICE_CONFIG)


class ResourceFailed(RuntimeError):
    """Applying one resource failed; the message names the resource and the cause."""


@dataclass(frozen=True)
class Registration:
    """What the monitor knows about the registration being applied (the mock args lack it)."""

    urn: str
    additional_secret_outputs: tuple[str, ...]
    options: Options


_current = threading.local()


class HarnessMonitor(MockMonitor):
    """The SDK's mock monitor, passing each registration's URN and secret outputs to the mocks."""

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        if request.type == "pulumi:pulumi:Stack":
            return super().RegisterResource(request)
        _current.registration = Registration(
            urn=self.make_urn(request.parent, request.type, request.name),
            additional_secret_outputs=tuple(request.additionalSecretOutputs),
            options=Options(
                ignore_changes=tuple(request.ignoreChanges),
                replace_on_changes=tuple(request.replaceOnChanges),
            ),
        )
        try:
            return super().RegisterResource(request)
        finally:
            _current.registration = None


@dataclass
class RecordedResource:
    """One resource in the stack's state after an apply."""

    type: str
    name: str
    id: str
    state: dict[str, Any]
    """What the provider stored: for Docker objects, read back from Docker in the provider's
    formats (see provider_state); for other types, the inputs."""
    outputs: dict[str, Any]
    """The outputs the program saw (wire form, secrets wrapped)."""
    created: list[CreatedObject]
    """The Docker objects, commands and images behind it."""


@dataclass
class HarnessState:
    """What Pulumi keeps in a stack's state between deployments and the harness must too.

    Generated values (passwords, keys) and generated names, by URN, so that a second deployment
    on the same volumes sees the same passwords and volume names.
    """

    generated: dict[str, tuple[Any, dict[str, Any]]] = field(default_factory=dict)
    """URN -> (inputs it was generated from, outputs)."""
    autonames: dict[str, str] = field(default_factory=dict)
    resources: dict[str, RecordedResource] = field(default_factory=dict)
    """URN -> what the provider recorded for it (what the next `pulumi up` diffs against)."""


@dataclass
class CreatedObject:
    """Something the apply created that teardown must undo."""

    kind: str
    """"container", "network", "volume", "service", "secret", "config", "image" or "command"."""
    name: str
    """Docker name (for a command: its logical name)."""
    id: str
    urn: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ResourceTiming:
    """When a resource's registration began and when it was ready, in seconds after apply start."""

    urn: str
    type: str
    name: str
    started: float
    ready: float

    @property
    def seconds(self) -> float:
        return self.ready - self.started


@dataclass(frozen=True)
class AppliedResource:
    """One registered resource with its id and outputs (secrets unwrapped)."""

    urn: str
    type: str
    name: str
    id: str
    outputs: dict[str, Any]


@dataclass(frozen=True)
class ResourceFailure:
    urn: str
    type: str
    name: str
    message: str


class HarnessMocks(Mocks):
    """Applies each registration for real, or, with `plan_only`, only says what an up would change.

    A resource recorded in the state is diffed against its inputs as the provider would (see
    planning): unchanged, it is kept; a container whose change is an update is updated in place;
    anything else is replaced (containers deleted before their replacement is created, as the
    provider asks).
    """

    def __init__(
        self,
        client: docker.DockerClient,
        program_dir: Path,
        state: HarnessState,
        started: float,
        plan_only: bool = False,
    ) -> None:
        self.api: docker.APIClient = client.api
        self.program_dir = program_dir
        self.state = state
        self.started = started
        self.plan_only = plan_only
        self.created: list[CreatedObject] = []
        self.timings: list[ResourceTiming] = []
        self.resources: list[AppliedResource] = []
        self.failures: list[ResourceFailure] = []
        self.changes: list[Change] = []
        self.replaced: list[CreatedObject] = []
        """Objects of resources replaced create-before-delete: deleted once the program is done."""
        self.removed_logs: dict[str, str] = {}
        """Docker name -> the output of a container this apply stopped and removed."""
        self._lock = threading.Lock()

    # --- Mocks interface --------------------------------------------------------------------------

    def call(self, args: MockCallArgs) -> dict:
        # No data source is emulated; an empty result leaves every field of it None.
        log.warning("invoke %s is not emulated; it returns no values", args.token)
        return {}

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict]:
        registration: Registration | None = getattr(_current, "registration", None)
        urn = registration.urn if registration else f"{args.typ}::{args.name}"
        options = registration.options if registration else Options()
        where = f"{args.typ} {args.name!r}"
        started = time.monotonic() - self.started
        tracked = args.custom and not args.typ.startswith("pulumi:providers:")
        try:
            if args.resource_id and args.custom:
                raise UnsupportedInput(
                    f"{where}: reading or importing existing resources (get/import) is not supported"
                )
            recorded = self.state.resources.get(urn) if tracked else None
            if recorded is not None and self._kept(args, urn, where, recorded, options):
                return self._registered(urn, args, recorded.id, recorded.outputs)
            if recorded is None and tracked and self.plan_only:
                with self._lock:
                    self.changes.append(Change(urn, args.typ, args.name, "create"))
                return self._registered(urn, args, f"{args.name}-planned", dict(args.inputs))
            resource_id, computed, stored = self._apply(args, urn, where)
        except Exception as exc:
            message = str(exc) if where in str(exc) else f"{where}: {exc}"
            with self._lock:
                self.failures.append(ResourceFailure(urn, args.typ, args.name, message))
            log.error("%s", message)
            raise ResourceFailed(message) from exc
        outputs = {**args.inputs, **computed}
        # The engine marks these outputs secret (e.g. RandomPassword.result); the mock monitor does not.
        for key in registration.additional_secret_outputs if registration else ():
            if key in outputs and not is_secret_wrapper(outputs[key]):
                outputs[key] = wrap_secret(outputs[key])
        with self._lock:
            self.timings.append(ResourceTiming(urn, args.typ, args.name, started, time.monotonic() - self.started))
            if tracked:
                created = [item for item in self.created if item.urn == urn]
                self.state.resources[urn] = RecordedResource(args.typ, args.name, resource_id, stored, outputs, created)
        return self._registered(urn, args, resource_id, outputs)

    def _registered(self, urn: str, args: MockResourceArgs, resource_id: str, outputs: dict) -> tuple[str, dict]:
        with self._lock:
            self.resources.append(AppliedResource(urn, args.typ, args.name, resource_id or "", unwrap_secrets(outputs)))
        return resource_id, outputs

    # --- a resource already in the state ----------------------------------------------------------

    def _kept(self, args: MockResourceArgs, urn: str, where: str, recorded: RecordedResource, options: Options) -> bool:
        """Diff against the recorded state; True when the recorded resource stands (as it was, or updated in place)."""
        declared = unwrap_secrets(self._named(args, urn) if args.typ in _NAMED else args.inputs)
        change = planning.diff(urn, args.typ, args.name, recorded.state, declared, options)
        if change is not None:
            with self._lock:
                self.changes.append(change)
        if change is None or self.plan_only:
            if not self.plan_only:
                with self._lock:
                    self.created.extend(recorded.created)
            return True
        if change.action == "update" and args.typ == CONTAINER:
            engine.update_container(self.api, recorded.id, declared, [prop.name for prop in change.properties])
            # The provider stores the program's values after an update; it does not read back.
            recorded.state.update({prop.name: prop.declared for prop in change.properties})
            recorded.outputs = {**recorded.outputs, **args.inputs}
            with self._lock:
                self.created.extend(recorded.created)
            return True
        if change.action == "update" and args.typ == SERVICE:
            self._update_service(args, where, recorded, declared)
            # The engine gives the program the updated resource's outputs: its new inputs.
            recorded.outputs = {**recorded.outputs, **args.inputs}
            with self._lock:
                self.created.extend(recorded.created)
            return True
        if args.typ in (SERVICE, SECRET, SERVICE_CONFIG):
            # Not DeleteBeforeReplace in pulumi-docker: the replacement is created first (under a
            # new name when autonamed; a fixed name fails if Docker holds it), the old one is
            # deleted at the end of the deployment.
            with self._lock:
                self.replaced.extend(recorded.created)
                if not unwrap_secrets(args.inputs.get("name")):
                    self.state.autonames.pop(urn, None)
                del self.state.resources[urn]
            return False
        if args.typ in (NETWORK, VOLUME):
            raise UnsupportedInput(f"{where}: replacing a {args.typ.rsplit(':', 1)[-1]} is not emulated ({change})")
        if args.typ == CONTAINER:
            # Delete before replace (the provider's choice for containers): stop with the old grace period.
            for item in recorded.created:
                logs = engine.remove_container(
                    self.api, item.id, item.details["grace_seconds"], item.details["remove_volumes"]
                )
                with self._lock:
                    self.removed_logs[item.name] = logs
        with self._lock:
            del self.state.resources[urn]
        return False

    # --- per type ---------------------------------------------------------------------------------

    def _apply(self, args: MockResourceArgs, urn: str, where: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
        """Create the resource; its id, computed outputs, and the state the provider records."""
        if not args.custom:
            return f"{args.name}-component", {}, {}
        if args.typ.startswith("pulumi:providers:"):
            return f"{args.name}-provider", {}, {}
        if args.typ == CONTAINER:
            return self._container(args, urn, where)
        if args.typ == NETWORK:
            return self._network(args, urn, where)
        if args.typ == VOLUME:
            return self._volume(args, urn, where)
        if args.typ == SERVICE:
            return self._service(args, urn, where)
        if args.typ in (SECRET, SERVICE_CONFIG):
            return self._swarm_object(args, urn, where)
        resource_id, computed = self._apply_other(args, urn, where)
        return resource_id, computed, unwrap_secrets(args.inputs)

    def _apply_other(self, args: MockResourceArgs, urn: str, where: str) -> tuple[str, dict[str, Any]]:
        if args.typ == REMOTE_IMAGE:
            plan = docker_mapping.map_remote_image(args.inputs, where)
            image = engine.require_image(self.api, plan.name, where)
            engine.require_platform(image, plan.platform, where)
            return image["Id"] + plan.name, {"imageId": image["Id"], "repoDigest": engine.repo_digest(image)}
        if args.typ == IMAGE:
            return self._image(args, urn, where)
        if args.typ == TAG:
            plan = docker_mapping.map_tag(args.inputs, where)
            source = engine.tag_image(self.api, plan)
            return f"{source['Id']}.{plan.target_image}", {"sourceImageId": source["Id"]}
        if args.typ in (commands.COMMAND, commands.REMOTE_COMMAND):
            return self._command(args, urn, where)
        if args.typ in GENERATORS:
            return self._generated(args, urn, where)
        raise UnsupportedInput(
            f"resource type {args.typ!r} ({args.name!r}) is not supported by the harness; "
            f"supported: {', '.join(SUPPORTED_TYPES)}"
        )

    def _record(self, created: CreatedObject) -> None:
        with self._lock:
            self.created.append(created)

    def _named(self, args: MockResourceArgs, urn: str) -> dict[str, Any]:
        """The inputs with `name` filled in as the provider's auto-naming would (`<name>-<7 hex>`)."""
        inputs = dict(args.inputs)
        if unwrap_secrets(inputs.get("name")):
            return inputs
        with self._lock:
            name = self.state.autonames.setdefault(urn, f"{args.name}-{secrets.token_hex(4)[:7]}")
        inputs["name"] = name
        return inputs

    def _container(self, args: MockResourceArgs, urn: str, where: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
        inputs = self._named(args, urn)
        plan = docker_mapping.map_container(inputs, self.program_dir, where)

        def created(container_id: str) -> None:
            self._record(
                CreatedObject(
                    "container",
                    plan.name,
                    container_id,
                    urn,
                    {"grace_seconds": plan.destroy_grace_seconds, "remove_volumes": plan.remove_volumes},
                )
            )

        outcome = engine.create_container(self.api, plan, created)
        stored = provider_state.container_state(unwrap_secrets(inputs), outcome.inspect)
        return outcome.id, {"name": plan.name, **engine.container_outputs(outcome)}, stored

    def _network(self, args: MockResourceArgs, urn: str, where: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
        inputs = self._named(args, urn)
        plan = docker_mapping.map_network(inputs, where)
        inspect = engine.create_network(self.api, plan)
        self._record(CreatedObject("network", plan.name, inspect["Id"], urn))
        stored = provider_state.network_state(unwrap_secrets(inputs), inspect)
        return inspect["Id"], engine.network_outputs(inspect), stored

    def _volume(self, args: MockResourceArgs, urn: str, where: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
        inputs = self._named(args, urn)
        plan = docker_mapping.map_volume(inputs, where)
        volume, existed = engine.create_volume(self.api, plan)
        self._record(CreatedObject("volume", plan.name, plan.name, urn, {"existed": existed}))
        stored = provider_state.volume_state(unwrap_secrets(inputs), volume)
        return plan.name, engine.volume_outputs(volume), stored

    def _service(self, args: MockResourceArgs, urn: str, where: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
        inputs = self._named(args, urn)
        plan = docker_mapping.map_service(inputs, where)

        def created(service_id: str) -> None:
            self._record(CreatedObject("service", plan.name, service_id, urn, {"grace_seconds": plan.stop_grace_seconds}))

        inspect = engine.create_service(self.api, plan, created)
        stored = provider_state.service_state(unwrap_secrets(inputs), inspect)
        return inspect["ID"], engine.service_outputs(inspect), stored

    def _update_service(
        self, args: MockResourceArgs, where: str, recorded: RecordedResource, declared: dict[str, Any]
    ) -> None:
        plan = docker_mapping.map_service(declared, where)
        try:
            inspect = engine.update_service(self.api, recorded.id, plan)
        except engine.EngineError:
            # The SDK keeps the planned values when Update fails (no Read after the error): the
            # state says the program's values although swarm may have rolled the service back.
            recorded.state = {**recorded.state, **declared}
            raise
        # resourceDockerServiceUpdate ends with a Read: the state is Docker's again.
        recorded.state = provider_state.service_state(declared, inspect)

    def _swarm_object(self, args: MockResourceArgs, urn: str, where: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
        inputs = self._named(args, urn)
        if args.typ == SECRET:
            plan = docker_mapping.map_secret(inputs, where)
            inspect = engine.create_secret(self.api, plan)
            stored = provider_state.secret_state(unwrap_secrets(inputs), inspect)
            kind = "secret"
        else:
            plan = docker_mapping.map_service_config(inputs, where)
            inspect = engine.create_config(self.api, plan)
            stored = provider_state.config_state(unwrap_secrets(inputs), inspect)
            kind = "config"
        self._record(CreatedObject(kind, plan.name, inspect["ID"], urn))
        return inspect["ID"], {"name": plan.name}, stored

    def _image(self, args: MockResourceArgs, urn: str, where: str) -> tuple[str, dict[str, Any]]:
        plan = docker_mapping.map_image(args.inputs, self.program_dir, where)
        image = engine.build_image(self.api, plan)
        # Built images are cache, not deployment state: listed, never removed.
        self._record(CreatedObject("image", plan.image_name, image["Id"], urn))
        return plan.image_name, {
            "imageName": plan.image_name,
            "baseImageName": plan.image_name,
            "repoDigest": image["Id"],
            "context": plan.context_input,
            "dockerfile": plan.dockerfile_output,
            "registryServer": "",
        }

    def _command(self, args: MockResourceArgs, urn: str, where: str) -> tuple[str, dict[str, Any]]:
        if args.typ == commands.REMOTE_COMMAND:
            spec = commands.remote_command_spec(args.inputs, self.program_dir, where)
        else:
            spec = commands.command_spec(args.inputs, self.program_dir, where)
        result = commands.run_script(spec, spec.create, args.name) if spec.create else commands.CommandResult("", "")
        self._record(CreatedObject("command", args.name, urn, urn, {"spec": spec, "result": result}))
        outputs: dict[str, Any] = {"stdout": result.stdout, "stderr": result.stderr}
        if spec.secret:
            # pulumi-command makes every output depend on every input, secrets included.
            outputs = {key: wrap_secret(value) for key, value in outputs.items()}
        return f"{args.name}-{secrets.token_hex(4)}", outputs

    def _generated(self, args: MockResourceArgs, urn: str, where: str) -> tuple[str, dict[str, Any]]:
        inputs = unwrap_secrets(args.inputs)
        with self._lock:
            kept = self.state.generated.get(urn)
        if kept is not None and kept[0] == inputs:
            outputs = kept[1]
        else:
            outputs = GENERATORS[args.typ](args.inputs, where)
            with self._lock:
                self.state.generated[urn] = (inputs, outputs)
        # As the providers: a RandomString/RandomUuid/RandomInteger is identified by its value, a
        # RandomId by its URL-safe encoding; secrets and keys never are.
        if args.typ in (RANDOM_STRING, RANDOM_UUID, RANDOM_INTEGER):
            resource_id = str(outputs["result"])
        elif args.typ == RANDOM_ID:
            resource_id = outputs["b64Url"]
        else:
            resource_id = f"{args.name}-{secrets.token_hex(4)}"
        return resource_id, outputs


def destroy_created(
    api: docker.APIClient, created: list[CreatedObject], keep_volumes: bool, run_deletes: bool = True
) -> list[str]:
    """Undo what an apply created, newest first; return the failures (commands only warn)."""
    failures: list[str] = []
    # Services first: they hold the secrets, configs and networks they use.
    newest_first = list(reversed(created))
    for item in [item for item in newest_first if item.kind == "service"] + [
        item for item in newest_first if item.kind != "service"
    ]:
        try:
            if item.kind == "command":
                spec: commands.CommandSpec = item.details["spec"]
                if run_deletes and spec.delete:
                    try:
                        commands.run_script(spec, spec.delete, item.name, previous=item.details["result"])
                    except commands.CommandFailed as exc:
                        log.warning("delete of %s failed (ignored): %s", item.name, exc)
            elif item.kind == "container":
                engine.remove_container(api, item.id, item.details["grace_seconds"], item.details["remove_volumes"])
            elif item.kind == "service":
                engine.remove_service(api, item.id, item.details["grace_seconds"])
            elif item.kind == "secret":
                engine.remove_secret(api, item.id)
            elif item.kind == "config":
                engine.remove_config(api, item.id)
            elif item.kind == "network":
                engine.remove_network(api, item.id)
            elif item.kind == "volume" and not keep_volumes:
                engine.remove_volume(api, item.name)
        except Exception as exc:  # noqa: BLE001 - keep removing the rest, report all at the end
            failures.append(f"{item.kind} {item.name!r}: {exc}")
    return failures
