"""The error tree: every failure is a ZoopmError with a message, a hint and an exit code."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


class ZoopmError(Exception):
    """A failure the user can act on: one-line message, one-line hint, process exit code."""

    exit_code: int = EXIT_FAILURE
    default_hint: str = ""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint if hint is not None else self.default_hint

    def __str__(self) -> str:
        return self.message


class UsageError(ZoopmError):
    """The command line asks for something that cannot be done as asked."""

    exit_code = EXIT_USAGE
    default_hint = "run 'zoopm --help' for the commands and options"


class ProjectError(ZoopmError):
    """A project file (zoo.toml, zoo.lock, readme.md) is missing or malformed."""

    exit_code = EXIT_USAGE


class ManifestError(ProjectError):
    """zoo.toml is missing, does not parse, or holds a value zoopm cannot use."""

    default_hint = "fix zoo.toml; docs/zoo-toml.md lists every key"


class LockfileError(ProjectError):
    """zoo.lock does not parse or does not follow the lock format."""

    default_hint = "zoo.lock is generated: run 'zoopm lock' to write it again"


class ModelInfoError(ProjectError):
    """A model's readme.md frontmatter is missing or malformed."""

    default_hint = "fix the frontmatter; docs/model-info.md says what zoopm accepts"


class ConfigError(ProjectError):
    """The user configuration (config.toml) does not parse or holds a value zoopm cannot use."""

    default_hint = "fix the file, or move it aside; docs/configuration.md lists every key"


class StaleLockError(ZoopmError):
    """zoo.lock no longer matches zoo.toml (or the files it was locked from)."""

    default_hint = "run 'zoopm lock' to update zoo.lock"


class NotInstalledError(ZoopmError):
    """A model zoo.lock pins is not in place under the models directory, and was not to be
    installed (zoopm.model_path with install=False), or installing it left a file out."""

    default_hint = "run 'zoopm install'"


class IntegrityError(ZoopmError):
    """Bytes did not match the hash or size they were pinned to."""

    default_hint = "the file changed or the download is corrupt; nothing was installed"


class NetworkError(ZoopmError):
    """A download or API request failed after retries."""

    # The HTTP status that ended the request, when a server answered with one.
    status: int | None = None

    default_hint = (
        "check the URL and your connection, or add a [mirrors] entry (zoo.toml, or "
        "~/.config/zoopm/config.toml outside a project)"
    )


class OfflineError(ZoopmError):
    """Offline mode needs something that is not in the store."""

    default_hint = "run once without --offline (and without ZOOPM_OFFLINE) to fill the store"


class StoreError(ZoopmError):
    """The content-addressed store cannot be read or written."""

    default_hint = "check ZOOPM_HOME and its permissions"


class InstallError(ZoopmError):
    """Placing files into the models directory failed."""

    default_hint = "check the models directory and its permissions"


class SourceError(ZoopmError):
    """A gist or repository holds something zoopm will not install (hostile names, too large)."""

    default_hint = "pin another revision, or ask the model's author to fix it"


class BundleError(ZoopmError):
    """An offline bundle is damaged, is not one zoopm wrote, or does not match the project."""

    default_hint = "make the bundle again with 'zoopm bundle' (docs/bundles.md)"


class RemoteStoreError(ZoopmError):
    """The shared remote store cannot be used as configured: its backend is not installed, it
    is read-only, or it refuses or fails a request."""

    default_hint = (
        "check [store] remote (zoo.toml or config.toml) or ZOOPM_REMOTE (docs/remote-store.md)"
    )
    # True when a package is missing: the user must install it, so even install stops (any
    # other failure of the remote store only sends install to the origin).
    needs_install: bool = False


class RateLimitError(NetworkError):
    """GitHub refused the request because the API rate limit is used up."""

    default_hint = "set GITHUB_TOKEN to a GitHub token: 5,000 requests an hour instead of 60"


class Cancelled(ZoopmError):
    """The run was interrupted (Ctrl-C, SIGTERM) or a sibling task failed; work stopped early."""

    exit_code = 130
    default_hint = "run the command again to continue"


class BusyError(ZoopmError):
    """Another zoopm process holds a lock this one needs, for longer than zoopm waits."""

    default_hint = "wait for the other zoopm to finish, or stop it; then run the command again"


class FileSystemError(ZoopmError):
    """An operating-system error on a named path: permissions, a full disk, a read-only mount."""

    default_hint = "check the path, its permissions and the free space"


_ERRNO_HINTS = {
    "EACCES": "check the permissions of the path (and of the directories above it)",
    "EPERM": "check the permissions of the path (and of the directories above it)",
    "EROFS": "the file system is mounted read-only; point zoopm somewhere writable",
    "ENOSPC": "the disk is full: free some space (zoopm gc can reclaim store space) and retry",
    "EDQUOT": "the disk quota is used up: free some space and retry",
    "EFBIG": "the file is larger than this system or your limits allow (ulimit -f)",
    "ENOENT": "the path does not exist",
    "ENOTDIR": "a part of the path is a file, not a directory",
    "EISDIR": "the path is a directory, not a file",
    "ELOOP": "the path goes through a symbolic link, which zoopm does not follow here",
}


def from_os_error(exc: OSError, path: object | None = None) -> FileSystemError:
    """The user-facing form of an OSError: the path, what went wrong, what to try."""
    import errno as _errno

    where = path if path is not None else exc.filename
    reason = exc.strerror or str(exc) or type(exc).__name__
    name = _errno.errorcode.get(exc.errno or 0, "")
    hint = _ERRNO_HINTS.get(name, FileSystemError.default_hint)
    message = f"{where}: {reason}" if where is not None else reason
    return FileSystemError(message, hint)


INTERRUPTED_HINT = "nothing half-done was kept; run the command again to go on"


class Interrupted(BaseException):
    """SIGINT or SIGTERM, raised in the main thread so the run unwinds (files closed, record
    written) and ends with 130 or 143. A BaseException, so that neither zoopm's handlers nor
    click's take it for an ordinary error."""

    def __init__(self, exit_code: int, what: str) -> None:
        super().__init__(what)
        self.exit_code = exit_code
        self.what = what
