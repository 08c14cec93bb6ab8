"""Commands that keep an installed project and the store honest, and carry them to another
machine: verify, gc, bundle."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from zoopm import jsondoc
from zoopm.cli.app import JsonOption, app, emit, run
from zoopm.errors import EXIT_FAILURE
from zoopm.project import Project
from zoopm.ui import ConsoleReporter, files_text, human_size, models_text, printable, relative

if TYPE_CHECKING:
    from zoopm.operations.gc import GcResult
    from zoopm.operations.verify import Problem, VerifyResult


@app.command(short_help="Hash every installed file against zoo.lock.")
def verify(
    ctx: typer.Context,
    names: Annotated[
        list[str] | None, typer.Argument(help="Models to verify (default: all).", metavar="NAME...")
    ] = None,
    store: Annotated[
        bool, typer.Option("--store", help="Also hash every blob in the store against its name.")
    ] = False,
    repair: Annotated[
        bool,
        typer.Option(
            "--repair",
            help="Place zoopm's missing or changed files again from the store, fetching a wrong "
            "blob again. Files that are not zoopm's are never touched.",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Hash every installed file against zoo.lock; name each missing, changed or foreign one.

    Examples:

    \b
      zoopm verify
      zoopm verify --repair   # place zoopm's own files again
      zoopm verify --store    # and every blob in the store
    """

    def action(
        project: Project, reporter: ConsoleReporter
    ) -> tuple[VerifyResult, jsondoc.Document | None]:
        result = project.verify(names or (), store=store, repair=repair)
        if as_json:
            return result, jsondoc.verify(result, reporter.warnings)
        _report_verify(result, reporter)
        return result, None

    result, document = run(ctx, action, as_json=as_json)
    emit(document)
    if not result.ok:
        raise typer.Exit(EXIT_FAILURE)


def _report_verify(result: VerifyResult, reporter: ConsoleReporter) -> None:
    where = relative(result.models_dir)
    fixed = set(result.repaired)
    for problem in result.problems:
        line = f"{problem.kind:<9} {where}/{printable(problem.rel)}: {printable(problem.detail)}"
        print(line + ("  → restored" if problem.rel in fixed else ""))
    for bad in result.store_problems:
        again = "  → fetched again" if bad.sha256 in result.refetched else ""
        moved = "; moved to quarantine/" if bad.kind == "corrupt" else ""
        print(f"{bad.kind:<9} store blob {bad.sha256}: {bad.detail}{moved}{again}")
    models = models_text(len(result.models))
    checked = f"{files_text(result.files)} of {models} ({human_size(result.hashed_bytes)} read)"
    if result.blobs is not None:
        checked += f" and {result.blobs} blob" + ("" if result.blobs == 1 else "s")
    if result.ok and not result.problems and not result.store_problems:
        reporter.info(f"Verified {checked}: everything holds the locked bytes")
        return
    if result.ok:
        reporter.info(f"Verified {checked}: repaired everything found")
        return
    users = [p for p in result.remaining if not p.zoopms]
    left = len(result.remaining) + len(result.store_remaining)
    reporter.info(f"Verified {checked}: {left} problem" + ("" if left == 1 else "s") + " left")
    if any(p.zoopms for p in result.remaining):
        reporter.info("'zoopm verify --repair' (or 'zoopm install') restores zoopm's own files")
    if result.store_remaining:
        # install trusts a blob it does not need to fetch, so only verify --repair fetches it.
        reporter.info("'zoopm verify --store --repair' fetches the blobs named above again")
    if users:
        reporter.info(
            f"zoopm leaves what it did not place as it is ({_count(users, 'path')} above); "
            "move it away if it should not be there"
        )


def _count(items: tuple[Problem, ...] | list[Problem], noun: str) -> str:
    return f"{len(items)} {noun}" + ("" if len(items) == 1 else "s")


