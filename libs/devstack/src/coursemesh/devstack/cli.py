"""``coursemesh`` command line: ``up``, ``token``, ``status``, ``demo``, ``http``, ``migrate``,
``outbox status``, ``deadletter list|replay``, ``projection list|rebuild``."""

from __future__ import annotations

import shlex
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from coursemesh.devstack.keys import mint_token
from coursemesh.devstack.process import pid_alive
from coursemesh.devstack.services import (
    JWT_ISSUER,
    MigrateCommand,
    ServiceCommand,
    ServiceSpec,
    migrate_command,
    uvicorn_command,
)

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

app = typer.Typer(help="coursemesh development tools", no_args_is_help=True, add_completion=False)
console = Console(stderr=True)

DataDir = Annotated[Path, typer.Option("--data-dir", help="where the stack keeps its state")]


class _RichProgress:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.status = console.status("starting")
        self.began = time.monotonic()

    def step(self, message: str) -> None:
        self.status.update(f"{message} …")

    def done(self, message: str) -> None:
        self.console.print(f"[green]✓[/] {message}  [dim]+{time.monotonic() - self.began:.1f}s[/]")


def _template_command(template: str) -> ServiceCommand:
    def build(spec: ServiceSpec, port: int) -> list[str]:
        return shlex.split(template.format(**_placeholders(spec), port=port))

    return build


def _template_migrate(template: str) -> MigrateCommand:
    def build(spec: ServiceSpec) -> list[str]:
        return shlex.split(template.format(**_placeholders(spec)))

    return build


def _placeholders(spec: ServiceSpec) -> dict[str, str]:
    return {
        "python": shlex.quote(sys.executable),
        "name": spec.name,
        "package": spec.package,
        "prefix": spec.env_prefix,
        "factory": spec.app_factory,
    }


class _Terminated(Exception):
    pass


def _supervisor_line(message: str) -> None:
    stamp = time.strftime("%H:%M:%S")
    console.print(f"[yellow]{stamp} supervisor:[/] {escape(message)}", highlight=False)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    raise _Terminated(signal.Signals(signum).name)


