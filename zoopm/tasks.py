"""Cancellable work: a token set by Ctrl-C or a failed sibling, and a pool that obeys it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from zoopm.errors import Cancelled, ZoopmError

T = TypeVar("T")

# After a cancel, how long the pool waits for running tasks to notice before it returns anyway.
# Its threads are daemons: a task stuck in a socket read can never hold the process open.
_GRACE_SECONDS = 1.0
_POLL_SECONDS = 0.05


class CancelToken:
    """Set once, seen everywhere: long loops call check() between steps.

    A child token is cancelled when its parent is, but cancelling a child (a pool whose task
    failed) leaves the parent alone.
    """

    def __init__(self, parent: CancelToken | None = None) -> None:
        self._event = threading.Event()
        self._parent = parent
        self.reason = ""

    @property
    def cancelled(self) -> bool:
        return self._event.is_set() or (self._parent is not None and self._parent.cancelled)

    def cancel(self, reason: str = "interrupted") -> None:
        if not self._event.is_set():
            self.reason = reason
            self._event.set()

    def check(self) -> None:
        """Raises Cancelled if the token (or its parent) is set."""
        if self.cancelled:
            raise Cancelled(f"stopped: {self._why()}")

    def sleep(self, seconds: float) -> None:
        """Sleeps up to seconds, waking (and raising Cancelled) as soon as the token is set."""
        deadline = time.monotonic() + seconds
        while True:
            self.check()
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._event.wait(min(left, _POLL_SECONDS))

    def _why(self) -> str:
        if self._event.is_set():
            return self.reason
        return self._parent._why() if self._parent is not None else "interrupted"


def run_tasks(tasks: Sequence[Callable[[], T]], jobs: int, token: CancelToken) -> list[T]:
    """Runs tasks on at most jobs threads and returns their results in order.

    The first failure cancels the tasks not yet started and tells running ones to stop; the
    error raised is the first real one, never a Cancelled that it caused. Ctrl-C in the calling
    thread cancels everything and returns within about a second.
    """
    if not tasks:
        return []
    if jobs <= 1 or len(tasks) == 1:
        results = []
        for task in tasks:
            token.check()
            results.append(task())
        return results
    return _Pool(tasks, min(jobs, len(tasks)), CancelToken(token)).run()


class _Pool(Generic[T]):
    def __init__(self, tasks: Sequence[Callable[[], T]], jobs: int, token: CancelToken) -> None:
        self._tasks = tasks
        self._jobs = jobs
        self._token = token
        self._lock = threading.Lock()
        self._next = 0
        self._running = jobs
        self._all_done = threading.Event()
        self._results: dict[int, T] = {}
        self._errors: list[BaseException] = []

    def run(self) -> list[T]:
        threads = [
            threading.Thread(target=self._work, name=f"zoopm-task-{i}", daemon=True)
            for i in range(self._jobs)
        ]
        for thread in threads:
            thread.start()
        try:
            while not self._all_done.wait(_POLL_SECONDS):
                pass
        except BaseException:
            # Ctrl-C (or SIGTERM turned into an exception) lands here, in the calling thread.
            self._token.cancel("interrupted")
            self._all_done.wait(_GRACE_SECONDS)
            raise
        self._raise_first()
        return [self._results[i] for i in range(len(self._tasks))]

    def _work(self) -> None:
        try:
            while True:
                with self._lock:
                    if self._next >= len(self._tasks) or self._token.cancelled:
                        return
                    index = self._next
                    self._next += 1
                try:
                    result = self._tasks[index]()
                except BaseException as exc:
                    with self._lock:
                        self._errors.append(exc)
                    self._token.cancel("another download failed")
                else:
                    with self._lock:
                        self._results[index] = result
        finally:
            with self._lock:
                self._running -= 1
                if self._running == 0:
                    self._all_done.set()

    def _raise_first(self) -> None:
        if not self._errors:
            if self._token.cancelled:
                self._token.check()
            return
        bugs = [e for e in self._errors if not isinstance(e, ZoopmError)]
        if bugs:
            raise bugs[0]
        real = [e for e in self._errors if not isinstance(e, Cancelled)]
        raise (real or self._errors)[0]
