"""Reading resource inputs as the mock monitor delivers them.

Inputs arrive in wire form: camelCase names, numbers as floats, and secret values wrapped in a
signature object (possibly nested). `Fields` reads them with types and remembers which names
were read, so an input that no mapping understands fails loudly instead of being dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Wire signature of a secret value (pulumi.runtime.rpc._special_sig_key / _special_secret_sig).
SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"


class UnsupportedInput(ValueError):
    """An input the harness does not know how to apply, or a value it cannot interpret."""


def is_secret_wrapper(value: Any) -> bool:
    return isinstance(value, Mapping) and value.get(SIG_KEY) == SECRET_SIG


def unwrap_secrets(value: Any) -> Any:
    """The value with every secret wrapper (at any depth) replaced by the value it wraps."""
    if is_secret_wrapper(value):
        return unwrap_secrets(value.get("value"))
    if isinstance(value, Mapping):
        return {key: unwrap_secrets(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [unwrap_secrets(item) for item in value]
    return value


def contains_secret(value: Any) -> bool:
    """Whether a secret wrapper occurs anywhere in the value."""
    if is_secret_wrapper(value):
        return True
    if isinstance(value, Mapping):
        return any(contains_secret(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return any(contains_secret(item) for item in value)
    return False


def wrap_secret(value: Any) -> dict[str, Any]:
    """A value in the wire form that the SDK deserializes as a secret Output."""
    return {SIG_KEY: SECRET_SIG, "value": value}


class Fields:
    """Typed, accounted access to one object of wire inputs.

    Every getter marks its name as understood; `finish()` raises `UnsupportedInput` naming any
    input that was present but never read (recursively for nested objects).
    """

    def __init__(self, values: Mapping[str, Any], where: str) -> None:
        self._values = {key: value for key, value in unwrap_secrets(dict(values)).items() if value is not None}
        self._where = where
        self._read: set[str] = set()
        self._children: list[Fields] = []

    @property
    def where(self) -> str:
        return self._where

    def path(self, name: str) -> str:
        return f"{self._where}.{name}"

    def has(self, name: str) -> bool:
        return name in self._values

    def accept(self, *names: str) -> None:
        """Mark inputs as understood although they change nothing here (triggers, provider-side state)."""
        self._read.update(names)

    def raw(self, name: str, default: Any = None) -> Any:
        self._read.add(name)
        return self._values.get(name, default)

    def error(self, name: str, message: str) -> UnsupportedInput:
        return UnsupportedInput(f"{self.path(name)}: {message}")

    def string(self, name: str, default: str | None = None) -> str | None:
        value = self.raw(name)
        if value is None:
            return default
        if not isinstance(value, str):
            raise self.error(name, f"expected a string, got {value!r}")
        return value

    def required_string(self, name: str) -> str:
        value = self.string(name)
        if value is None or value == "":
            raise self.error(name, "is required")
        return value

    def boolean(self, name: str, default: bool | None = None) -> bool | None:
        value = self.raw(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.error(name, f"expected a boolean, got {value!r}")
        return value

    def flag(self, name: str, default: bool) -> bool:
        value = self.boolean(name)
        return default if value is None else value

    def integer(self, name: str, default: int | None = None) -> int | None:
        value = self.raw(name)
        if value is None:
            return default
        # Numbers travel as floats on the wire; only whole numbers are valid integers.
        if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
            raise self.error(name, f"expected an integer, got {value!r}")
        return int(value)

    def strings(self, name: str) -> list[str]:
        value = self.raw(name)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self.error(name, f"expected a list of strings, got {value!r}")
        return list(value)

    def string_map(self, name: str) -> dict[str, str]:
        value = self.raw(name)
        if value is None:
            return {}
        if not isinstance(value, Mapping) or not all(isinstance(item, str) for item in value.values()):
            raise self.error(name, f"expected a map of strings, got {value!r}")
        return dict(value)

    def obj(self, name: str) -> Fields | None:
        value = self.raw(name)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise self.error(name, f"expected an object, got {value!r}")
        child = Fields(value, self.path(name))
        self._children.append(child)
        return child

    def objects(self, name: str) -> list[Fields]:
        value = self.raw(name)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
            raise self.error(name, f"expected a list of objects, got {value!r}")
        children = [Fields(item, f"{self.path(name)}[{index}]") for index, item in enumerate(value)]
        self._children.extend(children)
        return children

    def unread(self) -> list[str]:
        names = [self.path(name) for name in self._values if name not in self._read]
        for child in self._children:
            names.extend(child.unread())
        return names

    def finish(self) -> None:
        unread = [name.removeprefix(self._where + ".") for name in self.unread()]
        if unread:
            raise UnsupportedInput(
                f"{self._where}: input not supported by the harness (it would be silently ignored): "
                + ", ".join(sorted(unread))
            )
