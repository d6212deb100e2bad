"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect
from sqlmodel import SQLModel

import app.models  # noqa: F401
from app.migrate import upgrade_to_head


def differences(url: str) -> list[object]:
    upgrade_to_head(url)
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, SQLModel.metadata))
    finally:
        engine.dispose()


def test_migrations_match_the_models_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.sqlite'}"
    assert differences(url) == []
    tables = set(inspect(create_engine(url)).get_table_names())
    assert {"user", "job", "prompt", "prompt_set", "audit_event", "user_session"} <= tables


@pytest.mark.services
def test_migrations_match_the_models_on_postgresql(postgres_url: str) -> None:
    assert differences(postgres_url) == []


def test_a_model_change_without_a_migration_is_noticed(tmp_path: Path) -> None:
    from sqlalchemy import Column, Integer, Table

    url = f"sqlite:///{tmp_path / 'm.sqlite'}"
    extra = Table("not_migrated", SQLModel.metadata, Column("id", Integer, primary_key=True))
    try:
        assert any("not_migrated" in str(diff) for diff in differences(url))
    finally:
        SQLModel.metadata.remove(extra)


def test_models_registered_before_the_training_migration_become_policies(tmp_path: Path) -> None:
    from alembic import command
    from sqlalchemy import text

    from app.migrate import alembic_config

    url = f"sqlite:///{tmp_path / 'm.sqlite'}"
    command.upgrade(alembic_config(url), "dc76ad088aae")  # the schema before datasets
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO language_model (name, backend, path, base_url, api_key_env, "
                    "description, created_at) VALUES ('old', 'transformers', 'p', '', '', '', "
                    "'2026-11-24 00:00:00')"
                )
            )
        upgrade_to_head(url)
        with engine.connect() as connection:
            row = connection.execute(
                text("SELECT kind, dataset_id FROM language_model WHERE name = 'old'")
            ).one()
        assert tuple(row) == ("policy", None)
    finally:
        engine.dispose()
