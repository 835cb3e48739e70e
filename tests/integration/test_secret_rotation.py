"""Key rotation against a running server: secrets sealed under key A, the ring changed to "B,A",
`rotate-secrets` (the service and the CLI) re-encrypts everything under B without a write lost."""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import sys
import uuid
from pathlib import Path
from typing import Any
from uuid import UUID

import aiohttp

from app.domain.credentials import CIPHERTEXT_COLUMNS, Credentials
from app.domain.ids import decode_any
from app.repositories.secrets import SECRET_COLUMNS, SecretRepository, StoredSecret
from app.secrets import SecretLocation
from app.services.secret_rotation import SecretRotation
from tests.conftest import LiveServer, make_settings, running_server
from tests.support.factories import make_tenant
from tests.support.graphql import GraphQLClient

REPO = Path(__file__).resolve().parents[2]


def new_key(kid: str) -> str:
    return f"{kid}:{base64.b64encode(secrets.token_bytes(32)).decode()}"


KEY_A, KEY_B, KEY_C = new_key("keyA"), new_key("keyB"), new_key("keyC")
RING_A = KEY_A
RING_BA = f"{KEY_B},{KEY_A}"

CREATE = """
mutation($input: ConnectionCreateInput!) {
  connectionCreate(input: $input) { connection { id } userErrors { code } }
}"""
WEBHOOK_CREATE = """
mutation($input: WebhookCreateInput!) {
  webhookCreate(input: $input) { webhook { id } userErrors { code } }
}"""
WEBHOOK_SECRET = "whsec_ROTATE_0123456789abcdefghij"

Location = tuple[str, UUID, str]


# Input field -> the column that stores it.
COLUMN_OF = {
    "token": "token_ciphertext",
    "clientKey": "client_key_ciphertext",
    "secretKey": "secret_key_ciphertext",
}


def uuid_of(global_id: str) -> UUID:
    decoded = decode_any(global_id)
    assert decoded is not None
    return decoded[1]


async def seed(live: LiveServer, http: aiohttp.ClientSession) -> dict[Location, str]:
    """Three connections and two models with credentials, and a webhook with its signing secret,
    each sealed under the server's key;
    returns every stored secret's plaintext by (table, row id, column)."""
    tenant = await make_tenant(live.services, "Rotating")
    admin = GraphQLClient(http, live.url, tenant.admin_key)
    plaintexts: dict[Location, str] = {}
    for name, credentials in (
        ("token only", {"token": "sk-ROTATE-1"}),
        ("everything", {"token": "sk-ROTATE-2", "clientKey": "ck-ROTATE-2", "secretKey": "sec-ROTATE-2"}),
        ("header keys", {"clientKey": "ck-ROTATE-3", "secretKey": "sec-ROTATE-3"}),
    ):
        payload = await admin.mutate(
            CREATE,
            {"organizationId": tenant.organization_gid, "name": name, "provider": "OPENAI", **credentials},
        )
        assert payload["userErrors"] == []
        row_id = uuid_of(payload["connection"]["id"])
        for field, value in credentials.items():
            plaintexts[("connections", row_id, COLUMN_OF[field])] = value
    for name, credentials in (
        ("model token", {"token": "sk-MODEL-1"}),
        ("model keys", {"clientKey": "ck-MODEL-2", "secretKey": "sec-MODEL-2"}),
    ):
        row_id = uuid.uuid4()
        sealed = {
            COLUMN_OF[field]: live.services.keyring.encrypt(
                value, SecretLocation("models", row_id, COLUMN_OF[field])
            )
            for field, value in credentials.items()
        }
        await live.services.db.execute(
            """INSERT INTO models (id, kind, organization_id, scope, name, model_group, provider,
                   token_ciphertext, client_key_ciphertext, secret_key_ciphertext)
               VALUES ($1, 'USER', $2, 'ORGANIZATION', $3, 'CHAT', 'OPENAI', $4, $5, $6)""",
            row_id,
            tenant.organization.id,
            name,
            *(sealed.get(column) for column in CIPHERTEXT_COLUMNS),
        )
        for field, value in credentials.items():
            plaintexts[("models", row_id, COLUMN_OF[field])] = value
    webhook = await admin.mutate(
        WEBHOOK_CREATE,
        {
            "organizationId": tenant.organization_gid,
            "url": "https://hooks.example.com/x",
            "secret": WEBHOOK_SECRET,
        },
    )
    assert webhook["userErrors"] == []
    plaintexts[("webhooks", uuid_of(webhook["webhook"]["id"]), "secret_key_ciphertext")] = WEBHOOK_SECRET
    return plaintexts


