"""Configuration, read once from the environment and `.env`."""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
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
    # Send the session and CSRF cookies over HTTPS only. Unset means "true when
    # ENVIRONMENT=production, false otherwise"; set it false only for production over plain HTTP.
    SESSION_COOKIE_SECURE: bool | None = None
    SESSION_HOURS: int = 24 * 7
    # Sign-in throttling. Failures are counted in the database, so every web process sees
    # them. Within the window, an account that has had SIGN_IN_FAILURES_PER_ACCOUNT wrong
    # passwords, or a client address that has sent SIGN_IN_FAILURES_PER_ADDRESS, is answered
    # 429 with Retry-After until its oldest failure leaves the window; a success clears the
    # account's count. Per account guesses one password slowly; per address (higher, since an
    # office may share one) stops one client spraying passwords over many accounts.
    SIGN_IN_WINDOW_SECONDS: int = Field(default=15 * 60, ge=1)
    SIGN_IN_FAILURES_PER_ACCOUNT: int = Field(default=5, ge=1)
    SIGN_IN_FAILURES_PER_ADDRESS: int = Field(default=20, ge=1)
    MAX_UPLOAD_MB: int = 200
    # Uploads up to this size are parsed while the form is submitted, so a bad line is
    # reported on the form at once; bigger ones are checked by the import job.
    CHECK_UPLOAD_IN_REQUEST_MB: float = 20
    # A running job whose worker has not written a heartbeat for this long is shown as lost.
    JOB_LOST_AFTER_SECONDS: int = 120
    JOB_HEARTBEAT_SECONDS: int = 10
    # A chunk's claim lasts this long; its worker's heartbeat extends it every
    # JOB_HEARTBEAT_SECONDS, so it runs out only when the worker died or lost the database.
    CHUNK_LEASE_SECONDS: int = Field(default=60, ge=1)
    # A running chunk writes its step (its lease, the job's message) at most this often: the
    # run page polls once a second, and with K workers on SQLite every write waits its turn at
    # the one writer lock. Every step still checks for a cancel. 0: every step writes.
    CHUNK_STEP_WRITE_SECONDS: float = Field(default=1.0, ge=0)
    # Claims of one chunk (or sends of a lost job) before the run is failed with its error.
    CHUNK_MAX_ATTEMPTS: int = Field(default=3, ge=1)
    # How often each worker's sweeper re-queues expired chunks and re-sends lost jobs.
    SWEEP_SECONDS: float = Field(default=10, gt=0)
    ADMIN_USERNAME: str = "admin"
    ADMIN_PASSWORD: str = ""
    # OpenAI-compatible servers. The worker sends the value of a model's key variable to the
    # model's server, so only variables the operator names may hold keys (any starting with
    # the prefix, or listed), and only admins may register a server outside OPENAI_BASE_URLS
    # (comma-separated base URLs; a model's URL must have the same scheme, host and port and
    # lie under the path).
    API_KEY_ENV_PREFIX: str = "CAI_API_KEY_"
    API_KEY_ENVS: str = ""
    OPENAI_BASE_URLS: str = ""
    # Which backend runs a registered GGUF file in the worker: "auto" takes llama.cpp where
    # llama-cpp-python (the `llama` extra, `make install-llama`) is installed, else transformers;
    # training always uses transformers. LLAMA_CPP_CONTEXT is llama.cpp's context in tokens.
    GGUF_BACKEND: Literal["auto", "llama_cpp", "transformers"] = "auto"
    LLAMA_CPP_CONTEXT: int = Field(default=4096, ge=256, le=131072)

    @field_validator("SESSION_COOKIE_SECURE", mode="before")
    @classmethod
    def _empty_means_unset(cls, value: object) -> object:
        # `SESSION_COOKIE_SECURE=` (as compose writes an unset variable) means the default.
        return None if value == "" else value

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

    @property
    def session_cookie_secure(self) -> bool:
        if self.SESSION_COOKIE_SECURE is None:
            return self.ENVIRONMENT == "production"
        return self.SESSION_COOKIE_SECURE

    @property
    def allowed_api_key_envs(self) -> set[str]:
        return {name.strip() for name in self.API_KEY_ENVS.split(",") if name.strip()}

    @property
    def allowed_base_urls(self) -> list[str]:
        return [url.strip() for url in self.OPENAI_BASE_URLS.split(",") if url.strip()]


@lru_cache
def get_settings() -> Settings:
    settings = Settings()
    settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
    return settings
