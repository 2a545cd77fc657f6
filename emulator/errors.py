"""Stripe's error responses."""

from __future__ import annotations

from typing import Any

_DOC = "https://docs.stripe.com/error-codes/"


class StripeError(Exception):
    """An error rendered as Stripe's error JSON."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """Build the error."""
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type
        self.code = code
        self.param = param
        self.extra = extra or {}

    def body(self, request_id: str | None = None) -> dict[str, Any]:
        """The JSON body Stripe sends."""
        err: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code:
            err["code"] = self.code
            err["doc_url"] = _DOC + self.code.replace("_", "-")
        if self.param:
            err["param"] = self.param
        if request_id:
            err["request_log_url"] = f"https://dashboard.stripe.com/test/logs/{request_id}"
        err.update(self.extra)
        return {"error": err}


def missing(kind: str, ident: str, *, param: str = "id", status: int = 404) -> StripeError:
    """``No such customer: 'cus_x'``."""
    return StripeError(
        f"No such {kind}: '{ident}'", status=status, code="resource_missing", param=param
    )


def invalid(message: str, param: str | None = None, code: str | None = None) -> StripeError:
    """A 400 invalid_request_error."""
    return StripeError(message, param=param, code=code)


def unknown_param(name: str) -> StripeError:
    """``Received unknown parameter: x``."""
    return StripeError(f"Received unknown parameter: {name}", param=name, code="parameter_unknown")


def required(name: str) -> StripeError:
    """``Missing required param: x``."""
    return StripeError(f"Missing required param: {name}.", param=name, code="parameter_missing")


def one_of_error(name: str, allowed: list[str] | tuple[str, ...]) -> StripeError:
    """``Invalid tax_exempt: must be one of exempt, none, or reverse``."""
    values = [v for v in allowed if v != ""]
    if len(values) > 2:
        listed = ", ".join(values[:-1]) + ", or " + values[-1]
    else:
        listed = " or ".join(values)
    return StripeError(f"Invalid {name}: must be one of {listed}", param=name)


def empty_string(name: str) -> StripeError:
    """An empty value for a parameter that cannot be unset."""
    return StripeError(
        f"You passed an empty string for '{name}'. We assume empty values are an attempt to "
        f"unset a parameter; however '{name}' cannot be unset. You should remove '{name}' from "
        "your request or supply a non-empty value.",
        param=name,
    )


def rate_limited() -> StripeError:
    """Stripe's 429 for a request over the rate limit."""
    return StripeError(
        "Request rate limit exceeded. Learn more about rate limits here "
        "https://stripe.com/docs/rate-limits.",
        status=429,
        code="rate_limit",
    )


def card_declined() -> StripeError:
    """Stripe's 402 ``card_declined`` (``generic_decline``)."""
    return StripeError(
        "Your card was declined.",
        status=402,
        type="card_error",
        code="card_declined",
        extra={"decline_code": "generic_decline"},
    )


def fault_error(status: int) -> StripeError:
    """The error injected by a fault of a given status."""
    if status == 429:
        return rate_limited()
    if status == 402:
        return card_declined()
    if status == 401:
        return StripeError("Invalid API Key provided: sk_test_***", status=401)
    if status == 404:
        return StripeError("Unrecognized request URL.", status=404, code="resource_missing")
    if status == 409:
        return StripeError(
            "This object cannot be accessed right now because another API request "
            "or Stripe process is currently accessing it.",
            status=409,
            code="lock_timeout",
        )
    if status >= 500:
        return StripeError(
            "An unknown error occurred (emulated fault).", status=status, type="api_error"
        )
    return StripeError("Emulated fault.", status=status)
