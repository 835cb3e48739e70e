"""Command line: `modelgate` (or python -m app) {serve,migrate,export-schema,create-api-key,seed-catalog,
rotate-secrets,webhook-receiver}."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import orjson

from app.cli_input import CommandError, object_id, require_database
from app.config import Settings
from app.db import Database
from app.domain.auth import OPERATOR, Role
from app.embedded_postgres import EmbeddedPostgres
from app.logs import configure_logging
from app.migrations import migrate
from app.services.catalog_seed import SeedReport, seed_catalog
from app.services.container import Services
from app.services.demo import seed_demo
from app.services.secret_rotation import DEFAULT_BATCH_SIZE, RotationReport

log = logging.getLogger("modelgate")


@contextlib.contextmanager
def database(settings: Settings) -> Iterator[Settings]:
    """Settings with a database URL: DATABASE_URL, else an embedded PostgreSQL in data_dir
    (started here, stopped on the way out)."""
    if settings.database_url:
        require_database(settings.database_url, settings.db_acquire_timeout)
        yield settings
        return
    embedded = EmbeddedPostgres(settings.data_dir / "postgres")
    try:
        yield settings.model_copy(update={"database_url": embedded.dsn})
    finally:
        embedded.stop()


@contextlib.asynccontextmanager
async def services_for(settings: Settings) -> AsyncIterator[Services]:
    assert settings.database_url
    db = await Database.connect(
        settings.database_url, min_size=1, max_size=2, query_timeout=settings.db_query_timeout
    )
    try:
        yield Services(settings, db, settings.database_url)
    finally:
        await db.close()


async def _prepare(settings: Settings) -> None:
    """Migrates, then seeds the demo organization on first start and prints its keys."""
    assert settings.database_url
    await migrate(settings.database_url)
    keys_file = settings.data_dir / "demo-keys.json"
    async with services_for(settings) as services:
        keys = await seed_demo(services)
    if keys is not None:
        # Development convenience: the demo keys are kept beside the embedded database so that
        # later starts can show them again. Never done for anything but the demo organization.
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        keys_file.write_bytes(
            orjson.dumps(
                {
                    "platformAdmin": keys.platform_admin,
                    "demo": keys.demo_organization,
                    "project": keys.demo_project,
                }
            )
        )
        keys_file.chmod(0o600)
    if keys_file.exists():
        saved = orjson.loads(keys_file.read_bytes())
        for label, name in (
            ("Platform-admin key", "platformAdmin"),
            ("Demo organization key", "demo"),
            ("Demo project key", "project"),
        ):
            if name in saved:
                print(f"{label}: {saved[name]}")


def serve(settings: Settings) -> None:
    from app.server import create_app
    from app.serving import SHUTDOWN_TIMEOUT
    from app.serving import serve as run_server
    from app.workers import supervise

    status = 0
    with database(settings) as ready:  # the embedded PostgreSQL outlives every worker
        asyncio.run(_prepare(ready))
        base = f"http://{ready.host}:{ready.port}"
        print(f"Chat page: {base}/   GraphQL (and GraphiQL): {base}/graphql", flush=True)
        if ready.worker_count > 1:
            status = supervise(ready, ready.worker_count)
        else:
            run_server(
                create_app(ready),
                host=ready.host,
                port=ready.port,
                limits=ready.client_limits,
                shutdown_timeout=SHUTDOWN_TIMEOUT,
            )
    if status:
        raise SystemExit(status)


async def _seed_catalog(settings: Settings) -> SeedReport:
    async with services_for(settings) as services:
        return await seed_catalog(services.models)


def run_seed_catalog(settings: Settings) -> None:
    with database(settings) as ready:
        assert ready.database_url
        asyncio.run(migrate(ready.database_url))
        report = asyncio.run(_seed_catalog(ready))
    print(f"created {len(report.created)} system model(s), {len(report.existing)} already present")


def run_migrations(settings: Settings) -> None:
    with database(settings) as ready:
        assert ready.database_url
        applied = asyncio.run(migrate(ready.database_url))
        print(f"applied {len(applied)} migration(s)")


def export_schema(output: Path | None) -> None:
    from app.api.schema import export_sdl

    sdl = export_sdl()
    if output is None:
        sys.stdout.write(sdl)
    else:
        output.write_text(sdl)


async def _create_api_key(settings: Settings, args: argparse.Namespace) -> str:
    async with services_for(settings) as services:
        if args.platform_admin:
            _, key = await services.api_keys.create_unchecked(
                name=args.name, organization_id=None, platform_admin=True
            )
            return key
        organization_id = object_id(args.organization, "Organization", "--organization")
        if await services.organizations.get(OPERATOR, organization_id) is None:
            raise CommandError(f"--organization: no organization {args.organization}")
        project_id = object_id(args.project, "Project", "--project") if args.project else None
        if project_id is not None:
            project = await services.projects.get(OPERATOR, project_id)
            if project is None or project.organization_id != organization_id:
                raise CommandError(
                    f"--project: no project {args.project} in organization {args.organization}"
                )
        _, key = await services.api_keys.create_unchecked(
            name=args.name,
            organization_id=organization_id,
            project_id=project_id,
            role=Role(args.role.upper()),
        )
        return key


def create_api_key(settings: Settings, args: argparse.Namespace) -> None:
    if not args.platform_admin and not args.organization:
        raise CommandError("give --platform-admin or --organization ID")
    with database(settings) as ready:
        asyncio.run(migrate(ready.database_url or ""))
        key = asyncio.run(_create_api_key(ready, args))
    print(key)


async def _rotate_secrets(settings: Settings, batch_size: int) -> RotationReport:
    async with services_for(settings) as services:
        rotation = services.secret_rotation(batch_size)
        return await rotation.run()


def rotate_secrets(settings: Settings, batch_size: int) -> None:
    with database(settings) as ready:
        report = asyncio.run(_rotate_secrets(ready, batch_size))
    print("\n".join(report.lines()))
    if report.failures:
        print("\n".join(f.line() for f in report.failures), file=sys.stderr)
        raise SystemExit(1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="modelgate", description="Modelgate")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_cmd = commands.add_parser("serve", help="migrate, seed the demo on first start, serve")
    serve_cmd.add_argument("--host")
    serve_cmd.add_argument("--port", type=int)
    commands.add_parser("migrate", help="apply pending migrations")
    export = commands.add_parser("export-schema", help="print the GraphQL SDL")
    export.add_argument("--output", type=Path)
    key_cmd = commands.add_parser("create-api-key", help="create an API key; prints only the key last")
    key_cmd.add_argument("--name", required=True)
    key_cmd.add_argument("--platform-admin", action="store_true")
    key_cmd.add_argument("--organization", help="organization id (as the API returns it) or UUID")
    key_cmd.add_argument("--project", help="project id (as the API returns it) or UUID")
    key_cmd.add_argument("--role", default="developer", choices=["admin", "developer", "viewer"])
    commands.add_parser("seed-catalog", help="load the starter system catalog (idempotent)")
    rotate_cmd = commands.add_parser(
        "rotate-secrets", help="re-encrypt every stored secret under the first key of MODELGATE_SECRET_KEYS"
    )
    rotate_cmd.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    receiver_cmd = commands.add_parser(
        "webhook-receiver", help="print the alert webhooks posted to it, checking their signatures"
    )
    receiver_cmd.add_argument("--host", default="127.0.0.1")
    receiver_cmd.add_argument("--port", type=int, default=8025)
    receiver_cmd.add_argument("--secret", required=True, help="the webhook's signing secret")
    args = parser.parse_args(argv)

    settings = Settings()
    configure_logging(settings.log_level)
    if args.command == "serve":
        overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
        serve(settings.model_copy(update=overrides))
    elif args.command == "migrate":
        run_migrations(settings)
    elif args.command == "export-schema":
        export_schema(args.output)
    elif args.command == "create-api-key":
        create_api_key(settings, args)
    elif args.command == "seed-catalog":
        run_seed_catalog(settings)
    elif args.command == "rotate-secrets":
        rotate_secrets(settings, args.batch_size)
    elif args.command == "webhook-receiver":
        from app.channels.receiver import run_receiver

        run_receiver(args.host, args.port, args.secret)


if __name__ == "__main__":
    main()
