"""Bearer JWT authentication: HS256 with AUTH_JWT_SECRET, RS256/ES256 through AUTH_JWKS_URL."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
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

VERIFIED_TOKENS = 131_072
"""Most verified tokens remembered at once, the least recently used forgotten first: the
current tokens of 100,000 active users, and room for the refreshed ones' predecessors, which
go first as nobody uses them; about 340 bytes each, 42 MiB when full (`make bench` measures
it; README: "Speed")."""

TOKEN_HEADERS = 64
"""JOSE headers (a token's first segment) remembered with the algorithm and key id they name:
every token of one issuer shares a handful, so a refreshed token is parsed once, not twice."""

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


def _key_of(authorization: str) -> bytes | None:
    """The remembered-token key of a header's text (HTTP headers are Latin-1); None for
    text no HTTP header could carry (a WebSocket's `connection_init`), never remembered."""
    try:
        return token_key(authorization.encode("latin-1"))
    except UnicodeEncodeError:
        return None


def _pinned(key: jwt.PyJWK) -> bool:
    """True for a signing key we accept: RS256 on RSA, or ES256 on EC P-256."""
    if key.public_key_use not in ("sig", None):
        return False
    if key.algorithm_name == "RS256":
        return isinstance(key.key, RSAPublicKey)
    if key.algorithm_name == "ES256":
        return isinstance(key.key, EllipticCurvePublicKey) and key.key.curve.name == "secp256r1"
    return False


def _parse_jwks(document: Any) -> tuple[dict[tuple[str, str], jwt.PyJWK], str]:
    """The usable keys of a JWKS document by (kid, alg), unusable entries skipped, and a
    fingerprint of them (the same keys, the same fingerprint)."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWK set")
    keys: dict[tuple[str, str], jwt.PyJWK] = {}
    used: dict[tuple[str, str], Any] = {}
    for entry in document["keys"]:
        try:
            key = jwt.PyJWK(entry)
        except (jwt.PyJWTError, AttributeError, TypeError, ValueError):
            continue
        if isinstance(key.key_id, str) and key.key_id and _pinned(key):
            keys.setdefault((key.key_id, key.algorithm_name), key)
            used.setdefault((key.key_id, key.algorithm_name), entry)
    return keys, json.dumps(sorted(used.items()), sort_keys=True, default=str)


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
        self._fingerprint = ""  # the usable keys' JWKs as fetched last
        self._epoch = -math.inf

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
        """When the key set in use was first fetched as it is: it moves with every successful
        refresh that adds, changes or withdraws a key, and only then."""
        return self._epoch

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
                keys, fingerprint = _parse_jwks(response.json())
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
        if fingerprint != self._fingerprint:
            self._fingerprint, self._epoch = fingerprint, self._fetched_at


Verified = tuple[str, str, str, float, float]
"""A remembered token: org, user, role, `exp`, key set epoch. Atoms in a plain tuple: once
the collector has seen one it stops tracking it, so a full collection does not walk them."""


def token_key(authorization: bytes) -> bytes:
    """What a remembered token is found by: 16 bytes of BLAKE2b of the whole `Authorization`
    value (a token is about 200 bytes; 100,000 of them kept whole would take 20 MB more)."""
    return hashlib.blake2b(authorization, digest_size=16).digest()


class Authenticator:
    """Verifies bearer tokens with pinned algorithms and the configured claims."""

    def __init__(self, settings: Settings, max_tokens: int = VERIFIED_TOKENS) -> None:
        self._settings = settings
        self.max_tokens = max_tokens
        """Verified tokens remembered at once, the least recently used forgotten first."""
        secret = settings.auth_jwt_secret
        self._secret = secret.get_secret_value() if secret else None
        self.jwks = JwksCache(settings.auth_jwks_url) if settings.auth_jwks_url else None
        """The identity provider's keys, when AUTH_JWKS_URL is set."""
        self._verified: OrderedDict[bytes, Verified] = OrderedDict()
        self._headers: dict[str, tuple[object, object]] = {}
        self._names: dict[str, str] = {}

    def remembered(self, authorization: bytes) -> str | None:
        """The org of an `Authorization` header (its raw bytes) whose token verified before
        and still holds (not expired, its key set unchanged), else None: one lookup."""
        key = token_key(authorization)
        known = self._verified.get(key)
        if known is None or not self._holds(known):
            return None
        self._verified.move_to_end(key)
        return known[0]

    async def authenticate(self, authorization: str | None) -> Principal:
        """The principal of an `Authorization: Bearer` header, or AuthError."""
        if not authorization:
            raise AuthError("missing bearer token")
        key = _key_of(authorization)
        known = self._verified.get(key) if key is not None else None
        if known is not None and key is not None:
            if self._holds(known):
                self._verified.move_to_end(key)
                org, user, role, expires_at, _ = known
                return Principal(user_id=user, org_id=org, role=role, expires_at=expires_at)
            del self._verified[key]
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthError("expected 'Authorization: Bearer <token>'")
        claims = await self._verify(token)
        principal = self._principal(claims)
        if key is not None:
            self._remember(key, principal)
        return principal

    def _holds(self, known: Verified) -> bool:
        """True while a remembered token is not expired and its key set is the one in use."""
        return time.time() < known[3] + TOKEN_LEEWAY and known[4] == self._epoch()

    def _epoch(self) -> float:
        """The JWKS epoch (0 without one): a changed key set re-checks remembered tokens."""
        return self.jwks.epoch if self.jwks is not None else 0.0

    def _remember(self, key: bytes, principal: Principal) -> None:
        """Keep a verified token until its `exp` (with leeway), and only while the key set it
        was checked against stays the one in use; the least recently used goes first. Org
        and role names are shared between the tokens that carry them."""
        self._verified[key] = (
            self._shared(principal.org_id),
            principal.user_id,
            self._shared(principal.role),
            principal.expires_at,
            self._epoch(),
        )
        if len(self._verified) > self.max_tokens:
            self._verified.popitem(last=False)
            if len(self._names) > 2 * self.max_tokens:
                self._names.clear()  # forget names no remembered token may carry any more

    def _shared(self, name: str) -> str:
        """One string object per org or role name."""
        return self._names.setdefault(name, name)

    def _header(self, token: str) -> tuple[object, object]:
        """The `alg` and `kid` a token's JOSE header names (remembered per header text)."""
        segment = token.partition(".")[0]
        found = self._headers.get(segment)
        if found is None:
            try:
                header = jwt.get_unverified_header(token)
            except jwt.PyJWTError:
                raise AuthError("malformed token") from None
            found = (header.get("alg"), header.get("kid"))
            if len(self._headers) >= TOKEN_HEADERS:
                self._headers.clear()
            self._headers[segment] = found
        return found

    async def _verify(self, token: str) -> dict[str, object]:
        """Check signature, algorithm, expiry, issuer and audience."""
        alg, kid = self._header(token)
        if alg == "HS256" and self._secret:
            key: object = self._secret
        elif alg in ASYMMETRIC and self.jwks is not None:
            key = await self._jwks_key(kid, str(alg))
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
