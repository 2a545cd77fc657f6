"""`catalog sync` and Stripe Features: created by lookup key, attached to each plan's product,
detached when the file drops them (never one it did not create), idempotent, and a dry run
that sends no write. Run as a user runs it, against a fresh emulator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from emulator.client import EmulatorControl
from harness.cli import invoke_cli
from harness.stack import PLANS
from harness.stripe_side import new_feature, stripe_sdk

MANAGED = {"managed_by": "billing-api"}


def features_of(client: Any) -> dict[str, Any]:
    """Every active feature in Stripe, by lookup key."""
    found = client.v1.entitlements.features.list(params={"limit": 100}).data
    return {f.lookup_key: f for f in found}


def product_of(client: Any, plan: str) -> str:
    """The id of a plan's managed product."""
    products = client.v1.products.list(params={"limit": 100}).data
    [product] = [p for p in products if p.metadata.to_dict().get("plan") == plan]
    return str(product.id)


def attached(client: Any, plan: str) -> list[str]:
    """Lookup keys of the features attached to a plan's product, sorted."""
    found = client.v1.products.features.list(product_of(client, plan), params={"limit": 100})
    return sorted(pf.entitlement_feature.lookup_key for pf in found.data)


def writes(control: EmulatorControl) -> list[str]:
    """The API writes the emulator received (method and path), oldest first."""
    return [f"{r['method']} {r['path']}" for r in control.requests() if r["method"] != "GET"]


def sync(env: dict[str, str], cwd: Path, *args: str) -> str:
    """`python main.py catalog sync ARGS`; its stdout (it must succeed)."""
    result = invoke_cli("catalog", "sync", *args, env=env, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_catalog_sync_creates_and_attaches_the_features(
    emulator_env: dict[str, str], tmp_path: Path
) -> None:
    client: Any = stripe_sdk(emulator_env["STRIPE_API_BASE"], emulator_env["STRIPE_SECRET_KEY"])
    with EmulatorControl(emulator_env["STRIPE_API_BASE"]) as control:
        dry = sync(emulator_env, tmp_path, "--dry-run")
        assert "create    feature sso Single sign-on" in dry
        assert "attach    product feature team/sso (new)" in dry
        assert "attach    product feature business/audit_log (new)" in dry
        assert writes(control) == [] and features_of(client) == {}  # a dry run writes nothing

        sync(emulator_env, tmp_path)
        found = features_of(client)
        assert {key: (f.name, f.metadata.to_dict()) for key, f in found.items()} == {
            "exports": ("CSV exports", MANAGED),
            "priority_support": ("Priority support", MANAGED),
            "sso": ("Single sign-on", MANAGED),
            "audit_log": ("Audit log", MANAGED),
        }
        assert attached(client, "pro") == ["exports", "priority_support"]
        assert attached(client, "team") == ["exports", "priority_support", "sso"]
        assert attached(client, "business") == ["audit_log", "exports", "priority_support", "sso"]

        control.clear_requests()
        again = sync(emulator_env, tmp_path)
        assert again.strip().splitlines()[-1] == "0 changed, 22 unchanged", again
        assert "unchanged product feature team/sso prodft_" in again
        assert writes(control) == []


def test_catalog_sync_detaches_only_what_it_created_and_renames(
    emulator_env: dict[str, str], tmp_path: Path
) -> None:
    client: Any = stripe_sdk(emulator_env["STRIPE_API_BASE"], emulator_env["STRIPE_SECRET_KEY"])
    sync(emulator_env, tmp_path)
    # In the Dashboard: a feature of its own on the team product, and sso on pro by hand.
    new_feature(client, "beta", product_of(client, "team"))
    client.v1.products.features.create(
        product_of(client, "pro"), params={"entitlement_feature": features_of(client)["sso"].id}
    )

    # The file: exports is gone altogether, team grants nothing, audit_log is renamed.
    text = PLANS.read_text().replace('"exports", ', "").replace('"Audit log"', '"Audit trail"')
    text = text.replace('features = ["exports"]', "features = []")
    text = text.replace('features = ["sso", "priority_support", "exports"]', "features = []")
    text = text.replace('exports = { name = "CSV exports" }\n', "")
    changed = tmp_path / "plans.toml"
    changed.write_text(text)
    env = {**emulator_env, "PLANS_FILE": str(changed)}

    with EmulatorControl(emulator_env["STRIPE_API_BASE"]) as control:
        control.clear_requests()
        plan = sync(env, tmp_path, "--dry-run")
        assert writes(control) == []
    assert "update    feature audit_log name 'Audit trail', active" in plan
    for step in (
        "pro/exports",
        "pro/sso",
        "team/exports",
        "team/priority_support",
        "team/sso",
        "business/exports",
    ):
        assert f"detach    product feature {step} prodft_" in plan, plan
    assert "team/beta" not in plan
    assert attached(client, "team") == ["beta", "exports", "priority_support", "sso"]

    sync(env, tmp_path)
    assert attached(client, "pro") == ["priority_support"]
    assert attached(client, "team") == ["beta"]  # the Dashboard's own feature stays
    assert attached(client, "business") == ["audit_log", "priority_support", "sso"]
    assert features_of(client)["audit_log"].name == "Audit trail"
    assert "0 changed" in sync(env, tmp_path)

    # Listed again: attached again (a detach never blocks a later attach).
    assert "attach    product feature team/sso" in sync(emulator_env, tmp_path)
    assert attached(client, "team") == ["beta", "exports", "priority_support", "sso"]


def test_a_dashboard_feature_the_file_names_is_renamed_but_never_detached(
    emulator_env: dict[str, str], tmp_path: Path
) -> None:
    """The file may name a feature made in the Dashboard (same lookup key): `catalog sync`
    renames it and attaches it, but never takes it over, so dropping it detaches nothing."""
    client: Any = stripe_sdk(emulator_env["STRIPE_API_BASE"], emulator_env["STRIPE_SECRET_KEY"])
    client.v1.entitlements.features.create(params={"name": "SSO (beta)", "lookup_key": "sso"})
    assert "update    feature sso name 'Single sign-on', active" in sync(emulator_env, tmp_path)
    sso = features_of(client)["sso"]
    assert (sso.name, sso.metadata.to_dict()) == ("Single sign-on", {})
    assert "sso" in attached(client, "team")

    dropped = tmp_path / "plans.toml"
    dropped.write_text(
        PLANS.read_text().replace('["sso", "priority_support", "exports"]', '["exports"]')
    )
    plan = sync({**emulator_env, "PLANS_FILE": str(dropped)}, tmp_path)
    assert "detach    product feature team/priority_support" in plan
    assert "team/sso" not in plan
    assert attached(client, "team") == ["exports", "sso"]
