"""The base of every settings model."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, model_validator


class Settings(BaseModel):
    """Base of every settings model: unknown keys are errors, values are immutable.

    A renamed key is listed in its model's `renamed`: old key -> "to <new key>: how to write it",
    where `{value}` stands for the old value. Setting it fails, naming the old key and the new one.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    renamed: ClassVar[dict[str, str]] = {}

    @model_validator(mode="before")
    @classmethod
    def _renamed_keys_fail_loudly(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for old, advice in cls.renamed.items():
                if old in data:
                    raise ValueError(f"{old} was renamed {advice.format(value=data[old])}")
        return data
