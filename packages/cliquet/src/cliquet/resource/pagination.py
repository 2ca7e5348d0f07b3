"""``Next-Page`` continuation tokens.

A token says where the next page starts (the sort values and id of the last
record served: keyset pagination, so records created or deleted between two
pages never shift what comes next) and what list it belongs to (a digest of
the resource path, the caller and the filters and sort). It is signed with an
HMAC, so a forged, truncated or edited token — or one replayed on another
list, by another user, with other filters — is refused with a 400, never
answered with someone else's records or a 500.

Format: ``base64url(json payload) "." base64url(hmac-sha256[:18])``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

import orjson


class InvalidToken(ValueError):
    """The token is malformed, forged, or was issued for another list."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    """Issues and checks tokens with a secret key.

    :param secret: the key (derived from ``cliquet.userid_hmac_secret``).
    """

    def __init__(self, secret: str):
        self._key = hashlib.sha256(b"cliquet-pagination:" + secret.encode()).digest()

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:18]

    @staticmethod
    def scope_digest(*parts: str) -> str:
        """A short digest binding a token to a list (path, user, filters, sort)."""
        return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=12).hexdigest()

    def encode(self, after: list, scope: str) -> str:
        """Return a token for the page after ``after`` in the list ``scope``."""
        payload = orjson.dumps({"a": after, "s": scope})
        return _b64(payload) + "." + _b64(self._sign(payload))

    def decode(self, token: str, scope: str) -> list:
        """Return the ``after`` values of ``token``.

        :raises InvalidToken: bad format, bad signature, or another scope.
        """
        try:
            encoded, _, signature = token.partition(".")
            payload = _unb64(encoded)
            if not hmac.compare_digest(_unb64(signature), self._sign(payload)):
                raise InvalidToken("signature mismatch")
            data = orjson.loads(payload)
        except (binascii.Error, ValueError, orjson.JSONDecodeError) as exc:
            raise InvalidToken(str(exc)) from exc
        if not isinstance(data, dict) or data.get("s") != scope or not isinstance(data.get("a"), list):
            raise InvalidToken("token issued for another list")
        return data["a"]