async def stored(live: LiveServer) -> dict[Location, bytes]:
    found: dict[Location, bytes] = {}
    for table, columns in SECRET_COLUMNS.items():
        for column in columns:
            rows = await live.services.db.fetch(
                f"SELECT id, {column} AS c FROM {table} WHERE {column} IS NOT NULL"  # noqa: S608
            )
            found.update({(table, r["id"], column): r["c"] for r in rows})
    return found


async def read_all(live: LiveServer, plaintexts: dict[Location, str]) -> None:
    """Reads every secret the way the server does, and checks it."""
    keyring = live.services.keyring
    for location, ciphertext in (await stored(live)).items():
        assert keyring.decrypt(ciphertext, SecretLocation(*location)) == plaintexts[location]
    for row_id in {row_id for table, row_id, _ in plaintexts if table == "connections"}:
        credentials = await live.services.connections.credentials_for(row_id)
        assert credentials == Credentials(
            *(plaintexts.get(("connections", row_id, column)) for column in CIPHERTEXT_COLUMNS)
        )


async def assert_all_under(live: LiveServer, kid: str, plaintexts: dict[Location, str]) -> None:
    ciphertexts = await stored(live)
    assert set(ciphertexts) == set(plaintexts)
    assert {live.services.keyring.key_id_of(c) for c in ciphertexts.values()} == {kid}
    await read_all(live, plaintexts)


def rotated_lines(connections: tuple[int, int, int], models: tuple[int, int, int]) -> list[str]:
    """The report's per-column lines of a first rotation to keyB with nothing changed meanwhile."""
    return [
        f"{table}.{column}: {count} re-encrypted, 0 already under key keyB, 0 skipped (changed concurrently)"
        for table, counts in (("connections", connections), ("models", models))
        for column, count in zip(CIPHERTEXT_COLUMNS, counts, strict=True)
    ] + [
        "webhooks.secret_key_ciphertext: 1 re-encrypted, 0 already under key keyB, "
        "0 skipped (changed concurrently)"
    ]


async def run_cli(database_url: str, secret_keys: str, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "DATABASE_URL": database_url, "MODELGATE_SECRET_KEYS": secret_keys}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app",
        "rotate-secrets",
        *args,
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    return process.returncode or 0, out.decode(), err.decode()


async def test_rotation_moves_every_secret_to_the_first_key_while_reads_go_on(
    database_url: str, http: aiohttp.ClientSession
) -> None:
    async with running_server(make_settings(database_url, secret_keys=RING_A)) as old:
        plaintexts = await seed(old, http)
        await assert_all_under(old, "keyA", plaintexts)

    async with running_server(make_settings(database_url, secret_keys=RING_BA)) as live:
        await read_all(live, plaintexts)  # old ciphertexts still read after the restart
        rotation = SecretRotation(SecretRepository(live.services.db), live.services.keyring, batch_size=1)
        done = asyncio.Event()

        async def keep_reading() -> int:
            reads = 0
            while not done.is_set():
                await read_all(live, plaintexts)
                reads += 1
            return reads

        async def rotate() -> Any:
            try:
                return await rotation.run()
            finally:
                done.set()

        report, reads = await asyncio.gather(rotate(), keep_reading())
        assert reads >= 1
        assert report.failures == []
        assert report.lines() == [
            *rotated_lines((2, 2, 2), (1, 1, 1)),
            "total: 10 re-encrypted, 0 already current, 0 skipped, 0 failed",
        ]
        await assert_all_under(live, "keyB", plaintexts)

        again = await rotation.run()
        assert again.lines()[-1] == "total: 0 re-encrypted, 10 already current, 0 skipped, 0 failed"


