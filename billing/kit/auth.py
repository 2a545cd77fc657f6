"""Bearer JWT authentication: HS256 with AUTH_JWT_SECRET, RS256/ES256 through AUTH_JWKS_URL."""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
from cachetools import LRUCache
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from billing.kit.settings import Settings

ORG_ID = re.compile(r"[A-Za-z0-9_-]{1,200}")
"""Org ids travel to Stripe as client_reference_id, which allows only these characters.

Always `fullmatch`: with `match`, a `$` would still let a trailing newline through."""

ASYMMETRIC = ("RS256", "ES256")

JWKS_LIFESPAN = 300.0
"""Seconds a fetched key set is trusted before it is refreshed (in the background)."""

JWKS_GRACE = 3600.0
"""Seconds past JWKS_LIFESPAN the last good key set stays in use while refreshes fail.

An identity provider outage does not log everyone out at once; after the grace period
asymmetric tokens are refused until a fetch succeeds again."""

JWKS_FETCH_TIMEOUT = 3.0
"""Longest a key set fetch may take, and so the longest a token with an unknown `kid` waits."""

JWKS_REFRESH_COOLDOWN = 5.0
"""Least seconds between key set fetches, whether the last one succeeded or failed.

A token naming a key we do not know makes us fetch the key set again (that is how a rotated
key is picked up), but at most this often: a flood of made-up `kid`s cannot hammer the
identity provider, and a rotated key is accepted at most this long after it first appears.
"""

TOKEN_LEEWAY = 5
"""Seconds of clock skew allowed on `exp` (and `nbf`, `iat`)."""

VERIFIED_TOKENS = 4096
"""Most verified tokens remembered at once (the least recently used is forgotten first)."""

VERIFIED_FOR = 60.0
"""Longest a verified token is remembered before its signature is checked again; never past
its `exp`, so that an expired token is refused on time and a key withdrawn from the JWKS
stops its tokens within a minute."""

log = logging.getLogger(__name__)


class AuthError(Exception):
    """The request carries no valid token; the message is safe to show."""


@dataclass(frozen=True)
class Principal:
    """Who is calling, for which org, in which role."""

    user_id: str
    org_id: str
    role: str
    expires_at: float
    """The token's `exp` (Unix time): a WebSocket signed in with it closes then."""


def _pinned(key: jwt.PyJWK) -> bool:
    """True for a signing key we accept: RS256 on RSA, or ES256 on EC P-256."""
    if key.public_key_use not in ("sig", None):
        return False
    if key.algorithm_name == "RS256":
        return isinstance(key.key, RSAPublicKey)
    if key.algorithm_name == "ES256":
        return isinstance(key.key, EllipticCurvePublicKey) and key.key.curve.name == "secp256r1"
    return False


