"""`pulumi preview --policy-pack policy` without the Pulumi CLI: the program under Pulumi's mocks, every
resource it registers analysed by the policy pack as the engine hands it over.

The engine sends the policy pack each resource's registered inputs (serialized, with secrets and
values unknown during a preview marked as such), its URN and its options; the pack's analyzer
answers with diagnostics. Here the mock monitor's registration requests are that input, and the
pack's own analyzer (pulumi_policy's servicer, the code `pulumi preview` talks to) gives the answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format
import pulumi
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.proto import analyzer_pb2
from pulumi_policy import EnforcementLevel, PolicyCustomTimeouts, PolicyResourceOptions, ResourceValidationArgs
from pulumi_policy.deserialize import deserialize_properties
from pulumi_policy.policy import _PolicyAnalyzerServicer
from pulumi_policy.proxy import unknown_checking_proxy

from policy.rules import POLICIES
from tests.program import run_program

PACK = "selfhosted"


@dataclass(frozen=True)
class Registered:
    """One resource registration as the engine receives it."""

    urn: str
    request: Any
    """The monitor's RegisterResourceRequest: type, name, serialized inputs (`object`), options."""


@dataclass(frozen=True)
class Diagnostic:
    """One finding of the policy pack."""

    policy: str
    urn: str
    message: str
    mandatory: bool


@contextmanager
def registrations() -> Iterator[list[Registered]]:
    """Every resource registered with the mock monitor while the context is open, in order."""
    recorded: list[Registered] = []
    register = MockMonitor.RegisterResource

    def watched(monitor: MockMonitor, request: Any) -> Any:
        response = register(monitor, request)
        recorded.append(Registered(urn=response.urn, request=request))
        return response

    MockMonitor.RegisterResource = watched  # type: ignore[method-assign]
    try:
        yield recorded
    finally:
        MockMonitor.RegisterResource = register  # type: ignore[method-assign]


def declared(
    mocks: pulumi.runtime.Mocks, stack: str, preview: bool, overrides: dict[str, Any] | None = None
) -> list[Registered]:
    """Every custom resource (not a component) the program registers for `stack` (with `overrides`) under `mocks`."""
    with registrations() as registered:
        run_program(mocks, stack, preview=preview, overrides=overrides)
    return [resource for resource in registered if resource.request.custom]


def validation_args(resource: Registered, config: dict[str, Any] | None = None) -> ResourceValidationArgs:
    """What a policy's validation gets for a registered resource, built as the pack's analyzer builds it."""
    request = resource.request
    options = PolicyResourceOptions(
        request.protect, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], request.parent or None
    )
    properties = unknown_checking_proxy(deserialize_properties(json_format.MessageToDict(request.object)))
    return ResourceValidationArgs(request.type, properties, resource.urn, request.name, options, None, config)


def analyze(registered: list[Registered]) -> list[Diagnostic]:
    """The policy pack's diagnostics for each custom resource, as `pulumi preview` would show them."""
    analyzer = _PolicyAnalyzerServicer(
        PACK, "1.0.0", list(POLICIES), EnforcementLevel.MANDATORY, None, None, None, None, None, None, None
    )
    diagnostics = []
    for resource in registered:
        request = resource.request
        if not request.custom:
            continue
        response = analyzer.Analyze(
            analyzer_pb2.AnalyzeRequest(
                type=request.type,
                properties=request.object,
                urn=resource.urn,
                name=request.name,
                options=analyzer_pb2.AnalyzerResourceOptions(protect=request.protect, parent=request.parent),
            ),
            None,
        )
        diagnostics += [
            Diagnostic(
                policy=found.policyName,
                urn=found.urn or resource.urn,
                message=found.message,
                mandatory=found.enforcementLevel == analyzer_pb2.MANDATORY,
            )
            for found in response.diagnostics
        ]
    return diagnostics


def preview_with_policies(
    mocks: pulumi.runtime.Mocks, stack: str, overrides: dict[str, Any] | None = None, secrets: dict[str, str] | None = None
) -> list[Diagnostic]:
    """Preview `stack` (the program under `mocks`, preview=True) with the policy pack; its diagnostics."""
    with registrations() as registered:
        run_program(mocks, stack, preview=True, overrides=overrides, secrets=secrets)
    return analyze(registered)
