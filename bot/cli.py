"""`evobot` command line: chat, worker, serve, slack, telegram, migrate, export, forget,
apikey, agent (export / import an agent file)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING, Any

from rich.console import Console

from bot.config import Config, load_config
from bot.startup import starting

if TYPE_CHECKING:
    from pathlib import Path

    from engine.runtime import Runtime


def _logging(level: str, fmt: str = "text") -> None:
    """On stderr: rich text on a terminal, plain lines elsewhere; LOG_FORMAT=json: one JSON
    object per line with the tenant, execution and evolution ids where known
    (bot/observability.py)."""
    from bot.observability import setup_logging

    setup_logging(level, fmt)


async def _chat(config: Config, tenant: str) -> None:
    from adapters.console.app import ChatSession, ConsoleNotifier, stdin_lines
    from bot.platforms import make_notifier
    from bot.wiring import build_runtime, close_runtime, connect_redis
    from bot.worker import EmbeddedWorker
    from engine.service import EvobotService

    console = Console()
    notifier = ConsoleNotifier(console, outbox=config.data_dir / "outbox")

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
        await worker.stop()
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


async def _apikey(config: Config, args: argparse.Namespace) -> int:
    """create / list / revoke API keys; a new key alone on stdout (scripts capture it)."""
    from bot.wiring import build_runtime, close_runtime
    from engine.notify import NotifierRouter

    runtime = await build_runtime(config, NotifierRouter())
    try:
        if args.action == "create":
            return await _create_key(runtime, args)
        if args.action == "list":
            return await _list_keys(runtime, args.tenant)
        return await _revoke_key(runtime, args.prefix)
    finally:
        await close_runtime(runtime)


async def _create_key(runtime: Runtime, args: argparse.Namespace) -> int:
    from engine.service import EvobotService
    from engine.storage.api_keys import KeyRole, create_key

    err = Console(stderr=True)
    if args.operator == bool(args.tenant):
        err.print("[red]give a tenant (e.g. slack:T0123, api:acme) or --operator[/]")
        return 2
    role = (KeyRole.OPERATOR if args.operator else KeyRole.ADMIN if args.admin
            else KeyRole.MEMBER)
    if args.tenant:
        async with runtime.repo(args.tenant) as repo:  # the agent exists from now on
            await EvobotService(runtime).ensure_tenant(repo)
    async with runtime.sessions() as session, session.begin():
        new = await create_key(session, args.tenant, role, name=args.name, created_by="cli")
    err.print(f"[green]created[/] {role.value} key {new.info.prefix}… for "
              f"{args.tenant or 'the operator'} (shown once):")
    print(new.secret)
    return 0


async def _list_keys(runtime: Runtime, tenant: str | None) -> int:
    from engine.storage.api_keys import list_keys

    async with runtime.sessions() as session:
        rows = await list_keys(session, tenant)
    for row in rows:
        print(f"{row.prefix}…\t{row.role}\t{row.tenant_id or '(operator)'}\t"
              f"{row.created_at:%Y-%m-%d}\t{row.name}")
    return 0


async def _revoke_key(runtime: Runtime, prefix: str) -> int:
    from engine.storage.api_keys import revoke_key

    async with runtime.sessions() as session, session.begin():
        revoked = await revoke_key(session, prefix.rstrip("…"))
    Console(stderr=True).print(f"revoked {revoked} key(s) shown as {prefix}")
    return 0 if revoked else 1


def _apikey_parser(sub: Any) -> None:
    keys = sub.add_parser("apikey", help="REST API / dashboard keys: create, list, revoke")
    actions = keys.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="a new key, printed once")
    create.add_argument("tenant", nargs="?", help="the agent's tenant, e.g. slack:T0123")
    create.add_argument("--admin", action="store_true", help="may also roll back")
    create.add_argument("--operator", action="store_true", help="no tenant: creates agents")
    create.add_argument("--name", default="", help="a note to tell keys apart")
    listing = actions.add_parser("list", help="live keys of a tenant (none: operator keys)")
    listing.add_argument("tenant", nargs="?")
    revoke = actions.add_parser("revoke", help="revoke the key shown as this prefix")
    revoke.add_argument("prefix", help="e.g. evk_1a2B3c4D")


async def _agent(config: Config, args: argparse.Namespace) -> int:
    """`agent export` writes the agent file; `agent import` makes a version of it."""
    from bot.platforms import make_notifier
    from bot.wiring import build_runtime, close_runtime

    runtime = await build_runtime(config, make_notifier(config))
    try:
        if args.action == "export":
            return await _agent_export(runtime, args)
        return await _agent_import(runtime, args)
    finally:
        await close_runtime(runtime)


async def _agent_export(runtime: Runtime, args: argparse.Namespace) -> int:
    from pathlib import Path

    from engine.portable_export import FeedbackStaysHome, export_agent

    err = Console(stderr=True)
    try:
        exported = await export_agent(runtime, args.tenant, with_feedback=args.with_feedback)
    except (LookupError, FeedbackStaysHome) as exc:
        err.print(f"[red]{exc}[/]")
        return 1
    file = exported.file()
    path = Path(args.out or file.name)
    await asyncio.to_thread(path.write_bytes, file.data)
    err.print(f"[green]exported[/] {args.tenant} → {path}: {exported.caption()}")
    return 0


async def _agent_import(runtime: Runtime, args: argparse.Namespace) -> int:
    from pathlib import Path

    from engine.portable import MAX_FILE_BYTES, ImportRefused
    from engine.portable_import import import_agent
    from engine.service import EvobotService

    err = Console(stderr=True)
    path = Path(args.file)
    try:  # never more than the cap (+1 to see it's over)
        data = await asyncio.to_thread(_read_capped, path, MAX_FILE_BYTES + 1)
    except OSError as exc:
        err.print(f"[red]can't read {path}: {exc.strerror}[/]")
        return 1
    async with runtime.repo(args.tenant) as repo:  # the agent exists from now on
        await EvobotService(runtime).ensure_tenant(repo)
    try:
        imported = await import_agent(runtime, args.tenant, data, actor="cli", channel_id=None)
    except ImportRefused as exc:
        err.print(f"[red]nothing imported:[/] {exc}")
        return 1
    err.print(f"[green]imported[/] {path} into {args.tenant}: v{imported.from_version} → "
              f"v{imported.to_version} · {imported.details()}")
    return 0


def _read_capped(path: Path, limit: int) -> bytes:
    with path.open("rb") as handle:
        return handle.read(limit)


def _agent_parser(sub: Any) -> None:
    agent = sub.add_parser("agent", help="move an agent between workspaces as a JSON file")
    actions = agent.add_subparsers(dest="action", required=True)
    export = actions.add_parser("export", help="write the agent (versions, tools, learnings)")
    export.add_argument("tenant", help="e.g. slack:T0123")
    export.add_argument("--out", help="file (default: evobot-agent-<tenant>-v<n>.json)")
    export.add_argument("--with-feedback", action="store_true",
                        help="include users' ratings and comments (not in isolated mode)")
    load = actions.add_parser("import", help="a new version of the agent from a file")
    load.add_argument("tenant", help="the agent to import into, e.g. telegram:-100123")
    load.add_argument("file")


def _confirmed(tenant: str, yes: bool) -> bool:
    if yes:
        return True
    console = Console()
    console.print(f"This deletes everything of [bold]{tenant}[/] (database, knowledge, Redis).")
    return console.input("Type the tenant id to confirm: ").strip() == tenant


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evobot", description=__doc__)
    parser.add_argument("--log-level", default="WARNING")
    sub = parser.add_subparsers(dest="command", required=True)
    chat = sub.add_parser("chat", help="local console on the embedded stack")
    chat.add_argument("--tenant", default="default")
    worker = sub.add_parser("worker", help="process jobs (RQ) until SIGTERM")
    worker.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    sub.add_parser("serve", help="web process: Slack events, Telegram webhook, REST API, "
                                 "dashboard, health, metrics")
    sub.add_parser("slack", help="Slack in Socket Mode")
    sub.add_parser("telegram", help="Telegram by long polling")
    sub.add_parser("migrate", help="apply database migrations")
    export = sub.add_parser("export", help="write everything of one tenant to a JSON file")
    export.add_argument("tenant", help="e.g. slack:T0123 or telegram:-100123")
    export.add_argument("-o", "--output", help="file (default: <tenant>.json)")
    forget = sub.add_parser("forget", help="delete one tenant everywhere (GDPR)")
    forget.add_argument("tenant")
    forget.add_argument("--yes", action="store_true", help="don't ask for confirmation")
    _apikey_parser(sub)
    _agent_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    with starting():  # no garbage collection until the runtime is built (bot/startup.py)
        return _run(argv)


def _run(argv: list[str] | None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    config = load_config()
    fmt = config.log_format

    if args.command == "chat":
        _logging(args.log_level, fmt)
        asyncio.run(_chat(config, args.tenant))
    elif args.command == "worker":
        _logging("INFO" if args.log_level == "WARNING" else args.log_level, fmt)
        from bot.platforms import make_notifier
        from bot.worker import run_worker

        run_worker(config, lambda: make_notifier(config), burst=args.burst)
    elif args.command == "export":
        _logging(args.log_level, fmt)
        asyncio.run(_export(config, args.tenant, args.output))
    elif args.command == "forget":
        _logging(args.log_level, fmt)
        if not _confirmed(args.tenant, args.yes):
            Console().print("[yellow]not confirmed; nothing deleted[/]")
            return 1
        asyncio.run(_forget(config, args.tenant))
    elif args.command == "apikey":
        _logging(args.log_level, fmt)
        return asyncio.run(_apikey(config, args))
    elif args.command == "agent":
        _logging(args.log_level, fmt)
        return asyncio.run(_agent(config, args))
    elif args.command == "migrate":
        _logging(args.log_level, fmt)
        asyncio.run(_migrate(config))
    else:
        _logging("INFO" if args.log_level == "WARNING" else args.log_level, fmt)
        from bot import processes

        return processes.run(args.command, config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
