from enum import StrEnum

from sqlalchemy import Enum


def enum_column_type(enum: type[StrEnum]) -> Enum:
    """Stores an enum's values as plain strings: no PostgreSQL enum type to migrate later."""
    return Enum(
        enum,
        native_enum=False,
        create_constraint=False,
        length=16,
        values_callable=lambda members: [member.value for member in members],
    )
