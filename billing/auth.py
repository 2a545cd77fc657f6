"""Bearer JWT authentication: HS256 with AUTH_JWT_SECRET, RS256/ES256 through AUTH_JWKS_URL."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass

import jwt

from billing.settings import Settings

ORG_ID = re.compile(r"^[A-Za-z0-9_-]{1,200}$")
"""Org ids travel to Stripe as client_reference_id, which allows only these characters."""

ASYMMETRIC = ("RS256", "ES256")

JWKS_LIFESPAN = 300.0
"""Seconds a fetched key set is trusted; a key removed from the JWKS stops working after it."""

JWKS_REFRESH_COOLDOWN = 5.0
"""Least seconds between fetches forced by an unknown `kid`.

A token naming a key we do not know makes us fetch the key set again (that is how a rotated
key is picked up), but at most this often: a flood of made-up `kid`s cannot hammer the
identity provider, and a rotated key is accepted at most this long after it first appears.
"""

log = logging.getLogger(__name__)


class AuthError(Exception):
    """The request carries no valid token; the message is safe to show."""


@dataclass(frozen=True)
class Principal:
    """Who is calling, for which org, in which role."""

    user_id: str
    org_id: str
    role: str


class Authenticator:
    """Verifies bearer tokens with pinned algorithms and the configured claims."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        secret = settings.auth_jwt_secret
        self._secret = secret.get_secret_value() if secret else None
        # No per-kid cache (cache_keys): it never expires, so a key the identity provider
        # withdrew would stay trusted for the life of the process. The key set cache expires.
        self._jwks = (
            jwt.PyJWKClient(
                settings.auth_jwks_url,
                cache_keys=False,
                lifespan=JWKS_LIFESPAN,
                timeout=5,
                cooldown_duration=JWKS_REFRESH_COOLDOWN,
            )
            if settings.auth_jwks_url
            else None
        )

    async def authenticate(self, authorization: str | None) -> Principal:
        """The principal of an `Authorization: Bearer` header, or AuthError."""
        if not authorization:
            raise AuthError("missing bearer token")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError("expected 'Authorization: Bearer <token>'")
        claims = await self._verify(token.strip())
        return self._principal(claims)

    async def _verify(self, token: str) -> dict[str, object]:
        """Check signature, algorithm, expiry, issuer and audience."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthError("malformed token") from None
        alg = header.get("alg")
        if alg == "HS256" and self._secret:
            key: object = self._secret
        elif alg in ASYMMETRIC and self._jwks is not None:
            key = await self._jwks_key(header.get("kid"), str(alg))
        else:
            raise AuthError("token algorithm not accepted")
        settings = self._settings
        try:
            return jwt.decode(
                token,
                key,  # type: ignore[arg-type]
                algorithms=[str(alg)],
                issuer=settings.auth_issuer,
                audience=settings.auth_audience,
                leeway=5,
                options={
                    "require": ["exp", "sub"],
                    "verify_aud": settings.auth_audience is not None,
                    "verify_iss": settings.auth_issuer is not None,
                },
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("token expired") from None
        except jwt.PyJWTError as exc:
            raise AuthError(f"invalid token: {type(exc).__name__}") from None

    async def _jwks_key(self, kid: object, alg: str) -> object:
        """The public key the JWKS publishes under `kid`, for exactly this algorithm."""
        assert self._jwks is not None
        if not isinstance(kid, str) or not kid:
            raise AuthError("token has no key id")
        try:
            signing_key = await asyncio.to_thread(self._jwks.get_signing_key, kid)
        except jwt.PyJWKClientConnectionError as exc:
            log.warning("JWKS fetch failed: %s", exc)
            raise AuthError("signing keys unavailable") from None
        except jwt.PyJWTError:
            raise AuthError("unknown signing key") from None
        if signing_key.algorithm_name != alg:
            # An RS256 header must not be verified with an EC key or the other way round.
            raise AuthError("token algorithm does not match its key")
        return signing_key.key

    def _principal(self, claims: dict[str, object]) -> Principal:
        """Read user, org and role from the verified claims."""
        org = claims.get(self._settings.auth_org_claim)
        role = claims.get(self._settings.auth_role_claim)
        sub = claims.get("sub")
        if not isinstance(org, str) or not ORG_ID.match(org):
            raise AuthError("token has no valid org claim")
        if not isinstance(role, str) or not role:
            raise AuthError("token has no role claim")
        if not isinstance(sub, str) or not sub:
            raise AuthError("token has no subject")
        return Principal(user_id=sub, org_id=org, role=role)


def dev_token(settings: Settings, org: str, role: str, user: str, ttl: int) -> str:
    """A signed HS256 token for local use."""
    if settings.auth_jwt_secret is None:
        raise ValueError("AUTH_JWT_SECRET is not set")
    if not ORG_ID.match(org):
        raise ValueError("org must be 1-200 letters, digits, '_' or '-'")
    if ttl <= 0:
        raise ValueError("ttl must be positive")
    now = int(time.time())
    claims: dict[str, object] = {
        "sub": user,
        settings.auth_org_claim: org,
        settings.auth_role_claim: role,
        "iat": now,
        "exp": now + ttl,
    }
    if settings.auth_issuer:
        claims["iss"] = settings.auth_issuer
    if settings.auth_audience:
        claims["aud"] = settings.auth_audience
    return jwt.encode(claims, settings.auth_jwt_secret.get_secret_value(), algorithm="HS256")
