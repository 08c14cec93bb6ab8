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


class StaleLockError(ZoopmError):
    """zoo.lock no longer matches zoo.toml (or the files it was locked from)."""

    default_hint = "run 'zoopm lock' to update zoo.lock"


class IntegrityError(ZoopmError):
    """Bytes did not match the hash or size they were pinned to."""

    default_hint = "the file changed or the download is corrupt; nothing was installed"


class NetworkError(ZoopmError):
    """A download or API request failed after retries."""

    default_hint = "check the URL and your connection, or add a [mirrors] entry to zoo.toml"


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


class RateLimitError(NetworkError):
    """GitHub refused the request because the API rate limit is used up."""

    default_hint = "set GITHUB_TOKEN to a GitHub token: 5,000 requests an hour instead of 60"
