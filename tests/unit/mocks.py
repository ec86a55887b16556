"""Mocks that record every resource the program declares, with the outputs a provider would return."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from components.runtime.files import STAGING_DIR

SECRET_SIG = "4dabf18193072939515e22adb298388d"
CONTAINER = "docker:index/container:Container"


@dataclass
class Declared:
    """One resource as the program declared it."""

    type: str
    name: str
    inputs: dict[str, Any]

    def value(self, key: str) -> Any:
        """An input with secret wrappers removed."""
        return unwrap(self.inputs.get(key))

    def is_secret(self, key: str) -> bool:
        """Whether the input arrived marked secret (anywhere inside it)."""
        return contains_secret(self.inputs.get(key))


def unwrap(value: Any) -> Any:
    """A mock input with Pulumi's secret wrappers removed."""
    if isinstance(value, dict):
        if SECRET_SIG in value:
            return unwrap(value["value"])
        return {key: unwrap(item) for key, item in value.items()}
    if isinstance(value, list):
        return [unwrap(item) for item in value]
    return value


def contains_secret(value: Any) -> bool:
    """Whether a mock input holds a secret anywhere inside it."""
    if isinstance(value, dict):
        return SECRET_SIG in value or any(contains_secret(item) for item in value.values())
    if isinstance(value, list):
        return any(contains_secret(item) for item in value)
    return False


class RecordingMocks(pulumi.runtime.Mocks):
    """Records declarations; answers with the outputs the program reads back."""

    def __init__(self) -> None:
        self.declared: list[Declared] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.declared.append(Declared(type=args.typ, name=args.name, inputs=dict(args.inputs)))
        outputs = dict(args.inputs)
        if args.typ == "random:index/randomPassword:RandomPassword":
            outputs["result"] = f"generated-{args.name}"
        elif args.typ == "docker:index/remoteImage:RemoteImage":
            outputs["imageId"] = f"sha256:{args.inputs['name']}"
        elif args.typ == "tls:index/privateKey:PrivateKey":
            outputs["privateKeyPem"] = f"PRIVATE KEY {args.name}\n"
        elif args.typ in ("tls:index/selfSignedCert:SelfSignedCert", "tls:index/locallySignedCert:LocallySignedCert"):
            outputs["certPem"] = f"CERTIFICATE {args.name}\n"
        elif args.typ == "tls:index/certRequest:CertRequest":
            outputs["certRequestPem"] = f"CERTIFICATE REQUEST {args.name}\n"
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        return {}

    def of_type(self, type_token: str) -> list[Declared]:
        """Every declared resource of one type."""
        return [resource for resource in self.declared if resource.type == type_token]

    def files(self, container: str) -> dict[str, Any]:
        """Every file a container reads, by path, with its content (secret wrappers removed):
        its uploads and the files its preparing container puts on its file volumes."""
        files = {upload["file"]: upload["content"] for upload in self.named(container, CONTAINER).value("uploads") or []}
        prepared = [r for r in self.declared if r.name == f"{container}-files" and r.type == CONTAINER]
        for upload in prepared[0].value("uploads") if prepared else []:
            files[upload["file"].removeprefix(STAGING_DIR)] = upload["content"]
        return files

    def named(self, name: str, type_token: str | None = None) -> Declared:
        """The one declared resource with this logical name (and type, when given)."""
        matches = [r for r in self.declared if r.name == name and type_token in (None, r.type)]
        assert len(matches) == 1, f"expected one resource named {name}, found {len(matches)}"
        return matches[0]
