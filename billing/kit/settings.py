"""Configuration, read once from the environment and `.env` (see README)."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEV_JWT_SECRET = "dev-only-insecure-jwt-secret-change-me-0123456789"  # noqa: S105
"""The secret `make run` uses for development tokens; refused in production."""

CommaList = Annotated[list[str], NoDecode]


def _split(value: object) -> object:
    """Split a comma-separated environment value into a list of stripped items."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


TEST_STRIPE_RATE = 20.0
"""Default STRIPE_RATE_LIMIT for test-mode keys (Stripe allows 25 requests/s)."""
LIVE_STRIPE_RATE = 80.0
"""Default STRIPE_RATE_LIMIT for live keys (Stripe allows 100 requests/s)."""

DATABASE_SCHEMES = ("sqlite+aiosqlite://", "postgresql+asyncpg://")

APP_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
"""A name of APP_URLS (the `app` argument)."""
_URL_PATH = re.compile(r"(/[A-Za-z0-9._~!$&'()*+,;=:@-]+)*")
"""An app URL's path: plain segments, nothing encoded, no empty segment."""


def checked_app_url(name: str, value: str) -> str:
    """An app URL (APP_URL, or one of APP_URLS): absolute http(s), a host, no user info, query
    or fragment, and a path of plain segments (no `.`/`..`, `//`, `\\` or percent-encoding, so
    a return path joined to it cannot climb out of it); the trailing slash dropped."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{name} must be an absolute http(s) URL, e.g. https://app.example.com")
    if parts.query or parts.fragment or "?" in value or "#" in value:
        raise ValueError(f"{name} must not have a query or fragment")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{name} must not carry user info")
    path = parts.path.rstrip("/")
    if not _URL_PATH.fullmatch(path) or any(seg in (".", "..") for seg in path.split("/")):
        raise ValueError(f"{name} must have a plain path (no ., .., //, \\ or %-escapes)")
    return value.rstrip("/")


class Settings(BaseSettings):
    """Every setting of the service; names match the environment variables."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    database_url: str = "sqlite+aiosqlite:///./billing.db"
    stripe_secret_key: SecretStr | None = None
    stripe_api_base: str | None = None
    stripe_webhook_secret: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    stripe_timeout: float = Field(default=10.0, gt=0, le=120)
    stripe_max_retries: int = Field(default=2, ge=0, le=5)
    stripe_rate_limit: float | None = Field(default=None, gt=0, le=10_000)
    app_url: str = "http://localhost:3000"
    app_urls: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    """More client apps by name (`APP_URLS=ios=https://...,android=https://...`): the
    universal links / app links a mutation's `app` argument picks."""
    plans_file: Path = Path("plans.toml")
    auth_jwt_secret: SecretStr | None = None
    auth_jwks_url: str | None = None
    auth_issuer: str | None = None
    auth_audience: str | None = None
    auth_org_claim: str = "org_id"
    auth_role_claim: str = "org_role"
    billing_roles: CommaList = Field(default_factory=lambda: ["owner", "admin"])
    billing_rate_limit: int = Field(default=30, ge=1)
    cors_origins: CommaList = Field(default_factory=list)
    environment: Literal["development", "production"] = "development"
    webhook_tolerance: int = Field(default=300, ge=1)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    webhook_applier: Literal["server", "worker"] = "server"
    """Where stored events are applied: in every API process, or only by `main.py worker`."""
    metrics_token: SecretStr | None = None
    """Bearer token `GET /metrics` asks for; in production it is not served while unset."""
    ws_max_connections: int = Field(default=5000, ge=1)
    """Open WebSocket connections one process accepts; more are refused with 503."""
    ws_max_subscriptions: int = Field(default=10, ge=1, le=1000)
    """Subscriptions one WebSocket connection may run at once."""
    ws_max_message_bytes: int = Field(default=16 * 1024, ge=1024, le=1024 * 1024)
    """Largest message a client may send over the WebSocket; a larger one closes it (1009)."""
    ws_keepalive: float = Field(default=20.0, gt=0, le=600)
    """Seconds between keepalive pings; a client that answers no ping, or takes no message,
    within as long again is dropped."""
    log_format: Literal["text", "json"] = "text"
    """How log lines look on stderr: `text` for people, `json` for one JSON object per line."""

    _split_lists = field_validator("billing_roles", "cors_origins", mode="before")(_split)

    @field_validator(
        "stripe_secret_key",
        "stripe_api_base",
        "stripe_rate_limit",
        "auth_jwt_secret",
        "auth_jwks_url",
        "auth_issuer",
        "auth_audience",
        "metrics_token",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        """`NAME=` (empty or blank) in the environment means unset, not an empty secret."""
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        """The two drivers the service supports (its upserts speak their dialects)."""
        if not value.startswith(DATABASE_SCHEMES):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @field_validator("cors_origins")
    @classmethod
    def _check_cors_origins(cls, value: list[str]) -> list[str]:
        """Explicit origins only: credentials are allowed for them, so never `*` or a pattern."""
        origins = []
        for origin in value:
            parts = urlsplit(origin)
            if (
                parts.scheme not in ("http", "https")
                or not parts.hostname
                or "*" in origin
                or parts.path not in ("", "/")
                or parts.query
                or parts.fragment
                or parts.username is not None
            ):
                raise ValueError(
                    f"CORS_ORIGINS entries must be origins like https://app.example.com, "
                    f"not {origin!r}"
                )
            origins.append(f"{parts.scheme}://{parts.netloc}".lower())
        return origins

    @field_validator("stripe_webhook_secret", mode="before")
    @classmethod
    def _split_secrets(cls, value: object) -> object:
        """Accept several webhook secrets, comma-separated, for rotation."""
        return _split(value)

    @field_validator("app_url")
    @classmethod
    def _check_app_url(cls, value: str) -> str:
        """APP_URL must be an absolute http(s) URL without query, fragment or path tricks."""
        return checked_app_url("APP_URL", value)

    @field_validator("app_urls", mode="before")
    @classmethod
    def _parse_app_urls(cls, value: object) -> object:
        """`name=url` pairs, comma-separated, into a dict (a name given twice is refused)."""
        if not isinstance(value, str):
            return value
        apps: dict[str, str] = {}
        for item in value.split(","):
            if not item.strip():
                continue
            name, sep, url = item.partition("=")
            name = name.strip()
            if not sep or not name:
                raise ValueError(f"APP_URLS entries must be name=url, not {item!r}")
            if name in apps:
                raise ValueError(f"APP_URLS names {name!r} twice")
            apps[name] = url.strip()
        return apps

    @field_validator("app_urls")
    @classmethod
    def _check_app_urls(cls, value: dict[str, str]) -> dict[str, str]:
        """Names of lower-case letters, digits and `-`; each URL under APP_URL's rules."""
        checked = {}
        for name, url in value.items():
            if not APP_NAME.fullmatch(name):
                raise ValueError(f"APP_URLS name {name!r} must be lower-case letters, digits and -")
            checked[name] = checked_app_url(f"APP_URLS {name}", url)
        return checked

    @model_validator(mode="after")
    def _check_production(self) -> Settings:
        """Refuse to run in production without the secrets it needs."""
        if self.environment != "production":
            return self
        missing = []
        if self.stripe_secret_key is None:
            missing.append("STRIPE_SECRET_KEY")
        if not self.stripe_webhook_secret:
            missing.append("STRIPE_WEBHOOK_SECRET")
        if self.auth_jwt_secret is None and self.auth_jwks_url is None:
            missing.append("AUTH_JWT_SECRET or AUTH_JWKS_URL")
        if missing:
            raise ValueError(f"ENVIRONMENT=production needs {', '.join(missing)}")
        for name, url in [("APP_URL", self.app_url), *self.app_urls.items()]:
            if not url.startswith("https://"):
                where = name if name == "APP_URL" else f"APP_URLS {name}"
                raise ValueError(f"{where} must be an https:// URL in production")
        if self.auth_jwks_url is not None:
            self._check_production_jwks()
        if self.auth_jwt_secret is not None:
            secret = self.auth_jwt_secret.get_secret_value()
            if secret == DEV_JWT_SECRET:
                raise ValueError("AUTH_JWT_SECRET is the development secret; set a real one")
            if len(secret) < 32:
                raise ValueError("AUTH_JWT_SECRET must be at least 32 characters in production")
        if self.metrics_token is not None and len(self.metrics_token.get_secret_value()) < 16:
            raise ValueError("METRICS_TOKEN must be at least 16 characters in production")
        return self

    def _check_production_jwks(self) -> None:
        """A production JWKS needs https and both AUTH_ISSUER and AUTH_AUDIENCE.

        Without them a token the same identity provider tenant issued for another
        application would be accepted here.
        """
        if not str(self.auth_jwks_url).startswith("https://"):
            raise ValueError("AUTH_JWKS_URL must be an https:// URL in production")
        unset = [
            name
            for name, value in (
                ("AUTH_ISSUER", self.auth_issuer),
                ("AUTH_AUDIENCE", self.auth_audience),
            )
            if value is None
        ]
        if unset:
            raise ValueError(f"AUTH_JWKS_URL in production needs {' and '.join(unset)}")

    @property
    def production(self) -> bool:
        """True when running with ENVIRONMENT=production."""
        return self.environment == "production"

    @property
    def stripe_rate(self) -> float:
        """Stripe requests per second this process may make (STRIPE_RATE_LIMIT).

        Unset: safely under Stripe's own limits, 25/s in test mode and 100/s live."""
        if self.stripe_rate_limit is not None:
            return self.stripe_rate_limit
        key = self.stripe_secret_key.get_secret_value() if self.stripe_secret_key else ""
        return LIVE_STRIPE_RATE if key.startswith(("sk_live_", "rk_live_")) else TEST_STRIPE_RATE

    @property
    def webhook_secrets(self) -> list[str]:
        """The webhook signing secrets in clear, newest first as configured."""
        return [secret.get_secret_value() for secret in self.stripe_webhook_secret]


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