def _parse_jwks(document: Any) -> dict[tuple[str, str], jwt.PyJWK]:
    """The usable keys of a JWKS document by (kid, alg); unusable entries are skipped."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWK set")
    keys: dict[tuple[str, str], jwt.PyJWK] = {}
    for entry in document["keys"]:
        try:
            key = jwt.PyJWK(entry)
        except (jwt.PyJWTError, AttributeError, TypeError, ValueError):
            continue
        if isinstance(key.key_id, str) and key.key_id and _pinned(key):
            keys.setdefault((key.key_id, key.algorithm_name), key)
    return keys


class JwksCache:
    """The identity provider's public keys, fetched without ever stalling known keys.

    A token whose key is in the set is verified at once; a stale set is refreshed in the
    background. Only a token with an unknown `kid` (or an expired set) waits, on the one
    fetch in flight, for at most JWKS_FETCH_TIMEOUT. Fetches start at most once per
    JWKS_REFRESH_COOLDOWN. A failed refresh keeps the last good set for JWKS_GRACE.
    """

    def __init__(self, url: str, clock: Callable[[], float] = time.monotonic) -> None:
        self._url = url
        self.clock = clock
        """Seconds, monotonic: what the lifespan, grace and cooldown are measured in."""
        self._keys: dict[tuple[str, str], jwt.PyJWK] = {}
        self._fetched_at = -math.inf  # monotonic time of the last successful fetch
        self._attempted_at = -math.inf  # monotonic time the last fetch started
        self._fetch: asyncio.Task[None] | None = None

    async def key(self, kid: str, alg: str) -> jwt.PyJWK:
        """The key published under `kid` for `alg`, or AuthError."""
        if self._age() < JWKS_LIFESPAN + JWKS_GRACE:
            if self._age() >= JWKS_LIFESPAN:
                self._start_fetch()  # keep serving the last good set meanwhile
            if (found := self._keys.get((kid, alg))) is not None:
                return found
        await self._await_fetch()
        if self._age() >= JWKS_LIFESPAN + JWKS_GRACE:
            raise AuthError("signing keys unavailable")
        if (found := self._keys.get((kid, alg))) is None:
            raise AuthError("unknown signing key")
        return found

    @property
    def epoch(self) -> float:
        """When the key set in use was fetched: it moves with every successful refresh."""
        return self._fetched_at

    def _age(self) -> float:
        """Seconds since the last successful fetch (infinite before the first)."""
        return self.clock() - self._fetched_at

    def _start_fetch(self) -> asyncio.Task[None] | None:
        """The fetch in flight, else a new one when the cooldown allows, else None."""
        if self._fetch is not None and not self._fetch.done():
            return self._fetch
        now = self.clock()
        if now - self._attempted_at < JWKS_REFRESH_COOLDOWN:
            return None
        self._attempted_at = now
        self._fetch = asyncio.create_task(self._refresh())
        return self._fetch

    async def _await_fetch(self) -> None:
        """Wait, at most JWKS_FETCH_TIMEOUT, for the fetch in flight or a new one."""
        fetch = self._start_fetch()
        if fetch is not None:
            # asyncio.wait neither cancels the fetch on timeout nor when this caller is cancelled.
            await asyncio.wait({fetch}, timeout=JWKS_FETCH_TIMEOUT)

    async def _refresh(self) -> None:
        """Fetch the key set; on failure keep the last good one and log a warning."""
        try:
            async with httpx.AsyncClient(timeout=JWKS_FETCH_TIMEOUT) as http:
                async with asyncio.timeout(JWKS_FETCH_TIMEOUT):
                    response = await http.get(self._url, headers={"accept": "application/json"})
                response.raise_for_status()
                keys = _parse_jwks(response.json())
        except Exception as exc:  # any failure leaves the last good set in place
            log.warning(
                "JWKS fetch from %s failed (%s); %s",
                self._url,
                type(exc).__name__,
                f"keeping the key set fetched {self._age():.0f} s ago"
                if self._age() < JWKS_LIFESPAN + JWKS_GRACE
                else "no usable key set",
            )
            return
        self._keys, self._fetched_at = keys, self.clock()


class Authenticator:
    """Verifies bearer tokens with pinned algorithms and the configured claims."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        secret = settings.auth_jwt_secret
        self._secret = secret.get_secret_value() if secret else None
        self.jwks = JwksCache(settings.auth_jwks_url) if settings.auth_jwks_url else None
        """The identity provider's keys, when AUTH_JWKS_URL is set."""
        self._verified: LRUCache[str, tuple[Principal, float, float]] = LRUCache(VERIFIED_TOKENS)

    async def authenticate(self, authorization: str | None) -> Principal:
        """The principal of an `Authorization: Bearer` header, or AuthError."""
        if not authorization:
            raise AuthError("missing bearer token")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthError("expected 'Authorization: Bearer <token>'")
        known = self._verified.get(token)
        now = time.time()
        if known is not None:
            principal, until, epoch = known
            if now < until and epoch == self._key_epoch():
                return principal
            del self._verified[token]
        claims = await self._verify(token)
        principal = self._principal(claims)
        self._remember(token, principal, now)
        return principal

    def _key_epoch(self) -> float:
        """The JWKS epoch (0 without one): a refreshed key set re-checks remembered tokens."""
        return self.jwks.epoch if self.jwks is not None else 0.0

    def _remember(self, token: str, principal: Principal, now: float) -> None:
        """Keep a verified token until its `exp` (with leeway), at most VERIFIED_FOR, and
        only while the key set it was checked against stays the one in use."""
        until = min(principal.expires_at + TOKEN_LEEWAY, now + VERIFIED_FOR)
        self._verified[token] = (principal, until, self._key_epoch())

    async def _verify(self, token: str) -> dict[str, object]:
        """Check signature, algorithm, expiry, issuer and audience."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthError("malformed token") from None
        alg = header.get("alg")
        if alg == "HS256" and self._secret:
            key: object = self._secret
        elif alg in ASYMMETRIC and self.jwks is not None:
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
                leeway=TOKEN_LEEWAY,
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
        assert self.jwks is not None
        if not isinstance(kid, str) or not kid:
            raise AuthError("token has no key id")
        # Keys are looked up by (kid, alg): an RS256 header never meets an EC key or vice versa.
        return (await self.jwks.key(kid, alg)).key

    def _principal(self, claims: dict[str, object]) -> Principal:
        """Read user, org and role from the verified claims."""
        org = claims.get(self._settings.auth_org_claim)
        role = claims.get(self._settings.auth_role_claim)
        sub = claims.get("sub")
        exp = claims.get("exp")
        if not isinstance(org, str) or not ORG_ID.fullmatch(org):
            raise AuthError("token has no valid org claim")
        if not isinstance(role, str) or not role:
            raise AuthError("token has no role claim")
        if not isinstance(sub, str) or not sub:
            raise AuthError("token has no subject")
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            raise AuthError("token has no valid expiry")
        return Principal(user_id=sub, org_id=org, role=role, expires_at=float(exp))


def dev_token(settings: Settings, org: str, role: str, user: str, ttl: int) -> str:
    """A signed HS256 token for local use."""
    if settings.auth_jwt_secret is None:
        raise ValueError("AUTH_JWT_SECRET is not set")
    if not ORG_ID.fullmatch(org):
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
