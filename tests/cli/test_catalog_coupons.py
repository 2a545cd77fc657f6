"""`catalog sync` and `[coupons]`: created with their ids and terms, renamed, idempotent, a dry
run that writes nothing, and changed terms refused before anything is written; `portal sync`
turns the cancel flow's reason survey on with the file's options. Run as a user runs it,
against a fresh emulator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from emulator.client import EmulatorControl
from harness.cli import invoke_cli
from harness.stack import PLANS
from harness.stripe_side import stripe_sdk
from tests.cli.test_catalog_features import sync, writes

MANAGED = {"managed_by": "billing-api"}
REASONS = ["too_expensive", "missing_features", "switched_service", "unused", "other"]


def coupons_of(client: Any) -> dict[str, Any]:
    """Every coupon in Stripe, by id."""
    return {c.id: c for c in client.v1.coupons.list(params={"limit": 100}).data}


def test_coupons_are_created_by_id_and_kept_in_step(
    emulator_env: dict[str, str], tmp_path: Path
) -> None:
    client: Any = stripe_sdk(emulator_env["STRIPE_API_BASE"], emulator_env["STRIPE_SECRET_KEY"])
    with EmulatorControl(emulator_env["STRIPE_API_BASE"]) as control:
        dry = sync(emulator_env, tmp_path, "--dry-run")
        assert "create    coupon stay20 20% off for 3 months" in dry, dry
        assert writes(control) == [] and coupons_of(client) == {}

        sync(emulator_env, tmp_path)
        stay = coupons_of(client)["stay20"]
        assert (stay.name, stay.percent_off, stay.duration, stay.duration_in_months) == (
            "20% off for 3 months",
            20.0,
            "repeating",
            3,
        )
        assert stay.metadata.to_dict() == MANAGED
        control.clear_requests()
        again = sync(emulator_env, tmp_path)
        assert "unchanged coupon stay20" in again and "0 changed" in again, again
        assert writes(control) == []

        renamed = tmp_path / "renamed.toml"
        renamed.write_text(PLANS.read_text().replace('"20% off for 3 months"', '"Stay with us"'))
        out = sync({**emulator_env, "PLANS_FILE": str(renamed)}, tmp_path)
        assert "update    coupon stay20 name 'Stay with us'" in out, out
        assert coupons_of(client)["stay20"].name == "Stay with us"

        # Terms never change in Stripe: refused, naming the coupon, with nothing written.
        deeper = tmp_path / "deeper.toml"
        deeper.write_text(
            PLANS.read_text()
            .replace("percent_off = 20", "percent_off = 30")
            .replace('name = "Pro"', 'name = "Pro plan"')
        )
        control.clear_requests()
        refused = invoke_cli(
            "catalog", "sync", env={**emulator_env, "PLANS_FILE": str(deeper)}, cwd=tmp_path
        )
        assert refused.returncode == 1
        assert refused.stderr.strip().splitlines() == [
            "error: coupon stay20 exists in Stripe with other terms (percent_off); a coupon's "
            "terms cannot change: give the new terms a new id"
        ]
        assert writes(control) == []  # not even the product's new name


def test_portal_sync_turns_the_reason_survey_on(
    emulator_env: dict[str, str], tmp_path: Path
) -> None:
    client: Any = stripe_sdk(emulator_env["STRIPE_API_BASE"], emulator_env["STRIPE_SECRET_KEY"])
    sync(emulator_env, tmp_path)
    assert invoke_cli("portal", "sync", env=emulator_env, cwd=tmp_path).returncode == 0
    [config] = client.v1.billing_portal.configurations.list().data
    reason = config.features.subscription_cancel.cancellation_reason
    assert reason.enabled and list(reason.options) == REASONS
    assert "0 changed" in invoke_cli("portal", "sync", env=emulator_env, cwd=tmp_path).stdout

    quiet = tmp_path / "quiet.toml"
    survey = "cancellation_reasons = [" + ", ".join(f'"{r}"' for r in REASONS) + "]\n"
    assert survey in PLANS.read_text()
    quiet.write_text(PLANS.read_text().replace(survey, ""))
    env = {**emulator_env, "PLANS_FILE": str(quiet)}
    update = invoke_cli("portal", "sync", env=env, cwd=tmp_path)
    assert "update    portal configuration" in update.stdout, update.stdout
    assert "'cancellation_reasons': ()" in update.stdout
    [config] = client.v1.billing_portal.configurations.list().data
    assert not config.features.subscription_cancel.cancellation_reason.enabled
