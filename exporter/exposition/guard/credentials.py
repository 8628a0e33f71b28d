"""The credentials of an Authorization header: `Basic` user and password, a `Bearer` token compared in
constant time. Headers that are not what they claim are refused, never an error."""

from __future__ import annotations

import base64
import binascii
import hmac

__all__ = ["basic_credentials", "bearer_matches"]


def basic_credentials(header: str) -> tuple[str, str] | None:
    """User and password of a `Basic` Authorization header; None for anything else or anything unreadable."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip().encode("ascii"), validate=True).decode()
    except (binascii.Error, UnicodeError):
        return None
    user, colon, password = decoded.partition(":")
    return (user, password) if colon else None


def bearer_matches(header: str, token: str) -> bool:
    """Whether a `Bearer` Authorization header carries `token`, in constant time. aiohttp hands undecodable
    header bytes over as lone surrogates, which surrogateescape turns back into the bytes that were sent."""
    scheme, _, provided = header.partition(" ")
    sent = provided.strip().encode("utf-8", "surrogateescape")
    return scheme.lower() == "bearer" and hmac.compare_digest(sent, token.encode())
