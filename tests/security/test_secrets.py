"""No password and no hash ever leaves the service: not in answers, events or logs."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from kafka_integration import KafkaSettings
from security.app import create_app
from security.config import Config
from tests.support import Tokens, read_topic

ROOT_PASSWORD = "Root-Secret-Pw-1"
USER_PASSWORD = "Kim-Secret-Pw-22"
NEW_PASSWORD = "Kim-Secret-Pw-333"
SECRETS = (ROOT_PASSWORD, USER_PASSWORD, NEW_PASSWORD, "$argon2")


async def test_passwords_and_hashes_appear_in_no_answer_event_or_log(
    test_env: dict[str, str],
    serve: Callable[..., Any],
    kafka: KafkaSettings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    env = {**test_env, "ADMIN_EMAIL": "root@example.com", "ADMIN_PASSWORD": ROOT_PASSWORD}
    c = await serve(create_app(Config.from_env(env)))
    answers: list[bytes] = []

    async def call(method: str, path: str, **kwargs: Any) -> Any:
        resp = await c.request(method, path, **kwargs)
        answers.append(await resp.read())
        answers.append(repr(dict(resp.headers)).encode())
        return resp

    root = await call("POST", "/login", json={"email": "root@example.com", "password": ROOT_PASSWORD})
    admin = Tokens.header((await root.json())["jwt"])
    kim = await (
        await call(
            "POST",
            "/users",
            json={"user": {"email": "kim@example.com", "password": USER_PASSWORD}},
            headers=admin,
        )
    ).json()
    await call(
        "POST",
        "/users",
        json={"user": {"email": "kim@example.com", "password": USER_PASSWORD}},
        headers=admin,
    )
    await call("POST", "/users", json={"user": {"email": "bad", "password": USER_PASSWORD}}, headers=admin)
    await call(
        "POST",
        "/users",
        json={"user": {"email": "x@example.com", "password": USER_PASSWORD[:5]}},
        headers=admin,
    )
    await call(
        "POST",
        "/users",
        json={"user": {"email": "x@example.com", "password": [USER_PASSWORD]}},
        headers=admin,
    )
    await call(
        "POST",
        f"/users/{kim['id']}/grants",
        json={"grant": {"organization_id": 7, "role": "viewer"}},
        headers=admin,
    )
    await call("POST", "/login", json={"email": "kim@example.com", "password": NEW_PASSWORD})
    await call("POST", "/login", json={"email": "nobody@example.com", "password": USER_PASSWORD})
    await call(
        "POST", "/login", data=f'{{"email": "kim@example.com", "password": "{USER_PASSWORD}"', headers={}
    )
    login = await call("POST", "/login", json={"email": "kim@example.com", "password": USER_PASSWORD})
    kim_token = Tokens.header((await login.json())["jwt"])
    await call("PUT", f"/users/{kim['id']}", json={"user": {"password": NEW_PASSWORD}}, headers=kim_token)
    await call(
        "PUT", f"/users/{kim['id']}", json={"user": {"password": NEW_PASSWORD, "admin": True}}, headers=admin
    )
    await call("GET", f"/users/{kim['id']}", headers=admin)
    await call("GET", "/users", headers=admin)
    await call("GET", f"/users/{kim['id']}/grants", headers=admin)
    await call("DELETE", f"/users/{kim['id']}", headers=admin)
    await call("POST", "/logout", headers=admin)

    messages = []
    for topic, at_least in (("users", 6), ("grants", 3), ("revocations", 4)):
        found = await read_topic(kafka, topic, min_count=at_least)
        assert len(found) >= at_least, topic
        messages.extend(found)
    published = "\n".join(repr(m) for m in messages)
    logs = "\n".join(f"{r.getMessage()} {r.exc_text or ''} {r.args!r}" for r in caplog.records)
    assert "kim@example.com" in published  # the check looks where the data is
    assert len(caplog.records) > 0
    for secret in SECRETS:
        assert secret not in published, secret
        assert secret not in logs, secret
        assert all(secret.encode() not in answer for answer in answers), secret
