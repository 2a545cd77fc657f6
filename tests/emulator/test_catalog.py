"""Customers, products and prices: CRUD, filters, pagination, lookup keys, expansion."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from tests.emulator.conftest import spec_errors


def _price(client: Any, product: str, amount: int = 1000, **extra: Any) -> Any:
    """A monthly price."""
    params = {
        "product": product,
        "currency": "usd",
        "unit_amount": amount,
        "recurring": {"interval": "month"},
        **extra,
    }
    return client.v1.prices.create(params=params)


def test_customer_crud(client: Any) -> None:
    created = client.v1.customers.create(
        params={
            "email": "ada@example.com",
            "name": "Ada",
            "phone": "+33100000000",
            "description": "first",
            "metadata": {"org_id": "o1", "tier": "x"},
            "address": {"city": "Paris", "country": "FR"},
        }
    )
    assert created.id.startswith("cus_") and created.object == "customer"
    assert created.address.city == "Paris" and created.address.line1 is None
    assert not spec_errors("customer", created)
    updated = client.v1.customers.update(
        created.id, params={"name": "Ada L.", "metadata": {"tier": ""}, "email": "new@x.io"}
    )
    assert updated.name == "Ada L." and updated.metadata.to_dict() == {"org_id": "o1"}
    assert client.v1.customers.retrieve(created.id).email == "new@x.io"
    cleared = client.v1.customers.update(created.id, params={"metadata": ""})
    assert cleared.metadata.to_dict() == {}
    deleted = client.v1.customers.delete(created.id)
    assert deleted.deleted is True
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.update(created.id, params={"name": "x"})


def test_customer_list_filters_and_pages(client: Any) -> None:
    ids = [client.v1.customers.create(params={"email": f"u{i}@example.com"}).id for i in range(7)]
    client.v1.customers.create(params={"email": "u3@example.com"})
    assert len(client.v1.customers.list(params={"email": "u3@example.com"}).data) == 2
    page1 = client.v1.customers.list(params={"limit": 3})
    assert page1.has_more and page1.url == "/v1/customers"
    assert len(page1.data) == 3
    page2 = client.v1.customers.list(params={"limit": 3, "starting_after": page1.data[-1].id})
    back = client.v1.customers.list(params={"limit": 3, "ending_before": page2.data[0].id})
    assert [c.id for c in back.data] == [c.id for c in page1.data]
    everything = list(client.v1.customers.list(params={"limit": 2}).auto_paging_iter())
    assert len(everything) == 8
    assert set(ids) <= {c.id for c in everything}
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.list(params={"limit": 1000})


def test_products(client: Any) -> None:
    prod = client.v1.products.create(
        params={"name": "Pro", "description": "Best", "metadata": {"plan": "pro"}}
    )
    assert prod.id.startswith("prod_") and prod.active and prod.default_price is None
    assert not spec_errors("product", prod)
    price = _price(client, prod.id)
    prod = client.v1.products.update(prod.id, params={"default_price": price.id, "active": False})
    assert prod.default_price == price.id and prod.active is False
    expanded = client.v1.products.retrieve(prod.id, params={"expand": ["default_price"]})
    assert expanded.default_price.unit_amount == 1000
    custom = client.v1.products.create(params={"id": "prod_custom", "name": "Custom"})
    assert custom.id == "prod_custom"
    assert [p.id for p in client.v1.products.list(params={"active": True}).data] == [custom.id]
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.products.delete(prod.id)  # it has prices
    assert client.v1.products.delete(custom.id).deleted is True
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.products.create(params={})
    assert info.value.param == "name"


def test_prices_and_lookup_keys(client: Any) -> None:
    prod = client.v1.products.create(params={"name": "Pro"})
    old = _price(client, prod.id, lookup_key="pro_month", metadata={"v": "1"})
    assert old.lookup_key == "pro_month" and old.type == "recurring"
    assert old.recurring.interval == "month" and old.recurring.interval_count == 1
    assert not spec_errors("price", old)
    with pytest.raises(stripe.InvalidRequestError) as info:
        _price(client, prod.id, 1200, lookup_key="pro_month")
    assert info.value.param == "lookup_key" and old.id in str(info.value.user_message)
    new = _price(client, prod.id, 1200, lookup_key="pro_month", transfer_lookup_key=True)
    assert client.v1.prices.retrieve(old.id).lookup_key is None
    found = client.v1.prices.list(params={"lookup_keys": ["pro_month"]})
    assert [p.id for p in found.data] == [new.id]
    # Update: move the key back, deactivate.
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.prices.update(old.id, params={"lookup_key": "pro_month"})
    back = client.v1.prices.update(
        old.id, params={"lookup_key": "pro_month", "transfer_lookup_key": True, "active": False}
    )
    assert back.lookup_key == "pro_month" and back.active is False
    assert client.v1.prices.retrieve(new.id).lookup_key is None
    one_time = client.v1.prices.create(
        params={"currency": "eur", "unit_amount": 500, "product_data": {"name": "Setup fee"}}
    )
    assert one_time.type == "one_time" and one_time.recurring is None
    assert [p.id for p in client.v1.prices.list(params={"type": "one_time"}).data] == [one_time.id]
    assert [
        p.id for p in client.v1.prices.list(params={"active": True, "product": prod.id}).data
    ] == [new.id]
    listed = client.v1.prices.list(
        params={"expand": ["data.product"], "recurring": {"interval": "month"}}
    )
    assert {p.product.name for p in listed.data} == {"Pro"}
    with pytest.raises(stripe.InvalidRequestError) as bad:
        client.v1.prices.retrieve(new.id, params={"expand": ["nickname"]})
    assert "cannot be expanded" in str(bad.value.user_message)


def test_price_validation(client: Any) -> None:
    prod = client.v1.products.create(params={"name": "Pro"})
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.prices.create(params={"product": prod.id, "unit_amount": 1})
    assert info.value.param == "currency"
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.prices.create(
            params={"product": "prod_nope", "currency": "usd", "unit_amount": 1}
        )
    assert missing.value.code == "resource_missing"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.prices.create(
            params={
                "product": prod.id,
                "currency": "usd",
                "unit_amount": 1,
                "recurring": {"interval": "hour"},
            }
        )
    yearly = _price(client, prod.id, 10000, recurring={"interval": "year"})
    assert yearly.recurring.interval == "year"
