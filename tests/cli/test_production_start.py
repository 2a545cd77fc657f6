"""Production refuses to start without its secrets or with the development JWT secret:
`python main.py serve` exits non-zero with a one-line error, and Settings says why."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from billing.kit.settings import DEV_JWT_SECRET, Settings
from harness.cli import MAIN, invoke_cli
from harness.servers import ThreadedServer, free_port, wait_healthy
from harness.stack import PLANS

GOOD_SECRET = "a-real-production-secret-of-48-characters-000000"
PRODUCTION: dict[str, str | None] = {
    "ENVIRONMENT": "production",
    "STRIPE_SECRET_KEY": "sk_live_example",
    "STRIPE_WEBHOOK_SECRET": "whsec_example",
    "AUTH_JWT_SECRET": GOOD_SECRET,
    "APP_URL": "https://app.example.com",
}

JWKS_PRODUCTION = {
    **PRODUCTION,
    "AUTH_JWT_SECRET": None,
    "AUTH_JWKS_URL": "https://idp.example/.well-known/jwks.json",
    "AUTH_ISSUER": "https://idp.example/",
    "AUTH_AUDIENCE": "billing-api",
}


def clean_env(tmp_path: Path, **values: str | None) -> dict[str, str]:
    """The parent's environment without any service setting, plus these values."""
    names = {name.upper() for name in Settings.model_fields}
    env = {k: v for k, v in os.environ.items() if k.upper() not in names}
    env["DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'prod.sqlite'}"
    env["PLANS_FILE"] = str(PLANS)
    env.update({k: v for k, v in values.items() if v is not None})
    return env


def serve(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run `python main.py serve` from an empty directory (no .env of the repository)."""
    return subprocess.run(
        [sys.executable, str(MAIN), "serve", "--port", str(free_port())],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


REFUSALS: dict[str, tuple[dict[str, str | None], list[str]]] = {
    "nothing set": (
        {"ENVIRONMENT": "production"},
        ["STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "AUTH_JWT_SECRET or AUTH_JWKS_URL"],
    ),
    "no Stripe key": ({**PRODUCTION, "STRIPE_SECRET_KEY": None}, ["STRIPE_SECRET_KEY"]),
    "blank Stripe key": ({**PRODUCTION, "STRIPE_SECRET_KEY": "  "}, ["STRIPE_SECRET_KEY"]),
    "no webhook secret": ({**PRODUCTION, "STRIPE_WEBHOOK_SECRET": None}, ["STRIPE_WEBHOOK_SECRET"]),
    "blank webhook secrets": (
        {**PRODUCTION, "STRIPE_WEBHOOK_SECRET": " , "},
        ["STRIPE_WEBHOOK_SECRET"],
    ),
    "no token verification": ({**PRODUCTION, "AUTH_JWT_SECRET": None}, ["AUTH_JWKS_URL"]),
    "JWKS without issuer or audience": (
        {**JWKS_PRODUCTION, "AUTH_ISSUER": None, "AUTH_AUDIENCE": None},
        ["AUTH_JWKS_URL in production needs AUTH_ISSUER and AUTH_AUDIENCE"],
    ),
    "JWKS without audience": (
        {**JWKS_PRODUCTION, "AUTH_AUDIENCE": " "},
        ["AUTH_JWKS_URL in production needs AUTH_AUDIENCE"],
    ),
    "JWKS without issuer": (
        {**JWKS_PRODUCTION, "AUTH_ISSUER": None},
        ["AUTH_JWKS_URL in production needs AUTH_ISSUER"],
    ),
    "JWKS and secret, no audience": (
        {**JWKS_PRODUCTION, "AUTH_JWT_SECRET": GOOD_SECRET, "AUTH_AUDIENCE": None},
        ["needs AUTH_AUDIENCE"],
    ),
    "blank JWKS URL only": (
        {**PRODUCTION, "AUTH_JWT_SECRET": None, "AUTH_JWKS_URL": ""},
        ["AUTH_JWKS_URL"],
    ),
    "development JWT secret": (
        {**PRODUCTION, "AUTH_JWT_SECRET": DEV_JWT_SECRET},
        ["development secret"],
    ),
    "short JWT secret": ({**PRODUCTION, "AUTH_JWT_SECRET": "short-secret"}, ["32 characters"]),
    "plain-http APP_URL": (
        {**PRODUCTION, "APP_URL": "http://app.example.com"},
        ["APP_URL must be an https:// URL in production"],
    ),
    "plain-http app of APP_URLS": (
        {**PRODUCTION, "APP_URLS": "ios=https://links.example.com/ios,android=http://x.example"},
        ["APP_URLS android must be an https:// URL in production"],
    ),
    "app URL climbing out of its path": (
        {**PRODUCTION, "APP_URLS": "ios=https://links.example.com/ios/../admin"},
        ["APP_URLS ios must have a plain path"],
    ),
    "plain-http JWKS": (
        {**PRODUCTION, "AUTH_JWT_SECRET": None, "AUTH_JWKS_URL": "http://idp.example/jwks"},
        ["https"],
    ),
}


def settings_only(tmp_path: Path, **values: str | None) -> dict[str, str | None]:
    """`clean_env` for a command run in this process: every other service setting unset."""
    unset: dict[str, str | None] = {name.upper(): None for name in Settings.model_fields}
    return {**unset, **clean_env(tmp_path, **values)}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_production_serve_refuses_to_start(tmp_path: Path, case: str) -> None:
    """`serve` in this process (a tenth of a second; the refusal comes before uvicorn starts):
    `.env`'s refusal below runs the real process."""
    values, expected = REFUSALS[case]
    result = invoke_cli(
        "serve", "--port", str(free_port()), env=settings_only(tmp_path, **values), cwd=tmp_path
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr  # one line, no traceback
    assert lines[0].startswith("error:"), lines
    for fragment in expected:
        assert fragment in lines[0], (fragment, lines[0])
    for secret in (DEV_JWT_SECRET, "sk_live_example", "whsec_example", GOOD_SECRET):
        assert secret not in result.stderr + result.stdout


def test_production_refuses_the_development_secret_from_a_dot_env(tmp_path: Path) -> None:
    """`.env` in the working directory is read too, and checked the same way."""
    lines = [f"{k}={v}" for k, v in {**PRODUCTION, "AUTH_JWT_SECRET": DEV_JWT_SECRET}.items()]
    (tmp_path / ".env").write_text("\n".join(lines) + "\n")
    result = serve(tmp_path, clean_env(tmp_path))
    assert result.returncode != 0
    assert "development secret" in result.stderr


def spawn_serve(cwd: Path, env: dict[str, str], port: int) -> subprocess.Popen[str]:
    """`main.py serve` on `port`, started and not waited for; its stderr kept."""
    return subprocess.Popen(
        [sys.executable, str(MAIN), "serve", "--port", str(port)],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("values", [PRODUCTION, JWKS_PRODUCTION], ids=["secret", "jwks"])
def test_production_with_its_secrets_starts(tmp_path: Path, values: dict[str, str | None]) -> None:
    """The refusals above are about the secrets: with them, the same command serves."""
    port = free_port()
    process = spawn_serve(tmp_path, clean_env(tmp_path, **values), port)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", process, timeout=30)
        page = httpx.get(f"http://127.0.0.1:{port}/graphql", headers={"accept": "text/html"})
        assert "graphiql" not in page.text.lower()
    finally:
        process.terminate()
        process.wait(timeout=10)


async def healthy(request: Request) -> PlainTextResponse:
    """A health check that says yes."""
    return PlainTextResponse("ok")


def test_a_server_already_on_the_port_is_not_taken_for_the_one_started(tmp_path: Path) -> None:
    """Another server answers /healthz on the port: the wait sees the started process exit
    (its port is taken) instead of returning as if it were up."""
    other = ThreadedServer(Starlette(routes=[Route("/healthz", healthy)])).start()
    process = spawn_serve(tmp_path, clean_env(tmp_path), other.port)
    try:
        assert httpx.get(f"{other.url}/healthz").status_code == 200
        with pytest.raises(AssertionError, match=f"exited with 1 before.*port {other.port}"):
            wait_healthy(other.url, process, timeout=30)
    finally:
        process.kill()
        process.wait(timeout=10)
        other.stop()


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)


PRODUCTION_VALUES = {
    "environment": "production",
    "stripe_secret_key": "sk_live_example",
    "stripe_webhook_secret": "whsec_example",
    "auth_jwt_secret": GOOD_SECRET,
    "app_url": "https://app.example.com",
}


def test_settings_validation_in_production() -> None:
    assert settings(**PRODUCTION_VALUES).production
    jwks_values = {
        **PRODUCTION_VALUES,
        "auth_jwt_secret": None,
        "auth_jwks_url": "https://idp.example/jwks",
        "auth_issuer": "https://idp.example/",
        "auth_audience": "billing-api",
    }
    assert settings(**jwks_values).production
    for unset in ("auth_issuer", "auth_audience"):
        with pytest.raises(ValidationError, match=f"needs {unset.upper()}"):
            settings(**{**jwks_values, unset: None})
    with pytest.raises(ValidationError, match="needs AUTH_ISSUER and AUTH_AUDIENCE"):
        settings(**{**jwks_values, "auth_issuer": "", "auth_audience": None})
    # Outside production a JWKS alone is still fine (local identity provider experiments).
    assert not settings(auth_jwks_url="http://127.0.0.1:9/jwks").production
    with pytest.raises(ValidationError, match="development secret"):
        settings(**{**PRODUCTION_VALUES, "auth_jwt_secret": DEV_JWT_SECRET})
    with pytest.raises(ValidationError, match="STRIPE_SECRET_KEY"):
        settings(**{**PRODUCTION_VALUES, "stripe_secret_key": ""})
    with pytest.raises(ValidationError, match="STRIPE_WEBHOOK_SECRET"):
        settings(**{**PRODUCTION_VALUES, "stripe_webhook_secret": []})
    with pytest.raises(ValidationError, match="32 characters"):
        settings(**{**PRODUCTION_VALUES, "auth_jwt_secret": "x" * 31})
    with pytest.raises(ValidationError, match="https"):
        settings(
            **{
                **PRODUCTION_VALUES,
                "auth_jwt_secret": None,
                "auth_jwks_url": "http://idp.example/jwks",
            }
        )


def test_development_accepts_the_development_secret_and_blank_values() -> None:
    dev = settings(auth_jwt_secret=DEV_JWT_SECRET, auth_issuer="", auth_audience=" ")
    assert not dev.production
    # A blank variable means unset: an empty issuer would otherwise refuse every token.
    assert dev.auth_issuer is None and dev.auth_audience is None
