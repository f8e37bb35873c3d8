"""No poison notification: what a caller sends with a control character is refused before
anything is written; a notification that cannot be composed fails once, for good; other errors
are retried a bounded number of times. Against the real database and SMTP sink."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from notifications import templates
from notifications.app import create_app
from notifications.config import Config
from notifications.mailer import SmtpSettings, Uncomposable, compose
from notifications.notify import Notifier
from tests.support import Tokens, mails, unique, wait_for_mails, wait_until


@pytest.fixture
async def notifications_client(
    test_env: dict[str, str], serve: Callable[..., Any], tokens: Tokens
) -> TestClient[Any, Any]:
    client: TestClient[Any, Any] = await serve(create_app(Config.from_env(test_env)), tokens.admin())
    return client


async def _rows(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    return [dict(r) for r in await pool.fetch("SELECT * FROM email_notifications ORDER BY id")]


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"po": "x\rBcc: victim@example.com"}, "options.po"),
        ({"po": "x\nBcc: victim@example.com"}, "options.po"),
        ({"po": "x\r\n\r\nforged body"}, "options.po"),
        ({"name": "nul\x00here"}, "options.name"),
        ({"na\rme": "x"}, "options.na\rme"),
        ({"x" * 101: "x"}, "options"),
    ],
)
async def test_control_characters_in_mail_options_are_refused_and_nothing_is_written(
    notifications_client: TestClient[Any, Any],
    test_env: dict[str, str],
    pool: asyncpg.Pool,
    options: dict[str, str],
    field: str,
) -> None:
    to = f"{unique('cr')}@example.com"
    resp = await notifications_client.post(
        "/mails", json={"code": "customer_created", "to": to, "options": options}
    )
    assert resp.status == 422, await resp.text()
    assert any(f["field"].startswith(field) for f in (await resp.json())["errors"])
    assert await _rows(pool) == []
    assert mails(test_env, containing=test_env["MESSAGE_ID_DOMAIN"]) == []


async def _insert(pool: asyncpg.Pool, offset: int, recipient: str, name: str) -> int:
    """A notification recorded as the worker records one, pending."""
    return int(
        await pool.fetchval(
            """INSERT INTO email_notifications
                   (source_topic, source_partition, source_offset, template, recipient, message_id, args)
               VALUES ('customers', 0, $1, 'customer_created', $2, $3, $4) RETURNING id""",
            offset,
            recipient,
            f"<hand-{offset}.{unique('')}@example.test>",
            {"name": name},
        )
    )


async def test_an_uncomposable_notification_fails_once_and_a_later_one_still_goes_out(
    pool: asyncpg.Pool, senders: Callable[..., Any], test_env: dict[str, str]
) -> None:
    victim, evil, good = (f"{unique(n)}@example.com" for n in ("victim", "evil", "good"))
    bad = await _insert(pool, 1, f"{victim}\r\nBcc: {evil}", "Eve")
    await senders()

    async def failed() -> bool:
        return bool(
            await pool.fetchval("SELECT status = 'failed' FROM email_notifications WHERE id = $1", bad)
        )

    await wait_until(failed)
    row = (await _rows(pool))[0]
    assert "control character" in row["error"] and row["failures"] == 0 and row["attempts"] == 0
    later = await _insert(pool, 2, good, "Ada")
    (message,) = await wait_for_mails(test_env, good)
    assert str(message["Subject"]) == "Welcome, Ada"
    assert mails(test_env, victim) == [] and mails(test_env, evil) == []

    # the sink stores a message before it answers 250, and the sender marks the row `sent` only
    # after that answer: the email can be in the sink while its row still says `sending`
    async def later_sent() -> bool:
        return bool(
            await pool.fetchval("SELECT status = 'sent' FROM email_notifications WHERE id = $1", later)
        )

    await wait_until(later_sent)
    assert [r["status"] for r in await _rows(pool)] == ["failed", "sent"]
    assert (await _rows(pool))[1]["id"] == later
    # the sweep never takes it up again: still failed, still not sent, after another sweep
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM email_notifications WHERE status <> 'failed' AND id = $1", bad
        )
        == 0
    )


class _Broken(Notifier):
    """A notifier whose template lookup fails as a bug or a lost connection would."""

    async def template(self, code: str, organization_id: int | None) -> templates.Template:
        raise RuntimeError("the database went away")


async def test_other_errors_are_retried_a_bounded_number_of_times(
    pool: asyncpg.Pool, senders: Callable[..., Any], test_env: dict[str, str]
) -> None:
    to = f"{unique('bounded')}@example.com"
    ident = await _insert(pool, 1, to, "Bo")
    await senders(_Broken(pool, SmtpSettings.from_env(test_env)), max_failures=3)

    async def given_up() -> bool:
        return bool(
            await pool.fetchval("SELECT status = 'failed' FROM email_notifications WHERE id = $1", ident)
        )

    await wait_until(given_up)
    row = (await _rows(pool))[0]
    assert row["failures"] == 3 and "database went away" in row["error"]
    assert mails(test_env, to) == []


def test_control_characters_from_data_are_replaced_in_the_subject_and_refused_in_other_headers() -> None:
    template = templates.Template("t", "Hello $name", "Hi $name", "<p>$name</p>")
    subject, text, _ = template.render({"name": "Eve\r\nBcc: evil@example.com"})
    assert subject == "Hello Eve Bcc: evil@example.com"
    settings = SmtpSettings()
    out = compose(settings, to="a@b.io", subject=subject, text=text, html="x", message_id="<m@x>")
    assert b"\nBcc:" not in out.data
    for header in (
        {"to": "a@b.io\r\nBcc: e@x.io"},
        {"to": "a@b.io\x00"},
        {"message_id": "<m@x>\nBcc: e@x.io"},
    ):
        with pytest.raises(Uncomposable):
            compose(
                settings,
                **{"to": "a@b.io", "subject": "s", "text": "t", "html": "h", "message_id": "<m@x>", **header},
            )
