"""The auth middleware's cache of verified tokens (servicekit.auth.VerifiedTokens): a token is
verified once, then served by its exact text while it has not expired; a token altered by one
character, forged with another key, or expired since it was cached is refused; the cache is
bounded."""

from __future__ import annotations

from pathlib import Path

import pytest

from servicekit import auth
from servicekit.auth import AuthSettings, VerifiedTokens
from servicekit.errors import Unauthorized
from tests.support import Tokens, write_signing_keys


@pytest.fixture
def settings(signing_keys: dict[str, str]) -> AuthSettings:
    return AuthSettings(public_key=Path(signing_keys["JWT_PUBLIC_KEY_FILE"]).read_text(), leeway_seconds=5)


def test_a_token_is_verified_once_then_served_by_its_text(
    settings: AuthSettings, tokens: Tokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = VerifiedTokens(settings)
    token = tokens.make(user_id=7, orgs={3: "member"})
    first = cache.principal(token)
    calls = []
    monkeypatch.setattr(auth, "verify", lambda *a: calls.append(a) or first)
    assert cache.principal(token) is first
    assert calls == []
    assert first.user_id == 7 and first.orgs == {3: "member"}


def test_altered_forged_and_malformed_tokens_are_refused_even_after_the_real_one_is_cached(
    settings: AuthSettings, tokens: Tokens, tmp_path: Path
) -> None:
    cache = VerifiedTokens(settings)
    token = tokens.make(admin=True)
    cache.principal(token)
    head, body, signature = token.split(".")
    altered = f"{head}.{body}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    forged = tokens.make(admin=True, key_file=write_signing_keys(tmp_path)["JWT_PRIVATE_KEY_FILE"])
    for bad in (altered, forged, token + " ", "x" * 100_000, "a.b.c\x00"):
        with pytest.raises(Unauthorized):
            cache.principal(bad)


def test_a_cached_token_that_has_expired_since_is_refused(
    settings: AuthSettings, tokens: Tokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = VerifiedTokens(settings)
    token = tokens.make(ttl=60)
    who = cache.principal(token)
    later = who.expires_at.timestamp() + settings.leeway_seconds + 1
    monkeypatch.setattr(auth.time, "time", lambda: later)
    with pytest.raises(Unauthorized, match="expired"):
        cache.principal(token)


def test_the_cache_keeps_at_most_its_size(settings: AuthSettings, tokens: Tokens) -> None:
    cache = VerifiedTokens(settings, size=2)
    for n in range(5):
        cache.principal(tokens.make(user_id=n))
    assert len(cache._known) == 2


def test_one_token_takes_at_most_one_entry_whatever_its_spelling(
    settings: AuthSettings, tokens: Tokens
) -> None:
    """The decoder accepts other spellings of a token (here its signature with '=' padding; PyJWT
    before 2.14 also skipped characters outside the alphabet): kept by their text, one valid
    token could fill the cache with copies of itself and push every other client's token out."""
    cache = VerifiedTokens(settings, size=4)
    kept = [tokens.make(user_id=n) for n in range(3)]
    for token in kept:
        cache.principal(token)
    mine = tokens.make(user_id=7, orgs={3: "member"})
    padded = mine + "=="  # the signature's 64 bytes take 86 characters: '==' pads them to 88
    assert auth.verify(settings, padded).user_id == 7  # the uncached path accepts it: so must we
    for spelling in (mine, padded, padded, padded):
        assert cache.principal(spelling).orgs == {3: "member"}
    assert list(cache._known) == [*kept, mine]


def test_a_token_too_long_to_keep_is_verified_every_time_and_never_kept(
    settings: AuthSettings, tokens: Tokens
) -> None:
    cache = VerifiedTokens(settings, size=4)
    token = tokens.make(user_id=9, orgs={n: "viewer" for n in range(1, 400)})
    assert len(token) > auth.MAX_CACHED_TOKEN_CHARS
    assert cache.principal(token).orgs[399] == "viewer"
    assert cache.principal(token).user_id == 9
    assert cache._known == {}


def test_a_cached_token_is_refused_at_the_same_instant_as_the_verifier_refuses_it(
    settings: AuthSettings, tokens: Tokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PyJWT refuses once exp <= now - leeway: the cache answers the same on either side of it."""
    cache = VerifiedTokens(settings)
    token = tokens.make(ttl=60)
    who = cache.principal(token)
    limit = who.expires_at.timestamp() + settings.leeway_seconds
    monkeypatch.setattr(auth.time, "time", lambda: limit - 0.001)
    assert cache.principal(token) is who
    monkeypatch.setattr(auth.time, "time", lambda: limit)
    with pytest.raises(Unauthorized, match="expired"):
        cache.principal(token)