@app.command(short_help="Remove the blobs no project's zoo.lock needs.")
def gc(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what gc would remove; change nothing.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Remove every blob in the store that no registered project's zoo.lock needs.

    Examples:

    \b
      zoopm gc --dry-run
      zoopm gc
    """

    def action(project: Project, reporter: ConsoleReporter) -> jsondoc.Document | None:
        result = project.gc(dry_run=dry_run)
        if as_json:
            return jsondoc.gc(result, reporter.warnings)
        _report_gc(result, reporter)
        return None

    emit(run(ctx, action, as_json=as_json))


def _report_gc(result: GcResult, reporter: ConsoleReporter) -> None:
    for gone in result.forgotten:
        what = (
            f"project {gone.lock_path.parent}"
            if gone.lock_path is not None
            else f"register entry {gone.entry}"
        )
        verb = "Would forget" if result.dry_run else "Forgot"
        reporter.info(f"{verb} {printable(what)}: {printable(gone.reason)}")
    parts = [
        _plural(len(result.removed_blobs), "blob") + f" ({human_size(result.removed_bytes)})",
        _plural(result.aliases, "sha1 alias", "sha1 aliases"),
        _plural(result.quarantined, "quarantined file")
        + f" ({human_size(result.quarantined_bytes)})",
    ]
    if result.partials is not None:
        parts.append(
            _plural(result.partials, "stale partial download")
            + f" ({human_size(result.partial_bytes)})"
        )
    head, freed = ("Would remove", "would free") if result.dry_run else ("Removed", "freed")
    reporter.info(f"{head} {', '.join(parts)}; {freed} {human_size(result.freed_bytes)}")
    if result.linked_bytes:
        reporter.info(
            f"{human_size(result.linked_bytes)} of those blobs stays in use: they are still "
            "hard-linked from a models directory"
        )
    reporter.info(
        f"Kept {_plural(result.kept_blobs, 'blob')} needed by "
        f"{_plural(len(result.projects), 'project')}"
    )


def _plural(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else (many or one + 's')}"


@app.command(short_help="Write zoo.toml, zoo.lock and their files into one tar file.")
def bundle(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The bundle to write (a tar file).", metavar="FILE")],
    force: Annotated[bool, typer.Option("--force", help="Replace FILE if it exists.")] = False,
    offline: Annotated[
        bool, typer.Option("--offline", help="Use only the store; make no network request.")
    ] = False,
) -> None:
    """Write zoo.toml, zoo.lock and every file they pin into FILE, for 'install --from-bundle'.

    Examples:

    \b
      zoopm bundle models.tar                  # on a machine with the network
      zoopm install --from-bundle models.tar   # on one without, in an empty directory
    """

    def action(project: Project, reporter: ConsoleReporter) -> None:
        written = project.bundle(file, force=force)
        reporter.info(
            f"Wrote {relative(written.path)}: {models_text(written.models)}, "
            f"{written.blobs} blob{'s' * (written.blobs != 1)} ({human_size(written.size)})"
        )

    run(ctx, action, offline=offline)


@app.command(short_help="Upload blobs the remote store lacks.")
def push(
    ctx: typer.Context,
    everything: Annotated[
        bool,
        typer.Option("--all", help="Push every blob in the local store, not only zoo.lock's."),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Upload to the shared remote store ([store] remote, or ZOOPM_REMOTE) every blob zoo.lock
    pins that it lacks; with --all, every blob in the local store. Blobs it holds already are
    not sent again, so push can be run again or interrupted at any time.

    Examples:

    \b
      zoopm install && zoopm push
      ZOOPM_REMOTE=s3://team-models/zoopm zoopm push --all
      AWS_ENDPOINT_URL=http://minio:9000 zoopm push --json
    """

    def action(project: Project, reporter: ConsoleReporter) -> jsondoc.Document | None:
        result = project.push(everything=everything)
        if as_json:
            return jsondoc.push(result, reporter.warnings)
        what = "the local store" if result.everything else "zoo.lock"
        uploaded = len(result.uploaded)
        reporter.info(
            f"Pushed {_plural(uploaded, 'blob')} ({human_size(result.uploaded_bytes)}) of "
            f"{what} to {printable(result.remote)}; "
            f"{_plural(len(result.present), 'blob')} ({human_size(result.present_bytes)}) "
            f"{'was' if len(result.present) == 1 else 'were'} there already"
        )
        return None

    emit(run(ctx, action, as_json=as_json))