@app.command()
def up(
    fresh: Annotated[bool, typer.Option(help="wipe the data dir first")] = False,
    port: Annotated[int | None, typer.Option(help="gateway port (default 8080 when free)")] = None,
    host: Annotated[
        str,
        typer.Option(
            help="the gateway's bind address (IPv4); 0.0.0.0 serves the other machines of the LAN"
        ),
    ] = "127.0.0.1",
    public_url: Annotated[
        str | None,
        typer.Option(
            help="the gateway's URL as clients reach it (http://192.168.1.20:8080): the base of "
            "payment pages, return pages and audio links (default: the gateway's own URL)"
        ),
    ] = None,
    replicas: Annotated[int, typer.Option(min=1, help="replicas per service")] = 1,
    external: Annotated[
        bool, typer.Option(help="use COURSEMESH_* URLs instead of embedded infrastructure")
    ] = False,
    data_dir: DataDir = Path(".data"),
    log_level: Annotated[str, typer.Option(help="services' LOG_LEVEL")] = "INFO",
    trace_sample_ratio: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="share of requests traced (OTEL_SAMPLE_RATIO)")
    ] = 1.0,
    service_command: Annotated[
        str | None,
        typer.Option(
            hidden=True,
            help="replica command template: {python} {name} {package} {prefix} {factory} {port}",
        ),
    ] = None,
    migrate: Annotated[
        str | None, typer.Option("--migrate-command", hidden=True, help="migration template")
    ] = None,
    max_restarts: Annotated[
        int,
        typer.Option(
            min=0, help="give up on a child that needs more restarts than this within the window"
        ),
    ] = 5,
    restart_window: Annotated[
        float, typer.Option(min=0.1, help="crash-loop window in seconds")
    ] = 60.0,
    restart_delay: Annotated[
        float, typer.Option(min=0.0, help="first restart delay in seconds (doubles each time)")
    ] = 0.5,
    restart_max_delay: Annotated[
        float, typer.Option(min=0.0, help="longest restart delay in seconds")
    ] = 10.0,
) -> None:
    """Start PostgreSQL, NATS, S3, SMTP, migrations, the five services and the gateway, then
    supervise them: a child that exits is restarted with backoff until it crash-loops."""
    from coursemesh.devstack.stack import Stack, StackConfig, StackError
    from coursemesh.devstack.stack import public_url as checked_public_url
    from coursemesh.devstack.supervisor import RestartPolicy

    try:
        public_url = checked_public_url(public_url)
    except StackError as exc:
        raise typer.BadParameter(str(exc), param_hint="--public-url") from exc
    try:
        policy = RestartPolicy(
            initial_delay=restart_delay,
            max_delay=max(restart_delay, restart_max_delay),
            max_restarts=max_restarts,
            window=restart_window,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    config = StackConfig(
        data_dir=data_dir,
        gateway_port=port,
        gateway_host=host,
        public_url=public_url,
        replicas=replicas,
        external=external,
        fresh=fresh,
        log_level=log_level.upper(),
        trace_sample_ratio=trace_sample_ratio,
        service_command=_template_command(service_command) if service_command else uvicorn_command,
        migrate_command=_template_migrate(migrate) if migrate else migrate_command,
        restart=policy,
    )
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    progress = _RichProgress(console)
    stack = Stack(config, progress=progress, log=_supervisor_line)
    code = 0
    try:
        with progress.status:
            stack.start()
        _print_summary(stack.info(), stack.stack_json)
        console.print("[bold]stack is up[/] — Ctrl-C stops everything")
        stack.wait()
    except (KeyboardInterrupt, _Terminated) as exc:
        reason = str(exc) or "Ctrl-C"
        console.print(f"\n[yellow]stopping ({reason})[/]")
    except StackError as exc:
        console.print(f"[red bold]stack failed:[/] {escape(str(exc))}", highlight=False)
        code = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not orphan children
        stack.stop()
        console.print("[dim]all processes stopped[/]")
    raise typer.Exit(code)


def _address(name: str, data: dict[str, Any], info: dict[str, Any]) -> str:
    if name == "postgres" and info.get("database_url"):
        return str(info["database_url"])
    if name == "smtp":
        return f"smtp://{data.get('host')}:{data.get('port')}"
    return str(data.get("url") or data.get("endpoint"))


def _print_summary(info: dict[str, Any], stack_json: Path) -> None:
    table = Table(title="coursemesh dev stack", title_justify="left")
    table.add_column("component")
    table.add_column("address")
    table.add_column("pid", justify="right")
    gateway = info.get("gateway", {})
    table.add_row("gateway", str(gateway.get("url")), str(gateway.get("pid", "")))
    if gateway.get("bind") not in (None, "127.0.0.1"):
        table.add_row("gateway bind", f"{gateway['bind']}:{gateway.get('port')}", "")
    if info.get("public_url") and info.get("public_url") != gateway.get("url"):
        table.add_row("public url", str(info["public_url"]), "")
    table.add_row("jwks", str(info.get("jwks_url")), "")
    for name, data in info.get("infrastructure", {}).items():
        table.add_row(name, _address(name, data, info), str(data.get("pid", "") or ""))
    for replicas in info.get("services", {}).values():
        for replica in replicas:
            table.add_row(replica["instance"], replica["url"], str(replica["pid"]))
    Console().print(table)
    console.print(
        f"mail: {info.get('mail_dir')}  logs: {info.get('logs_dir')}  details: {stack_json}\n"
        f"started in {info.get('startup_seconds')}s"
    )


@app.command()
def token(
    sub: Annotated[str, typer.Option(help="user id (the token's subject)")],
    email: Annotated[str | None, typer.Option(help="email claim")] = None,
    name: Annotated[str | None, typer.Option(help="name claim")] = None,
    ttl: Annotated[int, typer.Option(min=1, help="lifetime in seconds")] = 3600,
    issuer: Annotated[str, typer.Option(help="iss claim")] = JWT_ISSUER,
    data_dir: DataDir = Path(".data"),
) -> None:
    """Print an RS256 JWT the running stack accepts (signed by <data-dir>/keys)."""
    print(mint_token(sub, email=email, name=name, ttl=ttl, issuer=issuer, data_dir=data_dir))


@app.command()
def status(data_dir: DataDir = Path(".data")) -> None:
    """Show the stack described by <data-dir>/stack.json and whether its processes run."""
    from coursemesh.devstack.infra.nats import http_ok
    from coursemesh.devstack.stack import read_stack_json

    info = read_stack_json(data_dir)
    if info is None:
        console.print(f"no stack.json in {data_dir}")
        raise typer.Exit(1)
    supervisor = info.get("supervisor_pid")
    running = (
        info.get("state") == "running" and isinstance(supervisor, int) and pid_alive(supervisor)
    )
    table = Table(title=f"coursemesh dev stack ({'running' if running else 'stopped'})")
    table.add_column("component")
    table.add_column("address")
    table.add_column("pid", justify="right")
    table.add_column("state")
    gateway = info.get("gateway", {})
    rows: list[tuple[str, str, Any]] = [("gateway", str(gateway.get("url")), gateway.get("pid"))]
    for name, data in info.get("infrastructure", {}).items():
        rows.append((name, _address(name, data, info), data.get("pid")))
    for replicas in info.get("services", {}).values():
        rows += [(r["instance"], r["url"], r["pid"]) for r in replicas]
    for name, address, pid in rows:
        alive = isinstance(pid, int) and running and pid_alive(pid)
        table.add_row(name, address, str(pid or ""), "[green]up[/]" if alive else "[red]down[/]")
    Console().print(table)
    if running and gateway.get("url"):
        for spec_name in info.get("services", {}):
            url = f"{gateway['url']}/health/{spec_name}"
            try:
                ok = http_ok(url)
            except Exception:
                ok = False
            console.print(f"{url}: {'[green]ready[/]' if ok else '[red]not ready[/]'}")
    raise typer.Exit(0 if running else 3)


class _DemoProgress:
    """The demo's steps as a rich progress bar, with a line per finished step."""

    def __init__(self, console: Console, total: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, SpinnerColumn, TextColumn
        from rich.progress import Progress as RichProgress

        self.console = console
        self.began = time.monotonic()
        self.bar = RichProgress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=console,
            transient=True,
        )
        self.task = self.bar.add_task("demo", total=total)

    def step(self, message: str) -> None:
        self.bar.update(self.task, description=f"{message} …")

    def done(self, message: str) -> None:
        self.bar.advance(self.task)
        elapsed = time.monotonic() - self.began
        self.bar.console.print(f"[green]✓[/] {escape(message)}  [dim]+{elapsed:.1f}s[/]")


@app.command()
def demo(
    data_dir: DataDir = Path(".data"),
    custom_wait: Annotated[
        float,
        typer.Option(
            min=0.0, help="seconds to wait for the custom course's audio (0: skip that step)"
        ),
    ] = 90.0,
    token_ttl: Annotated[int, typer.Option(min=60, help="lifetime of the printed tokens")] = 86400,
) -> None:
    """Fill the running stack with sample data through the gateway: an organization with a
    paid 14-day course sold through the sandbox payment page, a buyer with progress, a free
    course and a custom course; then print what to try. Each run adds a new set."""
    from coursemesh.devstack.demo import DemoError, run_demo, running_gateway

    try:
        gateway = running_gateway(data_dir)
    except DemoError as exc:
        console.print(f"[red]{escape(str(exc))}[/]")
        raise typer.Exit(2) from None

    def mint(sub: str, email: str, name: str) -> str:
        return mint_token(sub, email=email, name=name, ttl=token_ttl, data_dir=data_dir)

    progress = _DemoProgress(console, total=9)
    try:
        with progress.bar:
            result = run_demo(gateway, mint, progress=progress, custom_timeout=custom_wait)
    except DemoError as exc:
        console.print(f"[red bold]demo failed:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(1) from None
    _print_demo(result)


def _print_demo(result: Any) -> None:
    out = Console()
    g = result.gateway_url
    table = Table(title=f"coursemesh demo — {result.org_name}", title_justify="left")
    table.add_column("what")
    table.add_column("value", overflow="fold")
    custom = result.custom
    custom_state = {
        "ready": "[green]ready[/]",
        "pending": "[yellow]pending[/] (generation continues; poll it)",
    }.get(custom.status, f"[red]{custom.status}[/]")
    rows = [
        ("gateway", g),
        ("organization", f"{result.org_id} (slug {result.org_slug})"),
        ("owner", result.owner_sub),
        ("buyer", result.buyer_sub),
        ("workouts", f"{len(result.workout_ids)} in the library"),
        ("paid course", f"{result.course_id} ({result.price_cents / 100:.2f} EUR, 14 days)"),
        ("buyer's progress", f"{result.progress['completed']} of {result.progress['total']}"),
        ("free course", result.free_course_id),
        ("payment account", result.account_id),
        ("storefront", result.storefront_url),
        ("payment page", result.payment_page_url),
        ("success page", result.success_url),
        ("player (buyer)", result.player_url),
        ("custom course", f"{custom.course_id or '-'} {custom_state} {escape(custom.detail)}"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    out.print(table)
    cid, org = result.course_id, result.org_id
    lines = [
        f"export OWNER_TOKEN={result.owner_token}",
        f"export BUYER_TOKEN={result.buyer_token}",
        f"curl -s {g}/public/courses/{cid}",
        f'curl -s {g}/me/courses -H "Authorization: Bearer $BUYER_TOKEN"',
        f'curl -s {g}/me/courses/{cid} -H "Authorization: Bearer $BUYER_TOKEN"',
        f"curl -s -X POST {g}/me/courses/{cid}/workouts/{result.workout_ids[2]}/complete "
        f'-H "Authorization: Bearer $BUYER_TOKEN" -H "content-type: application/json" '
        f"-d '{{\"dayOffset\": 2}}'",
        f"curl -s {g}/organizations/{org}/courses/{cid}/enrollments "
        f'-H "Authorization: Bearer $OWNER_TOKEN"',
        f"curl -s {g}/organizations/{org}/courses/{cid}/entitlements "
        f'-H "Authorization: Bearer $OWNER_TOKEN"',
    ]
    if custom.course_id:
        lines.append(
            f"curl -s {g}/me/custom-courses/{custom.course_id} "
            f'-H "Authorization: Bearer $BUYER_TOKEN"'
        )
    out.print("[bold]try[/] (the tokens are valid for a day; `make token` mints more):")
    for line in lines:
        out.print(line, markup=False, highlight=False, soft_wrap=True)
    console.print(f"[dim]created in {result.seconds:.1f}s; run it again for another set[/]")


@app.command("http")
def http_collection(
    file: Annotated[
        Path, typer.Argument(help="the .http request collection", exists=True, dir_okay=False)
    ] = Path("docs/coursemesh.http"),
    data_dir: DataDir = Path(".data"),
    var: Annotated[
        list[str] | None, typer.Option("--var", help="NAME=VALUE: set a variable of the file")
    ] = None,
) -> None:
    """Run a .http request collection against the running stack, each request once the previous
    answer is in, checking every `# expect:` status. `base` is the stack's gateway, `run` is
    new and the owner's, buyer's and other's tokens are minted."""
    from coursemesh.devstack.demo import DemoError, running_gateway
    from coursemesh.devstack.httpfile import (
        CollectionFailed,
        Exchange,
        HttpFileError,
        collection_variables,
        parse,
        run,
        urllib_sender,
    )

    try:
        gateway = running_gateway(data_dir)
    except DemoError as exc:
        console.print(f"[red]{escape(str(exc))}[/]")
        raise typer.Exit(2) from None
    variables = collection_variables(
        gateway, lambda sub, email, name: mint_token(sub, email=email, name=name, data_dir=data_dir)
    )
    for item in var or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"expected NAME=VALUE, got {item!r}", param_hint="--var")
        variables[name] = value
    out = Console()

    def show(exchange: Exchange) -> None:
        url = exchange.url.removeprefix(gateway)
        waited = f" [dim]({exchange.attempts} polls)[/]" if exchange.attempts > 1 else ""
        out.print(
            f"[green]✓[/] {exchange.answer.status} {exchange.method} {escape(url)}"
            f"  [dim]{exchange.seconds * 1000:.0f} ms[/]{waited}",
            highlight=False,
            soft_wrap=True,
        )

    began = time.monotonic()
    try:
        exchanges = run(
            parse(file.read_text()), urllib_sender(), variables=variables, on_exchange=show
        )
    except (CollectionFailed, HttpFileError) as exc:
        console.print(f"[red bold]{file}:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(1) from None
    console.print(
        f"[dim]{len(exchanges)} requests as expected in {time.monotonic() - began:.1f}s[/]"
    )


# --- operations on the running stack -------------------------------------------------------

outbox_app = typer.Typer(help="the services' transactional outboxes", no_args_is_help=True)
deadletter_app = typer.Typer(help="the dead-letter stream", no_args_is_help=True)
projection_app = typer.Typer(
    help="read models fed by other services' events, rebuilt from their streams",
    no_args_is_help=True,
)
app.add_typer(outbox_app, name="outbox")
app.add_typer(deadletter_app, name="deadletter")
app.add_typer(projection_app, name="projection")

DatabaseUrl = Annotated[
    str | None, typer.Option("--database-url", help="default: the running stack's (stack.json)")
]
NatsUrl = Annotated[
    str | None, typer.Option("--nats", help="default: the running stack's (stack.json)")
]


def _stack_address(data_dir: Path, key: str, given: str | None) -> str:
    from coursemesh.devstack.operations import StackNotFound, stack_address

    try:
        return stack_address(data_dir, key, given)
    except StackNotFound as exc:
        console.print(f"[red]{escape(str(exc))}[/]")
        raise typer.Exit(2) from None


@outbox_app.command("status")
def outbox_status(data_dir: DataDir = Path(".data"), database_url: DatabaseUrl = None) -> None:
    """Per service: events not yet on the bus, the oldest of them, those failing to publish.
    Exits 1 when any is failing."""
    import asyncio

    from coursemesh.devstack.operations import outbox_status as read

    statuses = asyncio.run(read(_stack_address(data_dir, "database_url", database_url)))
    table = Table(title="outboxes")
    for column in ("service", "unpublished", "oldest unpublished", "failing", "published"):
        table.add_column(column, justify="left" if column == "service" else "right")
    for s in statuses:
        oldest = s.oldest_unpublished.isoformat(timespec="seconds") if s.oldest_unpublished else ""
        failing = f"[red]{s.failing}[/]" if s.failing else "0"
        table.add_row(s.service, str(s.unpublished), oldest, failing, str(s.published))
    Console().print(table)
    raise typer.Exit(1 if any(s.failing for s in statuses) else 0)


@deadletter_app.command("list")
def deadletter_list(data_dir: DataDir = Path(".data"), nats_url: NatsUrl = None) -> None:
    """The dead letters: sequence, original subject, consumer, deliveries, error."""
    import asyncio

    from coursemesh.devstack.operations import dead_letters

    letters = asyncio.run(dead_letters(_stack_address(data_dir, "nats_url", nats_url)))
    table = Table(title=f"{len(letters)} dead letter(s)")
    for column in ("seq", "subject", "consumer", "deliveries", "error"):
        table.add_column(column)
    for d in letters:
        table.add_row(str(d.seq), d.original_subject, d.consumer, str(d.deliveries), d.error)
    Console().print(table)


@deadletter_app.command("replay")
def deadletter_replay(
    seqs: Annotated[list[int] | None, typer.Argument(help="sequences to replay")] = None,
    replay_all: Annotated[bool, typer.Option("--all", help="replay every dead letter")] = False,
    data_dir: DataDir = Path(".data"),
    nats_url: NatsUrl = None,
) -> None:
    """Re-publish dead letters on their original subjects (consumers' inboxes make a replay of
    an event they already processed harmless) and remove them from the dead-letter stream."""
    import asyncio

    from coursemesh.devstack.operations import replay_dead_letters

    if bool(seqs) == replay_all:
        console.print("[red]name the sequences to replay, or --all[/]")
        raise typer.Exit(2)
    url = _stack_address(data_dir, "nats_url", nats_url)
    try:
        replayed = asyncio.run(replay_dead_letters(url, None if replay_all else seqs))
    except LookupError as exc:
        console.print(f"[red]{escape(str(exc))}[/]")
        raise typer.Exit(1) from None
    for letter in replayed:
        console.print(f"replayed {letter.seq} -> {letter.original_subject}")


def _bar(transient: bool) -> Progress:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=transient,
    )


@app.command("migrate")
def migrate_schemas(
    services: Annotated[
        list[str] | None, typer.Argument(help="services to migrate (default: all of them)")
    ] = None,
    data_dir: DataDir = Path(".data"),
    database_url: DatabaseUrl = None,
) -> None:
    """Run each service's migrations to head on the running stack's database (the runner of
    `make up` and of the pods' initContainer), printing each schema's revision before and
    after. Running it again changes nothing. Exits 1 when a service's runner refuses."""
    import asyncio

    from coursemesh.devstack.operations import UnknownName, migrate, service_names

    try:
        names = service_names(services)
    except UnknownName as exc:
        console.print(f"[red]{escape(str(exc))}[/]")
        raise typer.Exit(2) from None
    url = _stack_address(data_dir, "database_url", database_url)
    bar = _bar(transient=True)
    task = bar.add_task("migrating", total=len(names))

    started_count = 0

    def started(name: str) -> None:
        nonlocal started_count
        bar.update(task, completed=started_count, description=f"migrating {name}")
        started_count += 1

    with bar:
        results = asyncio.run(migrate(url, names, on_service=started))
    out = Console()
    for r in results:
        if r.refused:
            out.print(f"[red]✗ {r.service}[/]: refused: {escape(r.refused)}", highlight=False)
        elif r.before == r.after:
            out.print(f"[green]✓[/] {r.service}: at {r.after} (nothing to do)", highlight=False)
        else:
            out.print(
                f"[green]✓[/] {r.service}: {r.before or '(empty)'} → {r.after}", highlight=False
            )
        if not r.refused and r.message not in ("ok", f"at {r.after}"):
            out.print(f"  [yellow]{escape(r.message)}[/]", highlight=False)
    raise typer.Exit(1 if any(r.refused for r in results) else 0)


@projection_app.command("list")
def projection_list(
    services: Annotated[
        list[str] | None, typer.Argument(help="services to show (default: all of them)")
    ] = None,
) -> None:
    """The projections each service can rebuild: their tables and the events that feed them."""
    from coursemesh.devstack.operations import UnknownName, projections, service_names

    try:
        names = service_names(services)
    except UnknownName as exc:
        console.print(f"[red]{escape(str(exc))}[/]")
        raise typer.Exit(2) from None
    out = Console(soft_wrap=True)
    for name in names:
        for p in projections(name).values():
            out.print(f"[bold]{name} {p.name}[/]: {escape(p.description)}", highlight=False)
            tables = ", ".join(t.name for t in p.tables)
            events = ", ".join(sorted(p.handlers_by_type))
            out.print(f"  tables {tables}; events {events}", highlight=False)


class _ReplayBar:
    """The replay as a rich progress bar: one row per stream, advanced by messages read."""

    def __init__(self) -> None:
        self.bar = _bar(transient=False)
        self.task: TaskID | None = None

    def stream(self, name: str, total: int) -> None:
        self.task = self.bar.add_task(f"replaying {name}", total=total)

    def advance(self, count: int) -> None:
        if self.task is not None:
            self.bar.advance(self.task, count)


@projection_app.command("rebuild")
def projection_rebuild(
    service: Annotated[str, typer.Argument(help="the service owning the projection")],
    name: Annotated[str, typer.Argument(help="the projection (see `projection list`)")],
    force: Annotated[
        bool,
        typer.Option(
            help="rebuild even when a stream no longer holds its whole history: rows whose "
            "events are gone are dropped"
        ),
    ] = False,
    data_dir: DataDir = Path(".data"),
    database_url: DatabaseUrl = None,
    nats_url: NatsUrl = None,
) -> None:
    """Empty a projection's tables and replay its events from the first message of their
    streams, in one transaction (readers wait for it rather than see an empty table; the
    service's own consumer and inbox are left alone). Refused, with nothing changed, when a
    stream no longer holds its whole history, unless --force."""
    import asyncio

    from coursemesh.chassis.rebuild import RebuildFailed, RebuildRefused
    from coursemesh.devstack.operations import UnknownName, projection, rebuild_projection

    try:
        declared = projection(service, name)
    except UnknownName as exc:
        console.print(f"[red]{escape(str(exc))}[/]")
        raise typer.Exit(2) from None
    db_url = _stack_address(data_dir, "database_url", database_url)
    bus_url = _stack_address(data_dir, "nats_url", nats_url)
    replay = _ReplayBar()
    label = f"{service}/{declared.name}"
    try:
        with replay.bar:
            report = asyncio.run(
                rebuild_projection(db_url, bus_url, service, name, force=force, progress=replay)
            )
    except RebuildRefused as exc:
        for history in exc.histories:
            if not history.complete:
                console.print(f"[red]{escape(history.describe())}[/]", highlight=False)
        console.print(
            f"[red bold]{label}: refused[/], nothing was changed. --force rebuilds from what "
            "the streams hold: rows whose only events are gone would be dropped.",
            highlight=False,
        )
        raise typer.Exit(1) from None
    except RebuildFailed as exc:
        console.print(
            f"[red bold]{label}: rebuild failed[/], nothing was changed: {escape(str(exc))}",
            highlight=False,
        )
        raise typer.Exit(1) from None
    out = Console()
    for history in report.histories:
        if not history.complete:
            out.print(f"[yellow]forced: {escape(history.describe())}[/]", highlight=False)
    rows = "; ".join(
        f"{t.table} {t.before} → {t.after} rows"
        + (f" ({t.vanished} not restored)" if t.vanished else "")
        for t in report.tables
    )
    out.print(
        f"[green]✓[/] {label}: {report.read} messages replayed ({report.applied} events applied, "
        f"{report.duplicates} duplicates); {rows}; {report.seconds:.1f}s",
        highlight=False,
    )
