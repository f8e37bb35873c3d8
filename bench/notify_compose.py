"""The CPU one invoice email costs the worker before SMTP: rendering the template and composing
the MIME message (`Template.render` + `mailer.compose`), in this process, no I/O.

    .venv/bin/python -m bench.notify_compose --messages 5000 --runs 3

Prints CPU seconds (time.process_time) per 1,000 messages for each run, for rendering alone and
for rendering + composing."""

from __future__ import annotations

import argparse
import time

from notifications import mailer, templates
from notifications.emails import invoice_values


def joined_invoice(n: int) -> dict[str, object]:
    """An invoice as the worker's join gives it: three items, names with accents."""
    return {
        "id": n,
        "order_id": n,
        "po": f"PO-{n}",
        "organization_id": 7,
        "organization_name": "SuperCompany Tech",
        "customer_name": "José",
        "customer_last_name": "Núñez",
        "email": f"customer-{n}@example.com",
        "date": "2022-05-07T07:50:03-00:00",
        "deliver_date": "2022-05-07T07:53:03-00:00",
        "state": "pending",
        "total": "36.00",
        "items": [
            {"quantity": q, "description": f"item {q}", "code": f"C{q}", "amount": "6.00"} for q in (1, 2, 3)
        ],
    }


def measure(messages: int) -> tuple[float, float]:
    template = templates.builtin("invoice_created")
    assert template is not None
    settings = mailer.SmtpSettings()
    values = [invoice_values(joined_invoice(n)) for n in range(messages)]
    started = time.process_time()
    rendered = [template.render(v) for v in values]
    render = time.process_time() - started
    started = time.process_time()
    for n, (subject, text, html) in enumerate(rendered):
        mailer.compose(
            settings,
            to=f"customer-{n}@example.com",
            subject=subject,
            text=text,
            html=html,
            message_id=f"<invoice-{n}.default@x>",
        )
    compose = time.process_time() - started
    return render * 1000 / messages, compose * 1000 / messages


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    for run in range(1, args.runs + 1):
        render, compose = measure(args.messages)
        both = render + compose
        print(
            f"run {run}: render {render:.3f}, compose {compose:.3f}, both {both:.3f} CPU s per 1,000 messages"
        )


if __name__ == "__main__":
    main()