async def test_a_secret_changed_during_rotation_is_skipped_not_overwritten(
    database_url: str, http: aiohttp.ClientSession
) -> None:
    async with running_server(make_settings(database_url, secret_keys=RING_A)) as old:
        plaintexts = await seed(old, http)
        old_instance_keyring = old.services.keyring

    async with running_server(make_settings(database_url, secret_keys=RING_BA)) as live:
        target = next(loc for loc in plaintexts if loc[0] == "connections" and loc[2] == "token_ciphertext")
        changed = "sk-CHANGED-DURING-ROTATION"

        class ChangedAfterRead(SecretRepository):
            """Between rotation's read and its write, an instance still on key A saves a new token."""

            async def batch(
                self, table: str, column: str, after: UUID | None, limit: int
            ) -> list[StoredSecret]:
                rows = await super().batch(table, column, after, limit)
                target_table, target_id, target_column = target
                if (table, column) == (target_table, target_column) and target_id in {r.row_id for r in rows}:
                    sealed = old_instance_keyring.encrypt(changed, SecretLocation(*target))
                    await live.services.db.execute(
                        "UPDATE connections SET token_ciphertext = $2 WHERE id = $1", target_id, sealed
                    )
                return rows

        rotation = SecretRotation(ChangedAfterRead(live.services.db), live.services.keyring, batch_size=10)
        report = await rotation.run()
        token_count = report.counts[0]
        assert (token_count.table, token_count.column) == ("connections", "token_ciphertext")
        assert (token_count.rotated, token_count.current, token_count.skipped) == (1, 0, 1)
        assert token_count.line("keyB").endswith("1 skipped (changed concurrently)")
        assert report.lines()[-1] == "total: 9 re-encrypted, 0 already current, 1 skipped, 0 failed"
        # The concurrent write stands: its secret, still under the key it was written with.
        plaintexts[target] = changed
        ciphertexts = await stored(live)
        assert live.services.keyring.key_id_of(ciphertexts[target]) == "keyA"
        await read_all(live, plaintexts)

        # The next run picks it up.
        again = await SecretRotation(SecretRepository(live.services.db), live.services.keyring).run()
        assert again.lines()[-1] == "total: 1 re-encrypted, 9 already current, 0 skipped, 0 failed"
        await assert_all_under(live, "keyB", plaintexts)


async def test_the_cli_rotates_while_the_server_runs_and_fails_loudly_on_an_unknown_key(
    database_url: str, http: aiohttp.ClientSession
) -> None:
    async with running_server(make_settings(database_url, secret_keys=RING_A)) as old:
        plaintexts = await seed(old, http)

    async with running_server(make_settings(database_url, secret_keys=RING_BA)) as live:
        code, out, err = await run_cli(database_url, RING_BA, "--batch-size", "2")
        assert (code, err.count("cannot decrypt")) == (0, 0)
        assert out.strip().splitlines() == [
            *rotated_lines((2, 2, 2), (1, 1, 1)),
            "total: 10 re-encrypted, 0 already current, 0 skipped, 0 failed",
        ]
        await assert_all_under(live, "keyB", plaintexts)

        # A ring that has lost key B cannot read them: each one is named, nothing is written.
        code, out, err = await run_cli(database_url, KEY_C)
        assert code != 0
        assert (
            out.strip().splitlines()[-1] == "total: 0 re-encrypted, 0 already current, 0 skipped, 10 failed"
        )
        failures = [line for line in err.splitlines() if line.startswith("cannot decrypt")]
        assert sorted(failures) == sorted(
            f"cannot decrypt {table} row {row_id} column {column}: no key 'keyB' in the key ring"
            for table, row_id, column in plaintexts
        )
        assert not any(secret in out + err for secret in plaintexts.values())
        await assert_all_under(live, "keyB", plaintexts)
