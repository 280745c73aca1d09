"""`evobot` command line: chat, worker, serve, slack, telegram, migrate."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from rich.console import Console
from rich.logging import RichHandler

from bot.config import Config, load_config


def _logging(level: str) -> None:
    logging.basicConfig(
        level=level, format="%(message)s", datefmt="[%X]",
        handlers=[RichHandler(rich_tracebacks=True, show_path=False)],
    )


async def _chat(config: Config, tenant: str) -> None:
    from adapters.console.app import ChatSession, ConsoleNotifier, stdin_lines
    from bot.platforms import make_notifier
    from bot.wiring import build_runtime, close_runtime, connect_redis
    from bot.worker import EmbeddedWorker
    from engine.service import EvobotService

    console = Console()
    notifier = ConsoleNotifier(console)

    def router():  # type: ignore[no-untyped-def]
        r = make_notifier(config)
        r.register("local", notifier)
        return r

    redis = connect_redis(config)
    runtime = await build_runtime(config, router(), redis)
    worker = EmbeddedWorker(config, router, redis).start()
    session = ChatSession(EvobotService(runtime), notifier, console, tenant_id=f"local:{tenant}")
    try:
        await session.run(stdin_lines(console))
    finally:
        worker.stop()
        await close_runtime(runtime)


async def _migrate(config: Config) -> None:
    from engine.storage.db import create_engine, migrate

    engine = create_engine(config.resolved_database_url)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    await migrate(engine)
    await engine.dispose()
    Console().print(f"[green]migrated[/] {config.resolved_database_url.split('@')[-1]}")


async def _export(config: Config, tenant: str, output: str | None) -> None:
    import json
    from pathlib import Path

    from bot.wiring import build_runtime, close_runtime
    from engine.notify import NotifierRouter
    from engine.privacy import export_tenant_data

    runtime = await build_runtime(config, NotifierRouter())
    try:
        data = await export_tenant_data(runtime, tenant)
    finally:
        await close_runtime(runtime)
    path = Path(output or f"{tenant.replace(':', '_')}.json")
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    await asyncio.to_thread(path.write_text, text)
    rows = sum(len(rows) for rows in data["tables"].values())
    Console().print(f"[green]exported[/] {tenant}: {rows} rows → {path}")


async def _forget(config: Config, tenant: str) -> None:
    from bot.wiring import build_runtime, close_runtime
    from engine.notify import NotifierRouter
    from engine.privacy import delete_tenant_data

    runtime = await build_runtime(config, NotifierRouter())
    try:
        counts = await delete_tenant_data(runtime, tenant)
    finally:
        await close_runtime(runtime)
    summary = ", ".join(f"{name}: {n}" for name, n in counts.items() if n)
    Console().print(f"[green]deleted[/] {tenant} ({summary or 'nothing stored'})")


def _confirmed(tenant: str, yes: bool) -> bool:
    if yes:
        return True
    console = Console()
    console.print(f"This deletes everything of [bold]{tenant}[/] (database, knowledge, Redis).")
    return console.input("Type the tenant id to confirm: ").strip() == tenant


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="evobot", description=__doc__)
    parser.add_argument("--log-level", default="WARNING")
    sub = parser.add_subparsers(dest="command", required=True)
    chat = sub.add_parser("chat", help="local console on the embedded stack")
    chat.add_argument("--tenant", default="default")
    worker = sub.add_parser("worker", help="process jobs (RQ) until SIGTERM")
    worker.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    sub.add_parser("serve", help="web process: Slack events, Telegram webhook, health")
    sub.add_parser("slack", help="Slack in Socket Mode")
    sub.add_parser("telegram", help="Telegram by long polling")
    sub.add_parser("migrate", help="apply database migrations")
    export = sub.add_parser("export", help="write everything of one tenant to a JSON file")
    export.add_argument("tenant", help="e.g. slack:T0123 or telegram:-100123")
    export.add_argument("-o", "--output", help="file (default: <tenant>.json)")
    forget = sub.add_parser("forget", help="delete one tenant everywhere (GDPR)")
    forget.add_argument("tenant")
    forget.add_argument("--yes", action="store_true", help="don't ask for confirmation")
    args = parser.parse_args(argv)
    config = load_config()

    if args.command == "chat":
        _logging(args.log_level)
        asyncio.run(_chat(config, args.tenant))
    elif args.command == "worker":
        _logging("INFO" if args.log_level == "WARNING" else args.log_level)
        from bot.platforms import make_notifier
        from bot.worker import run_worker

        run_worker(config, lambda: make_notifier(config), burst=args.burst)
    elif args.command == "export":
        _logging(args.log_level)
        asyncio.run(_export(config, args.tenant, args.output))
    elif args.command == "forget":
        _logging(args.log_level)
        if not _confirmed(args.tenant, args.yes):
            Console().print("[yellow]not confirmed; nothing deleted[/]")
            return 1
        asyncio.run(_forget(config, args.tenant))
    elif args.command == "migrate":
        _logging(args.log_level)
        asyncio.run(_migrate(config))
    else:
        _logging("INFO" if args.log_level == "WARNING" else args.log_level)
        from bot import processes

        return processes.run(args.command, config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
