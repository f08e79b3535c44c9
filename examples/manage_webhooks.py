"""
Manage webhooks on a SQLite file, the way an admin screen would: create, list, test, enable,
rotate the secret, disable, delete, and read the audit log.

Run it from a checkout (the package installed):

    python examples/manage_webhooks.py              # a new temporary database
    python examples/manage_webhooks.py --db hooks.sqlite3
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from pendo_webhooks.registry import SEGMENT_EU_ENDPOINT, Actor, Webhook, WebhookRegistry
from pendo_webhooks.storage import SQLiteStorage


def describe(hook: Webhook) -> str:
    """
    One line about a webhook, with nothing secret in it.
    """
    state = "enabled " if hook.enabled else "disabled"
    categories = ", ".join(sorted(c.value for c in hook.categories))
    return (
        f"{hook.id}  {hook.kind.value:<7}  {state}  v{hook.version}  {hook.name}  [{categories}]"
    )


def main(argv: list[str] | None = None) -> int:
    """
    Walk through a webhook's life on the database named by ``--db``.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--db", type=Path, help="SQLite file to use (default: a new temporary file)"
    )
    args = parser.parse_args(argv)
    db: Path = args.db or Path(tempfile.mkdtemp(prefix="pendo-webhooks-")) / "webhooks.sqlite3"
    admin = Actor("admin@example.com", is_admin=True)
    print(f"database  {db}")

    with SQLiteStorage(db) as storage:
        registry = WebhookRegistry(storage)

        hook = registry.create(
            admin,
            name="NPS responses to Zapier",
            url="https://hooks.zapier.com/hooks/catch/123456/abcdef/",
            secret="any text, special chars ok!&?<>",
            categories=["npsSubmitted", "npsDisplayed"],
        )
        print(f"created   {hook!r}")
        segment = registry.create(
            admin,
            name="Track events to Segment (EU)",
            kind="segment",
            write_key="demo-write-key",
            segment_endpoint=SEGMENT_EU_ENDPOINT,
            categories=["trackEventReceived"],
        )
        print(f"created   {segment!r}")

        print("list      every webhook, enabled or not:")
        for each in registry.list(admin):
            print(f"            {describe(each)}")

        print(
            f"test      (placeholder) the delivery engine's send_test(admin, {hook.id!r}) will "
            "post a sample event here; it works while the webhook is still disabled"
        )

        hook = registry.enable(admin, hook.id)
        print(f"enabled   {describe(hook)}")
        names = [w.name for w in registry.subscribed("npsSubmitted")]
        print(f"dispatch  an npsSubmitted event would now go to {names}")

        hook = registry.rotate_secret(admin, hook.id)
        retired = hook.previous_secrets[0]
        print(
            f"rotated   {hook.id}: a new whsec_ secret signs (show it to the receiver once, "
            f"with secret.reveal()); the old one also signs until "
            f"{retired.expires_at:%Y-%m-%d %H:%M} UTC"
        )

        hook = registry.disable(admin, hook.id, reason="Receiver is being migrated")
        print(f"disabled  {describe(hook)} (reason: {hook.disabled_reason})")

        registry.delete(admin, hook.id)
        registry.delete(admin, segment.id)
        print(f"deleted   {hook.id} and {segment.id}; {len(registry.list(admin))} webhooks left")

        print("audit     oldest first (secrets and write keys are never shown):")
        for entry in reversed(registry.audit(admin, limit=50)):
            fields = ", ".join(sorted(entry.changes))
            print(
                f"            {entry.at:%H:%M:%S}  {entry.actor_id}  {entry.action:<13}  "
                f"{entry.webhook_id}  {fields}"
            )
            if entry.action == "rotate_secret":
                print(f"              secret: {entry.changes['secret']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
