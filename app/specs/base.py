"""The base of every stage spec."""

from typing import Any, Self

from pydantic import BaseModel, ConfigDict, ValidationError


class SpecError(ValueError):
    """A stored or given spec that does not validate; the message names each bad field."""


class StageSpec(BaseModel):
    """A stage's parameters. Every field has a type, bounds, a default where one makes sense,
    and a one-line `description` that forms show as help."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def to_parameters(self) -> dict[str, Any]:
        """What a job row stores: plain JSON."""
        return self.model_dump(mode="json")

    @classmethod
    def from_parameters(cls, parameters: dict[str, Any]) -> Self:
        """The spec a job row stored; a bad field raises SpecError naming it."""
        try:
            return cls.model_validate(parameters)
        except ValidationError as exc:
            raise SpecError(f"{cls.__name__}: {describe_errors(exc)}") from exc


def describe_errors(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'spec'}: {error['msg']}"
        for error in exc.errors()
    )
