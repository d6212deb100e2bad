"""Configuration, read once from the environment and `.env`."""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRET_KEY = "change-me"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    ENVIRONMENT: Literal["development", "test", "production"] = "development"
    DATA_DIR: Path = PROJECT_ROOT / "var"
    # Empty means "a file under DATA_DIR": SQLite for the data, kombu's SQLAlchemy transport
    # on SQLite for the broker, so one machine needs no server at all.
    DATABASE_URL: str = ""
    BROKER_URL: str = ""
    SECRET_KEY: str = PLACEHOLDER_SECRET_KEY
    SESSION_COOKIE_SECURE: bool = False
    SESSION_HOURS: int = 24 * 7
    MAX_UPLOAD_MB: int = 200
    # Uploads up to this size are parsed while the form is submitted, so a bad line is
    # reported on the form at once; bigger ones are checked by the import job.
    CHECK_UPLOAD_IN_REQUEST_MB: float = 20
    # A running job whose worker has not written a heartbeat for this long is shown as lost.
    JOB_LOST_AFTER_SECONDS: int = 120
    JOB_HEARTBEAT_SECONDS: int = 10
    ADMIN_USERNAME: str = "admin"
    ADMIN_PASSWORD: str = ""

    @model_validator(mode="after")
    def _refuse_unsafe_defaults(self) -> "Settings":
        if self.ENVIRONMENT == "production" and self.SECRET_KEY == PLACEHOLDER_SECRET_KEY:
            raise ValueError(
                "SECRET_KEY is the placeholder 'change-me': set a long random SECRET_KEY "
                "(for example `python -c 'import secrets; print(secrets.token_urlsafe(48))'`) "
                "or run with ENVIRONMENT=development"
            )
        return self

    @property
    def database_url(self) -> str:
        return self.DATABASE_URL or f"sqlite:///{self.DATA_DIR / 'cai.sqlite'}"

    @property
    def broker_url(self) -> str:
        return self.BROKER_URL or f"sqla+sqlite:///{self.DATA_DIR / 'broker.sqlite'}"

    @property
    def upload_dir(self) -> Path:
        return self.DATA_DIR / "uploads"


@lru_cache
def get_settings() -> Settings:
    settings = Settings()
    settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
    return settings
