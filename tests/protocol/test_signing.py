"""Signing: the documented test vector, both key forms, and secrets that never leak."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from blotter.protocol import SECRET_ENCODINGS, SigningError, auth_headers, mask_key, now_ms, sign, sign_message
from blotter.protocol.signing import key_bytes

# The exchange's documentation, "Authentication": the raw-bytes form, REST path ``info``.
VECTOR_SECRET = "hV8FgjyJtpvVeAcMAgzgAFQCN36wmbWuN7o3WPcYcYhFd8qvE43gzFGVsFcCqMNk"
VECTOR_MESSAGE = "1608133910000+info"
VECTOR_SIGNATURE = "/pwaAgWZQ1Xd/J4yZ4ReHSPQxd3ORP/YR8TvAttqqYM="

B64_SECRET = base64.b64encode(b"\x00\x01binary secret \xff\xfe with bytes").decode("ascii")


def reference(key: bytes, message: str) -> str:
    """Independent HMAC-SHA256 → base64, straight from the standard library."""
    return base64.b64encode(hmac.new(key, message.encode(), hashlib.sha256).digest()).decode()


def test_documented_vector_raw_form():
    assert sign_message(VECTOR_SECRET, VECTOR_MESSAGE, "raw") == VECTOR_SIGNATURE


def test_documented_vector_via_sign_with_rest_path():
    assert sign(VECTOR_SECRET, 1608133910000, "raw", path="info") == VECTOR_SIGNATURE


def test_reference_helper_agrees_with_vector():
    # guards the helper used below
    assert reference(VECTOR_SECRET.encode(), VECTOR_MESSAGE) == VECTOR_SIGNATURE


def test_base64_form_uses_decoded_secret():
    expected = reference(base64.b64decode(B64_SECRET), "1608133910000+v2/stream")
    assert sign(B64_SECRET, 1608133910000, "base64") == expected
    assert sign(B64_SECRET, 1608133910000) == expected  # base64 is the default
    assert sign(B64_SECRET, 1608133910000, "raw") != expected


def test_vector_secret_in_base64_form_differs():
    # The documented secret happens to be valid base64; the two forms must still differ.
    b64 = sign_message(VECTOR_SECRET, VECTOR_MESSAGE, "base64")
    assert b64 == reference(base64.b64decode(VECTOR_SECRET), VECTOR_MESSAGE)
    assert b64 != VECTOR_SIGNATURE


def test_stream_path_is_signed():
    t = 1700000000123
    assert sign(VECTOR_SECRET, t, "raw") == reference(VECTOR_SECRET.encode(), f"{t}+v2/stream")


def test_key_bytes_forms():
    assert key_bytes(VECTOR_SECRET, "raw") == VECTOR_SECRET.encode("utf-8")
    assert key_bytes(B64_SECRET, "base64") == base64.b64decode(B64_SECRET)
    assert set(SECRET_ENCODINGS) == {"base64", "raw"}


@pytest.mark.parametrize("secret", ["not base64!!", "abc", "sëcret-with-ümlauts==", "a-b_c-d_e-f_g-h_"])
def test_non_base64_secret_raises_helpful_error_without_the_secret(secret):
    with pytest.raises(SigningError) as info:
        sign(secret, 1608133910000, "base64")
    text = str(info.value)
    assert secret not in text
    assert "raw" in text  # says how to switch
    assert "secret-encoding" in text or "secret_encoding" in text
    assert info.value.__cause__ is None and info.value.__suppress_context__
    # ...and the raw form accepts the same secret
    assert sign(secret, 1608133910000, "raw") == reference(secret.encode(), "1608133910000+v2/stream")


def test_unknown_encoding_is_an_error():
    with pytest.raises(SigningError):
        sign(B64_SECRET, 1, "hex")  # type: ignore[arg-type]


def test_auth_headers():
    headers = auth_headers("my-api-key-1234", B64_SECRET, "base64", timestamp_ms=1608133910000)
    assert set(headers) == {"x-auth-key", "x-auth-timestamp", "x-auth-signature"}
    assert headers["x-auth-key"] == "my-api-key-1234"
    assert headers["x-auth-timestamp"] == "1608133910000"
    assert headers["x-auth-signature"] == reference(base64.b64decode(B64_SECRET), "1608133910000+v2/stream")
    raw = auth_headers("k", VECTOR_SECRET, "raw", timestamp_ms=1608133910000)
    assert raw["x-auth-signature"] == reference(VECTOR_SECRET.encode(), "1608133910000+v2/stream")
    assert all(isinstance(v, str) for v in headers.values())


def test_auth_headers_default_timestamp_is_now():
    before = now_ms()
    headers = auth_headers("k", B64_SECRET)
    after = now_ms()
    assert before <= int(headers["x-auth-timestamp"]) <= after
    assert headers["x-auth-signature"] == sign(B64_SECRET, int(headers["x-auth-timestamp"]))


def test_now_ms_is_milliseconds():
    import time

    assert abs(now_ms() - time.time() * 1000) < 5_000


def test_mask_key_shows_only_first_and_last_four():
    key = "BclE7dBGbS1AP3VnOuq6s8fJH0fWbH7r"
    masked = mask_key(key)
    assert masked.startswith("BclE") and masked.endswith("bH7r")
    assert key[4:-4] not in masked
    hidden = key[4:-4]
    for i in range(len(hidden) - 2):
        assert hidden[i : i + 3] not in masked
    assert len(masked) < len(key)


@pytest.mark.parametrize("key", ["", "a", "abcd", "abcdefgh"])
def test_mask_short_key_shows_nothing(key):
    masked = mask_key(key)
    for ch in set(key):
        assert ch not in masked
