"""The JSON documents `--json` prints: one builder per command, each matching its schema in
zoopm/data/schemas/ (docs/json.md).

Imports nothing heavy at run time: `zoopm install --json` builds its document here before the
command-line framework loads (zoopm/fastpath.py).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from zoopm.errors import ZoopmError
    from zoopm.index import IndexEntry
    from zoopm.operations.caffe.adopt import Verdict
    from zoopm.operations.caffe.binary import BinaryResult
    from zoopm.operations.caffe.gistfetch import FetchedGist
    from zoopm.operations.caffe.publish import PublishResult
    from zoopm.operations.gc import GcResult
    from zoopm.operations.install import InstallPlan, InstallResult
    from zoopm.operations.push import PushResult
    from zoopm.operations.verify import VerifyResult
    from zoopm.project import LockResult, ModelStatus

Document = dict[str, Any] | list[Any]


class _Printed:
    """Set once a document is on stdout: a signal arriving after it must not add a second one;
    while it is written, a signal waits (deferred: its exit code and what it did)."""

    done = False
    writing = False
    deferred: tuple[int, str] | None = None


def asked(argv: Sequence[str]) -> bool:
    """Whether the command line asks for JSON: --json before any `--` that ends the options.

    Read from the raw words so that a usage error, found before any option is parsed, is
    reported as JSON too.
    """
    for word in argv:
        if word == "--":
            return False
        if word == "--json":
            return True
    return False


def emit(document: Document) -> None:
    """Prints document as the one JSON document on stdout, unless one was printed already."""
    if _Printed.done:
        return
    # ASCII only: a name with a bidi override or an escape cannot reorder or hide text when the
    # document is shown on a terminal.
    text = json.dumps(document, indent=2) + "\n"
    # Ctrl-C and SIGTERM wait until the whole document is out (defer_signal): a signal in the
    # middle would cut it short, and its own error document could not follow a half-printed one.
    _Printed.done = True
    _Printed.writing = True
    try:
        _write_whole(text)
    finally:
        _Printed.writing = False
    deferred, _Printed.deferred = _Printed.deferred, None
    if deferred is not None:
        from zoopm.errors import Interrupted

        raise Interrupted(*deferred)


def _write_whole(text: str) -> None:
    """text on stdout, all of it. Straight to the file descriptor, looping over partial writes:
    a signal landing in a write to a full pipe made sys.stdout.write drop what was left (seen
    with CPython 3.11), though its handler only noted the signal."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        sys.stdout.write(text)  # not a file (a test's capture): nothing to interrupt
        sys.stdout.flush()
        return
    sys.stdout.flush()
    view = memoryview(text.encode("utf-8"))
    while view:
        view = view[os.write(fd, view) :]


def defer_signal(code: int, what: str) -> bool:
    """True when a document is being written: the signal (its exit code and what it did) is
    kept and raised as Interrupted once the document is whole."""
    if not _Printed.writing:
        return False
    _Printed.deferred = (code, what)
    return True


def error(message: str, hint: str, kind: str, exit_code: int) -> dict[str, Any]:
    """The document of every failure (schemas/error.json); message and hint as on stderr."""
    return {
        "error": _one_line(message),
        "hint": _one_line(hint),
        "kind": kind,
        "exit_code": exit_code,
    }


def zoopm_error(failure: ZoopmError) -> dict[str, Any]:
    return error(failure.message, failure.hint, type(failure).__name__, failure.exit_code)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def search(found: Sequence[IndexEntry]) -> list[Any]:
    return [
        {
            "name": e.name,
            "source": e.source.canonical(),
            "description": e.description,
            "owner": e.owner,
            "index": e.origin,
        }
        for e in found
    ]


def model_status(status: ModelStatus) -> dict[str, Any]:
    """One model, as `list` (an array of these) and `show` print it."""
    model = status.model
    return {
        "name": model.name,
        "source": model.source_dict(),
        "declared": status.declared,
        "installed": status.installed,
        "caffemodel": model.caffemodel,
        "license": model.license,
        "caffe_commit": model.caffe_commit,
        "caffe_version": model.caffe_version,
        "files": [
            {
                "path": f.path,
                "size": f.size,
                "sha1": f.sha1,
                "sha256": f.sha256,
                "urls": list(f.urls),
                "binary": f.binary,
            }
            for f in model.files
        ],
    }


def lock(
    result: LockResult, lock_path: Path, *, check: bool, warnings: Sequence[str]
) -> dict[str, Any]:
    return {
        "lock": str(lock_path),
        "check": check,
        "written": not check and result.changed,
        "created": not check and result.changed and result.created,
        "changes": list(result.changes),
        "models": [model.name for model in result.lock.models],
        "warnings": list(warnings),
    }


def install(
    *,
    models_dir: Path,
    placed: int,
    removed: int,
    kept: int,
    fetched_blobs: int = 0,
    fetched_bytes: int = 0,
    nothing_to_do: bool = True,
    warnings: Sequence[str] = (),
) -> dict[str, Any]:
    """What an install did; also built from the no-op witness alone, so only these counts."""
    return {
        "models_dir": str(models_dir),
        "nothing_to_do": nothing_to_do,
        "placed": placed,
        "removed": removed,
        "kept": kept,
        "fetched_blobs": fetched_blobs,
        "fetched_bytes": fetched_bytes,
        "warnings": list(warnings),
    }


