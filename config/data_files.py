"""Settings data files (environments.yaml, profiles.yaml) read into the dataclasses that name their fields."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError

Record = TypeVar("Record")


def load_dataclass(kind: type[Record], values: Any, where: str) -> Record:
    """`values` as a `kind`, every field present, none unknown, each of its type; errors name `where`."""
    if not isinstance(values, dict):
        raise ValueError(f"{where}: expected a mapping of {kind.__name__}'s fields, got {values!r}")
    fields = dataclasses.fields(kind)  # type: ignore[arg-type]
    required = {field.name for field in fields if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING}
    unknown = sorted(set(values) - {field.name for field in fields})
    missing = sorted(required - set(values))
    if unknown or missing:
        raise ValueError(f"{where}: unknown fields {unknown}, missing fields {missing}")
    try:
        return TypeAdapter(kind).validate_python(values)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, detail['loc']))}: {detail['msg']} (got {detail['input']!r})" for detail in error.errors()
        )
        raise ValueError(f"{where}: {problems}") from None
