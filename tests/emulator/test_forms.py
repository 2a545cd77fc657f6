"""Form decoding/encoding, checked against the spec helper's own implementation."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from emulator.forms import decode_form, decode_query, encode_form, encode_pairs
from tests.support import stripe_spec

keys = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8)
scalars = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=12)
values: Any = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.dictionaries(keys, inner, min_size=1, max_size=4),
        st.lists(inner, min_size=1, max_size=4),
    ),
    max_leaves=12,
)


def test_nested_keys() -> None:
    pairs = [
        ("line_items[0][price]", "price_1"),
        ("line_items[0][quantity]", "2"),
        ("line_items[1][price]", "price_2"),
        ("expand[]", "a"),
        ("expand[]", "b"),
        ("metadata[org_id]", "o"),
        ("email", ""),
    ]
    assert decode_form(pairs) == {
        "line_items": [{"price": "price_1", "quantity": "2"}, {"price": "price_2"}],
        "expand": ["a", "b"],
        "metadata": {"org_id": "o"},
        "email": "",
    }
    assert decode_query("lookup_keys[0]=a&lookup_keys[1]=b&created[gte]=5") == {
        "lookup_keys": ["a", "b"],
        "created": {"gte": "5"},
    }
    assert decode_form(pairs) == stripe_spec.decode_form(pairs)


def test_index_order_is_numeric() -> None:
    pairs = [(f"items[{i}]", str(i)) for i in (10, 2, 1, 0)]
    assert decode_form(pairs) == {"items": ["0", "1", "2", "10"]}


@given(st.dictionaries(keys, values, min_size=1, max_size=5))
def test_roundtrip(params: dict[str, Any]) -> None:
    assert decode_query(encode_form(params)) == params
    assert decode_form(encode_pairs(params)) == stripe_spec.decode_form(encode_pairs(params))


def test_encode_scalars() -> None:
    assert encode_pairs({"a": True, "b": False, "c": 3, "d": None}) == [
        ("a", "true"),
        ("b", "false"),
        ("c", "3"),
        ("d", ""),
    ]
