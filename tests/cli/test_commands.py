"""The command line: `python main.py dev-token` in a subprocess, as a user runs it; the other
commands through the same CLI in this process (harness.cli.invoke_cli)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import jwt
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine
from sqlmodel import SQLModel

import billing.models  # noqa: F401  (the tables, registered on SQLModel.metadata)
from billing.kit.migrations import migrate
from harness.api import JWT_SECRET
from harness.cli import invoke_cli, run_cli
from harness.stack import PLANS
from harness.stripe_side import stripe_sdk


def test_dev_token(tmp_path: Path) -> None:
    result = run_cli(
        "dev-token",
        "--org",
        "org_42",
        "--role",
        "admin",
        "--ttl",
        "60",
        env={"AUTH_JWT_SECRET": JWT_SECRET},
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    claims = jwt.decode(result.stdout.strip(), JWT_SECRET, algorithms=["HS256"])
    assert (claims["org_id"], claims["org_role"], claims["sub"]) == ("org_42", "admin", "dev-user")
    assert claims["exp"] - claims["iat"] == 60


def test_dev_token_needs_a_secret(tmp_path: Path) -> None:
    result = invoke_cli("dev-token", "--org", "org_42", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == "error: AUTH_JWT_SECRET is not set"


def test_migrate(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    for _ in range(2):
        result = invoke_cli("migrate", env={"DATABASE_URL": url}, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    with sqlite3.connect(tmp_path / "m.db") as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"billing_accounts", "entitlements", "webhook_events", "rate_limit_windows"} <= tables


def test_the_migrations_build_the_models_and_give_earlier_rows_their_quantity(
    tmp_path: Path,
) -> None:
    """Alembic's head has exactly the models' tables; rows from before the quantity column
    get the one quantity every earlier version bought, and no Stripe feature yet."""
    path = tmp_path / "m.db"
    migrate(f"sqlite+aiosqlite:///{path}", "0004")
    with sqlite3.connect(path) as conn:
        conn.executemany(
            "INSERT INTO entitlements (org_id, plan, status, cancel_at_period_end, updated_at, "
            "subscription_id) VALUES (?, 'pro', 'active', 0, '2026-01-01', ?)",
            [("org_paid", "sub_1"), ("org_never", None)],
        )
    migrate(f"sqlite+aiosqlite:///{path}")
    with sqlite3.connect(path) as conn:
        found = dict(conn.execute("SELECT org_id, quantity FROM entitlements").fetchall())
        features = dict(conn.execute("SELECT org_id, stripe_features FROM entitlements"))
    assert found == {"org_paid": 1, "org_never": None}
    assert features == {"org_paid": "[]", "org_never": "[]"}  # until their customer is re-read

    engine = create_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    engine.dispose()
    assert differences == []


@pytest.mark.parametrize(
    ("env", "argv", "message"),
    [
        (
            {"DATABASE_URL": "mysql://root:secret-pw@localhost/billing"},
            ("migrate",),
            "error: DATABASE_URL: must start with sqlite+aiosqlite:// or postgresql+asyncpg://",
        ),
        (
            {"DATABASE_URL": "sqlite+aiosqlite:///unmigrated.db", "PLANS_FILE": str(PLANS)},
            ("events", "replay"),
            "error: database: OperationalError: (sqlite3.OperationalError) no such table: "
            "webhook_events",
        ),
    ],
    ids=["unsupported-driver", "not-migrated"],
)
def test_database_problems_are_one_line(
    tmp_path: Path, env: dict[str, str], argv: tuple[str, ...], message: str
) -> None:
    result = invoke_cli(*argv, env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == message
    assert "Traceback" not in result.stderr and "secret-pw" not in result.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("default = 'gold'\n[plans.free]\nname='Free'\n", "default plan 'gold' is not defined"),
        (
            "default = 'free'\n[plans.free]\nname='Free'\n[plans.pro]\nname='Pro'\n"
            "prices.month = { lookup_key = 'k', amount = -1, currency = 'usd' }\n",
            "amount",
        ),
        ("default = \n", "not valid TOML"),
        (
            "default='free'\n[plans.free]\nname='Free'\n[portal]\nplan_switching=['pro']\n",
            "plan_switching names 'pro'",
        ),
        (
            "default='free'\n[plans.free]\nname='Free'\n[plans.team]\nname='Team'\n"
            "seats = { min = 5, max = 2 }\n",
            "plans.team.seats: min (5) must not be above max (2)",
        ),
        (
            "default='free'\n[plans.free]\nname='Free'\n[plans.team]\nname='Team'\n"
            "seats = { min = 0, max = 2 }\n",
            "plans.team.seats.min: Input should be greater than or equal to 1",
        ),
        (
            "default='free'\n[plans.free]\nname='Free'\n[plans.team]\nname='Team'\n"
            "seats = { min = 1, max = 2, step = 1 }\n",
            "plans.team.seats.step: Extra inputs are not permitted",
        ),
        (
            "default='free'\n[plans.free]\nname='Free'\nseats = { min = 1, max = 2 }\n",
            "default plan 'free' must not be per seat",
        ),
        (
            "default='free'\n[plans.free]\nname='Free'\nfeatures = ['sso']\n"
            "[features]\naudit_log = { name = 'Audit log' }\n",
            "plans.free.features: feature 'sso' is not defined under [features]",
        ),
        (
            "default='free'\n[plans.free]\nname='Free'\n[features]\nsso = { title = 'SSO' }\n",
            "features.sso.name: Field required",
        ),
        (
            "default='free'\n[plans.free]\nname='Free'\n[plans.team]\nname='Team'\n"
            "trial_card = 'optional'\n",
            "plans.team: trial_card and trial_end_without_card need trial_days",
        ),
        (
            "default='free'\n[plans.free]\nname='Free'\n[plans.team]\nname='Team'\n"
            "trial_days = 14\ntrial_end_without_card = 'pause'\n",
            "plans.team.trial_end_without_card: only a card-less trial",
        ),
        (
            "default='free'\n[plans.free]\nname='Free'\n[plans.team]\nname='Team'\n"
            "trial_days = 14\ntrial_card = 'maybe'\n",
            "plans.team.trial_card: Input should be 'required' or 'optional'",
        ),
        (
            "default='free'\n[plans.free]\nname='Free'\n[checkout]\ncoupons = true\n",
            "checkout.coupons: Extra inputs are not permitted",
        ),
        (
            "default='free'\n[plans.free]\nname='Free'\n[checkout]\nbilling_address = 'always'\n",
            "checkout.billing_address: Input should be 'auto' or 'required'",
        ),
        (
            "default='free'\n[plans.free]\nname='Free'\n[portal]\ndowngrades = 'later'\n",
            "portal.downgrades: Input should be 'immediately' or 'at_period_end'",
        ),
        (
            "default='free'\n[plans.free]\nname='Free'\n[portal]\ncustomer_update = ['age']\n",
            "portal.customer_update.0: Input should be",
        ),
        (
            "default='free'\n[plans.free]\nname='Free'\n[portal]\nretention_coupon = 'stay'\n",
            "portal.retention_coupon: coupon 'stay' is not defined under [coupons]",
        ),
        (
            "default='free'\n[plans.free]\nname='Free'\n[coupons.stay]\npercent_off = 20\n"
            "duration = 'repeating'\n",
            'coupons.stay: duration_in_months goes with duration = "repeating", and only there',
        ),
        (
            "default='free'\n[plans.free]\nname='Free'\n[coupons.stay]\npercent_off = 20\n"
            "amount_off = 500\ncurrency = 'usd'\nduration = 'once'\n",
            "coupons.stay: give exactly one of percent_off and amount_off",
        ),
        (
            "default='free'\n[plans.free]\nname='Free'\n[coupons.stay]\namount_off = 500\n"
            "duration = 'once'\n",
            "coupons.stay: amount_off needs a currency",
        ),
        (
            "default='free'\n[plans.free]\nname='Free'\n[portal]\n"
            "cancellation_reasons = ['too_expensive', 'bored']\n",
            "portal.cancellation_reasons.1: Input should be",
        ),
        (
            "default='free'\n[plans.free]\nname='Free'\n[portal]\n"
            "cancellation_reasons = ['unused', 'unused']\n",
            "portal.cancellation_reasons: an option is listed twice",
        ),
    ],
    ids=[
        "unknown-default",
        "negative-amount",
        "toml",
        "switching",
        "seats-order",
        "seats-min",
        "seats-key",
        "default-per-seat",
        "unknown-feature",
        "feature-without-name",
        "trial-card-without-days",
        "end-without-card-needs-optional-card",
        "trial-card-value",
        "checkout-key",
        "billing-address",
        "downgrades",
        "customer-update",
        "unknown-retention-coupon",
        "repeating-without-months",
        "percent-and-amount",
        "amount-without-currency",
        "unknown-reason",
        "reason-twice",
    ],
)
def test_bad_plans_file_is_one_clear_line(tmp_path: Path, content: str, message: str) -> None:
    plans = tmp_path / "plans.toml"
    plans.write_text(content)
    result = invoke_cli(
        "catalog",
        "sync",
        "--dry-run",
        env={"PLANS_FILE": str(plans), "STRIPE_SECRET_KEY": "sk_test_x"},
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr, result.stderr


def test_missing_stripe_key(tmp_path: Path) -> None:
    result = invoke_cli("catalog", "sync", env={"PLANS_FILE": str(PLANS)}, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == "error: STRIPE_SECRET_KEY is not set"


def test_catalog_sync_plans_applies_and_is_idempotent(
    emulator_env: dict[str, str], tmp_path: Path
) -> None:
    dry = invoke_cli("catalog", "sync", "--dry-run", env=emulator_env, cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "create    product pro" in dry.stdout and "create    price pro_monthly" in dry.stdout
    client: Any = stripe_sdk(emulator_env["STRIPE_API_BASE"], emulator_env["STRIPE_SECRET_KEY"])
    assert client.v1.products.list().data == []  # a dry run changes nothing

    applied = invoke_cli("catalog", "sync", env=emulator_env, cwd=tmp_path)
    assert applied.returncode == 0, applied.stderr
    prices = client.v1.prices.list(
        params={"lookup_keys": ["pro_monthly", "pro_yearly", "team_monthly"]}
    ).data
    assert sorted((p.lookup_key, p.unit_amount, p.recurring.interval) for p in prices) == [
        ("pro_monthly", 2000, "month"),
        ("pro_yearly", 20000, "year"),
        ("team_monthly", 9900, "month"),
    ]

    again = invoke_cli("catalog", "sync", env=emulator_env, cwd=tmp_path)
    assert again.returncode == 0 and "0 changed" in again.stdout, again.stdout

    changed = tmp_path / "plans.toml"
    changed.write_text(PLANS.read_text().replace("amount = 2000", "amount = 2500"))
    env = {**emulator_env, "PLANS_FILE": str(changed)}
    update = invoke_cli("catalog", "sync", env=env, cwd=tmp_path)
    assert "update    price pro_monthly 2500 usd/month (replaces price_" in update.stdout
    [new] = client.v1.prices.list(params={"lookup_keys": ["pro_monthly"]}).data
    assert new.unit_amount == 2500 and new.id != next(
        p.id for p in prices if p.lookup_key == "pro_monthly"
    )
    old = client.v1.prices.retrieve(next(p.id for p in prices if p.lookup_key == "pro_monthly"))
    assert old.active is False and old.lookup_key is None
    assert "0 changed" in invoke_cli("catalog", "sync", env=env, cwd=tmp_path).stdout

    # Back to an earlier amount: a new price takes the key again (a replayed create would
    # hand back the archived one and leave the key on no active price).
    for amount in ("2000", "2500"):
        back = tmp_path / f"plans-{amount}.toml"
        back.write_text(PLANS.read_text().replace("amount = 2000", f"amount = {amount}"))
        result = invoke_cli(
            "catalog", "sync", env={**emulator_env, "PLANS_FILE": str(back)}, cwd=tmp_path
        )
        assert result.returncode == 0, result.stderr
        [current] = client.v1.prices.list(
            params={"lookup_keys": ["pro_monthly"], "active": True}
        ).data
        assert current.unit_amount == int(amount) and current.active
    every = client.v1.prices.list(params={"limit": 100}).data
    assert (
        len([p for p in every if p.recurring.interval == "month" and p.unit_amount in (2000, 2500)])
        == 4
    )


def test_portal_sync(emulator_env: dict[str, str], tmp_path: Path) -> None:
    early = invoke_cli("portal", "sync", env=emulator_env, cwd=tmp_path)
    assert early.returncode == 1 and "run `catalog sync` first" in early.stderr
    assert invoke_cli("catalog", "sync", env=emulator_env, cwd=tmp_path).returncode == 0
    dry = invoke_cli("portal", "sync", "--dry-run", env=emulator_env, cwd=tmp_path)
    assert "create    portal configuration" in dry.stdout
    assert "'allowed_updates': ('price', 'quantity')" in dry.stdout, dry.stdout
    assert ", 2, 200)" in dry.stdout  # the per-seat product's adjustable quantity
    client: Any = stripe_sdk(emulator_env["STRIPE_API_BASE"], emulator_env["STRIPE_SECRET_KEY"])
    assert client.v1.billing_portal.configurations.list().data == []
    applied = invoke_cli("portal", "sync", env=emulator_env, cwd=tmp_path)
    assert applied.returncode == 0, applied.stderr
    [config] = client.v1.billing_portal.configurations.list().data
    features = config.features
    assert (
        features.subscription_cancel.enabled
        and features.subscription_cancel.mode == "at_period_end"
    )
    assert features.invoice_history.enabled and features.payment_method_update.enabled
    switchable = sorted(
        p for product in features.subscription_update.products for p in product.prices
    )
    assert len(switchable) == 5
    assert features.subscription_update.default_allowed_updates == ["price", "quantity"]
    quantities = {
        client.v1.products.retrieve(product.product).name: product.adjustable_quantity
        for product in features.subscription_update.products
    }
    assert {name: q.enabled for name, q in quantities.items()} == {
        "Pro": False,
        "Team": False,
        "Business": True,
    }
    assert (quantities["Business"].minimum, quantities["Business"].maximum) == (2, 200)
    assert config.business_profile.headline == "Manage your subscription"
    assert "0 changed" in invoke_cli("portal", "sync", env=emulator_env, cwd=tmp_path).stdout

    changed = tmp_path / "plans.toml"
    changed.write_text(
        PLANS.read_text()
        .replace('plan_switching = ["pro", "team", "business"]', 'plan_switching = ["pro"]')
        .replace("seats = { min = 2, max = 200 }", "seats = { min = 3, max = 50 }")
    )
    update = invoke_cli(
        "portal", "sync", env={**emulator_env, "PLANS_FILE": str(changed)}, cwd=tmp_path
    )
    assert "update    portal configuration" in update.stdout, update.stdout
    assert ", 3, 50)" in update.stdout  # the new seat range, shown as the change
    [config] = client.v1.billing_portal.configurations.list().data
    products = config.features.subscription_update.products
    assert len([p for product in products for p in product.prices]) == 4  # per seat stays
    [per_seat] = [p for p in products if p.adjustable_quantity.enabled]
    assert (per_seat.adjustable_quantity.minimum, per_seat.adjustable_quantity.maximum) == (3, 50)
