"""Property-based fuzzing over the schema's arguments, through GraphQL over real HTTP: no 5xx,
no unmasked or internal errors, whatever the arguments, variables and tokens."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.errors import BillingErrorCode
from harness.api import token
from harness.stack import Stack

ORGS = ["org_fuzz_a", "org_fuzz_b", "org_fuzz_c"]
ALLOWED_CODES = {"UNAUTHENTICATED"}
"""The only extensions.code an error may carry; expected failures are BillingError data."""
BILLING_CODES = {code.value for code in BillingErrorCode}
GRAPHQL_REFUSAL = re.compile(
    r"(Syntax Error|Variable '\$|Value '|Argument '|Unknown argument|Cannot query field|"
    r"Field '|Expected value|Unknown type|Enum '|String cannot|Int cannot)"
)
"""How graphql-core words the refusals of a bad document or bad variables."""

SELECTION = {
    "upgrade": "{ __typename ... on CheckoutSession { id url } "
    "... on PortalSession { url flow } ... on BillingError { code message } }",
    "openPortal": "{ __typename ... on PortalSession { url flow } "
    "... on BillingError { code message } }",
    "entitlement": "{ orgId plan status cancelAtPeriodEnd currentPeriodEnd trialEnd "
    "hasBillingAccount limits updatedAt }",
    "plans": "{ slug name limits prices { interval lookupKey amount currency } }",
}

# Values of every JSON type, biased towards what the arguments expect.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=8,
)
plans = st.sampled_from(["pro", "team", "free", "enterprise", "", "PRO", "pro "]) | st.text(
    max_size=60
)
intervals = st.sampled_from(["MONTH", "YEAR", "month", "WEEK", ""]) | st.text(max_size=10)
flows = st.sampled_from(
    ["SUBSCRIPTION_CANCEL", "SUBSCRIPTION_UPDATE", "PAYMENT_METHOD_UPDATE", "cancel", ""]
) | st.text(max_size=20)
path_alphabet = st.sampled_from(
    [*"/\\%:.?#&=@ \t\n\r\x00\u2028\u202eaZ09-_~", "%2F", "%5C", "%25", "//"]
)
paths = (
    st.lists(path_alphabet, max_size=30).map("".join)
    | st.lists(path_alphabet, max_size=30).map(lambda parts: "/" + "".join(parts))
    | st.text(max_size=80)
    | st.text(max_size=40).map(lambda t: "/" + t)
    | st.sampled_from(["/settings/billing", "/", "//evil.example", "/" + "a" * 2100])
)


VALID_INTERVALS = st.sampled_from(["MONTH", "YEAR"])
VALID_FLOWS = st.sampled_from(
    ["SUBSCRIPTION_CANCEL", "SUBSCRIPTION_UPDATE", "PAYMENT_METHOD_UPDATE"]
)


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    """One GraphQL request: an operation, its arguments as variables or literals, a token.

    Four in five are well typed, so most examples get past validation and into the resolvers
    with hostile values; the rest mix in any type at all, undeclared variables and odd
    operation names, which must be refused cleanly before execution.
    """
    operation = draw(st.sampled_from(["upgrade", "openPortal"] * 3 + ["entitlement", "plans"]))
    typed = draw(st.integers(0, 4)) > 0
    inline = draw(st.booleans())
    variables: dict[str, Any] = {}
    args: list[str] = []
    declared: list[str] = []
    wanted: dict[str, tuple[str, st.SearchStrategy[Any]]] = {}
    if operation == "upgrade":
        wanted = {
            "plan": ("String!", plans if typed else json_values | intervals),
            "interval": ("BillingInterval", VALID_INTERVALS if typed else json_values | intervals),
        }
    elif operation == "openPortal":
        wanted = {
            "returnPath": ("String!", paths if typed else json_values | paths),
            "flow": ("PortalFlow", VALID_FLOWS | st.none() if typed else json_values | flows),
        }
    for name, (graphql_type, strategy) in wanted.items():
        if draw(st.integers(0, 5)) == 0:
            continue  # left out: the default (or a missing required argument)
        value = draw(strategy)
        if inline and isinstance(value, str) and graphql_type == "String!":
            args.append(f"{name}: {json.dumps(value)}")
        elif inline and isinstance(value, str) and value.isidentifier():
            args.append(f"{name}: {value}")  # an enum literal, known or not
        else:
            kind = graphql_type if typed else draw(st.sampled_from([graphql_type, "String", "Int"]))
            declared.append(f"${name}: {kind}")
            args.append(f"{name}: ${name}")
            variables[name] = value
    if not typed:  # variables no operation declares, of any type
        variables.update(draw(st.dictionaries(st.text(max_size=10), json_values, max_size=3)))
    kind = "mutation" if operation in ("upgrade", "openPortal") else "query"
    header = f"({', '.join(declared)})" if declared else ""
    arguments = f"({', '.join(args)})" if args else ""
    document = f"{kind} Fuzz{header} {{ {operation}{arguments} {SELECTION[operation]} }}"
    auth = draw(st.sampled_from(["owner"] * 4 + ["admin", "member", "none", "garbage"]))
    org = draw(st.sampled_from(ORGS))
    headers = {}
    if auth in ("owner", "admin", "member"):
        headers["authorization"] = f"Bearer {token(org, auth)}"
    elif auth == "garbage":
        headers["authorization"] = "Bearer " + draw(
            st.text(alphabet="abcXYZ.-_=", min_size=1, max_size=60)
        )
    payload: dict[str, Any] = {"query": document, "variables": variables}
    if not typed and draw(st.booleans()):
        payload["operationName"] = draw(st.sampled_from(["Fuzz", None, "Other", ""]))
    return {"payload": payload, "headers": headers}


@pytest.fixture(scope="module")
def http(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.api.url, timeout=60) as client:
        yield client


def check(response: httpx.Response, request: dict[str, Any]) -> None:
    """The properties every answer must have."""
    assert response.status_code < 500, (response.status_code, response.text, request)
    assert "Traceback" not in response.text and 'File "' not in response.text
    if response.headers.get("content-type", "").startswith("application/json"):
        body = response.json()
    else:
        assert response.status_code == 400, (response.status_code, response.text, request)
        return
    if response.status_code != 200:
        return
    for error in body.get("errors") or []:
        code = (error.get("extensions") or {}).get("code")
        assert code != "INTERNAL_SERVER_ERROR", (error, request)
        assert not error["message"].startswith("Internal server error"), (error, request)
        if code is not None:
            assert code in ALLOWED_CODES, (error, request)
        elif "path" in error:
            # During execution only argument coercion (a null variable for a non-null
            # argument) may fail without a code; anything else would be an unmasked error.
            assert error["message"].startswith("Argument '"), (error, request)
        else:
            # Refused before execution: syntax, validation or variable coercion.
            assert GRAPHQL_REFUSAL.match(error["message"]), (error, request)
    data = body.get("data") or {}
    for result in data.values():
        if isinstance(result, dict) and result.get("__typename") == "BillingError":
            assert result["code"] in BILLING_CODES
            assert "http" not in result["message"]


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(request=requests())
def test_fuzzed_arguments_never_break_the_api(http: httpx.Client, request: dict[str, Any]) -> None:
    response = http.post("/graphql", json=request["payload"], headers=request["headers"])
    check(response, request)