def install_result(result: InstallResult, warnings: Sequence[str]) -> dict[str, Any]:
    plan = result.plan
    return install(
        models_dir=plan.models_dir,
        placed=result.placed,
        removed=result.removed,
        kept=result.kept,
        fetched_blobs=len(plan.fetch_blobs),
        fetched_bytes=plan.fetch_bytes,
        nothing_to_do=plan.nothing_to_do,
        warnings=warnings,
    )


def install_plan(plan: InstallPlan, warnings: Sequence[str]) -> dict[str, Any]:
    """What `install --dry-run` would do, file by file."""

    def entry(model: str, path: str) -> dict[str, str]:
        return {"model": model, "path": path}

    return {
        "dry_run": True,
        "models_dir": str(plan.models_dir),
        "fetch": [
            {
                "model": a.model.name,
                "path": a.file.path,
                "size": a.file.size,
                "sha256": a.file.sha256,
            }
            for a in plan.fetch
        ],
        "place": [entry(a.model.name, a.file.path) for a in plan.place],
        "remove": [entry(model, path) for model, path in plan.remove],
        "leave": [entry(model, path) for model, path in plan.leave],
        "keep": len(plan.keep),
        "warnings": list(warnings),
    }


def verify(result: VerifyResult, warnings: Sequence[str]) -> dict[str, Any]:
    fixed = set(result.repaired)
    left = {p.rel for p in result.remaining}
    return {
        "ok": result.ok,
        "models_dir": str(result.models_dir),
        "models": list(result.models),
        "files": result.files,
        "hashed_bytes": result.hashed_bytes,
        "problems": [
            {
                "model": p.model,
                "path": p.path,
                "kind": p.kind,
                "detail": p.detail,
                "owner": "zoopm" if p.zoopms else "user",
                "expected_sha256": p.expected,
                "found_sha256": p.found,
                "repaired": p.rel in fixed,
                "remaining": p.rel in left,
            }
            for p in result.problems
        ],
        "store": None
        if result.blobs is None
        else {
            "blobs": result.blobs,
            "problems": [
                {
                    "sha256": p.sha256,
                    "kind": p.kind,
                    "detail": p.detail,
                    "needed": p.needed,
                    "refetched": p.sha256 in result.refetched,
                }
                for p in result.store_problems
            ],
        },
        "repaired": list(result.repaired),
        "refetched": list(result.refetched),
        "warnings": list(warnings),
    }


def gc(result: GcResult, warnings: Sequence[str]) -> dict[str, Any]:
    return {
        "dry_run": result.dry_run,
        "projects": [str(path) for path in result.projects],
        "forgotten": [
            {
                "entry": str(gone.entry),
                "lock": str(gone.lock_path) if gone.lock_path is not None else None,
                "reason": gone.reason,
            }
            for gone in result.forgotten
        ],
        "blobs": {
            "removed": list(result.removed_blobs),
            "removed_bytes": result.removed_bytes,
            "still_linked_bytes": result.linked_bytes,
            "kept": result.kept_blobs,
        },
        "aliases_removed": result.aliases,
        "quarantine": {"removed": result.quarantined, "bytes": result.quarantined_bytes},
        "partials": None
        if result.partials is None
        else {"removed": result.partials, "bytes": result.partial_bytes},
        "freed_bytes": result.freed_bytes,
        "warnings": list(warnings),
    }


def push(result: PushResult, warnings: Sequence[str]) -> dict[str, Any]:
    return {
        "remote": result.remote,
        "all": result.everything,
        "uploaded": {
            "blobs": [blob.sha256 for blob in result.uploaded],
            "bytes": result.uploaded_bytes,
        },
        "present": {"blobs": len(result.present), "bytes": result.present_bytes},
        "warnings": list(warnings),
    }


def download_binary(result: BinaryResult, warnings: Sequence[str]) -> dict[str, Any]:
    digest = result.digest
    return {
        "path": str(result.path),
        "existed": result.existed,
        "size": digest.size if digest is not None else None,
        "sha1": digest.sha1 if digest is not None else None,
        "sha256": digest.sha256 if digest is not None else None,
        "warnings": list(warnings),
    }


def fetch_gist(result: FetchedGist, warnings: Sequence[str]) -> dict[str, Any]:
    return {
        "gist": result.ref.gist,
        "asked_rev": result.ref.rev,
        "rev": result.rev,
        "directory": str(result.target),
        "files": list(result.files),
        "size": result.size,
        "replaced": result.replaced,
        "warnings": list(warnings),
    }


def import_models(
    verdicts: Sequence[Verdict],
    *,
    dry_run: bool,
    written: bool,
    created: bool,
    adopted: int,
    warnings: Sequence[str],
) -> dict[str, Any]:
    return {
        "dry_run": dry_run,
        "written": written,
        "created": created,
        "adopted_files": adopted,
        "directories": [
            {
                "directory": v.directory,
                "name": v.spec.name if v.spec is not None else None,
                "source": v.spec.source.canonical() if v.spec is not None else None,
                "reason": v.reason,
            }
            for v in verdicts
        ],
        "warnings": list(warnings),
    }


def publish(result: PublishResult, warnings: Sequence[str]) -> dict[str, Any]:
    return {
        "gist": result.gist_id,
        "rev": result.revision,
        "created": result.created,
        "changed": result.changed,
        "described": result.described,
        "public": result.public,
        "files": list(result.files),
        "deleted": list(result.deleted),
        "left_out": [{"name": s.name, "reason": s.reason} for s in result.skipped],
        "readme_updated": result.readme_updated,
        "warnings": list(warnings),
    }


def begin() -> None:
    """A new command starts: it may print its one document (tests run many in one process)."""
    _Printed.done = False
    _Printed.writing = False
    _Printed.deferred = None
