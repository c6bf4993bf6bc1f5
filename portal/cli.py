"""The ``portal`` command: demo, serve, worker, migrate, audit verify, scoring verify."""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime, timedelta

import click

from infra.settings import get_settings


@click.group()
def main() -> None:
    """Contractor collaboration portal (准入—培训—作业—评价)."""


@main.command()
def migrate() -> None:
    """Bring the database schema to the newest migration."""
    from infra.migrate import upgrade

    settings = get_settings()
    upgrade(settings)
    click.echo("database is at the newest migration")


def _serve(host: str, port: int, workers: int = 1) -> None:
    from infra.tasks import start_embedded_worker

    settings = get_settings()
    if workers > 1 and not settings.celery_broker_url:
        raise click.UsageError(
            "--workers above 1 needs PORTAL_CELERY_BROKER_URL: without a broker, tasks travel "
            "in the memory of the one server process that runs them."
        )
    # Without a broker, tasks travel in this process's memory, so this process must run them.
    embedded = start_embedded_worker(settings)
    if embedded is not None:
        click.echo("no PORTAL_CELERY_BROKER_URL: running tasks in this process")
    from portal.server import run_server

    run_server(host=host, port=port, workers=workers, proxy_headers=True, log_level="info")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Server processes; one per core in production (needs a Celery broker).",
)
def serve(host: str, port: int, workers: int) -> None:
    """Serve the web UI and API."""
    _serve(host, port, workers)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--no-serve", is_flag=True, help="Migrate and seed only.")
def demo(host: str, port: int, no_serve: bool) -> None:
    """Migrate, seed the Chinese demo tenant (idempotent), print the logins and serve."""
    from infra.documents import warm_up
    from infra.migrate import upgrade
    from portal.demo import seed_demo

    settings = get_settings()
    upgrade(settings)
    logins, path = asyncio.run(seed_demo(settings))
    warm_up()
    url = f"http://{host}:{port}"
    click.echo(f"\n演示租户已就绪 / demo tenant ready: {url}/t/{logins[0].tenant}/login")
    click.echo(f"登录信息 / logins ({path}):")
    for login in logins:
        click.echo(f"  {login.role:<18} {login.email:<34} {login.password}")
    if not no_serve:
        _serve(host, port)


@main.command()
@click.option("--beat", is_flag=True, help="Also send the periodic jobs (run exactly one).")
@click.option("--concurrency", default=None, type=int, help="Worker processes (default: CPUs).")
@click.option("--loglevel", default="INFO", show_default=True)
def worker(beat: bool, concurrency: int | None, loglevel: str) -> None:
    """Run a Celery worker against PORTAL_CELERY_BROKER_URL."""
    from infra.tasks import app

    if not get_settings().celery_broker_url:
        click.echo(
            "PORTAL_CELERY_BROKER_URL is not set: `portal serve` and `portal demo` run tasks "
            "in their own process",
            err=True,
        )
        sys.exit(2)
    argv = ["worker", f"--loglevel={loglevel}"]
    if beat:
        argv.append("--beat")
    if concurrency:
        argv.append(f"--concurrency={concurrency}")
    app.worker_main(argv)


@main.group()
def audit() -> None:
    """The tamper-evident ledger."""


@audit.command("verify")
@click.option("--tenant", "tenant_slug", help="Tenant slug; every tenant when omitted.")
def audit_verify(tenant_slug: str | None) -> None:
    """Walk each chain and name the first broken link (exit status 1 if any is broken)."""
    from portal.audit_cli import verify_tenants

    reports = asyncio.run(verify_tenants(get_settings(), tenant_slug))
    if not reports:
        click.echo(f"no such tenant: {tenant_slug}", err=True)
        sys.exit(2)
    broken = False
    for slug, report in reports:
        if report.ok:
            click.echo(f"{slug}: ok, {report.entries_checked} entries")
        else:
            broken = True
            assert report.broken is not None
            click.echo(f"{slug}: BROKEN at {report.broken.describe()}", err=True)
    sys.exit(1 if broken else 0)


@main.group()
def scoring() -> None:
    """Evaluation and the HQ figures."""


@scoring.command("verify")
@click.option("--from", "first", required=True, type=click.DateTime(["%Y-%m-%d"]))
@click.option("--to", "last", required=True, type=click.DateTime(["%Y-%m-%d"]), help="Inclusive.")
def scoring_verify(first: datetime, last: datetime) -> None:
    """Compare every tenant's HQ rollups with the naive query over the raw tables, plant by
    plant, for the plant-local days FROM to TO (exit status 1 on any difference). PostgreSQL
    only."""
    from portal.scoring_cli import NotPostgres, verify_rollups

    if last < first:
        click.echo("--to: must not be before --from", err=True)
        sys.exit(2)
    start, end = first.date(), last.date() + timedelta(days=1)
    try:
        results = asyncio.run(verify_rollups(get_settings(), start, end))
    except NotPostgres as exc:
        click.echo(
            f"scoring verify needs PostgreSQL (the naive query is PostgreSQL SQL); "
            f"this database is {exc}",
            err=True,
        )
        sys.exit(2)
    differs = False
    for slug, checks in results:
        wrong = [check for check in checks if check.differences]
        if not wrong:
            click.echo(f"{slug}: ok, {len(checks)} plants")
        for check in wrong:
            differs = True
            for difference in check.differences:
                click.echo(f"{slug} {check.code}: {difference}", err=True)
    sys.exit(1 if differs else 0)


if __name__ == "__main__":
    main()
