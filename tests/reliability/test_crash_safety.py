"""SIGKILL at seeded random points of an install never leaves a wrong byte where it counts.

Each trial kills `zoopm install` (a project of four models with binaries of a few MB, served
by a throttled local server) after a seeded random delay, checks the store and the models
directory, then reruns the install to the end. Download-phase trials start from an empty
store; placement-phase trials start with every blob in the store, so the kill lands while
files are being placed. Some trials kill twice before the rerun.
"""

from __future__ import annotations

import random
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.reliability._support import (
    ThrottledFileServer,
    finish,
    has_exited,
    leftover_temp_files,
    locked_files,
    locked_template,
    models_problems,
    run,
    signal_unreaped,
    spawn,
    store_problems,
)

TRIALS = 21
BINARY_SIZES = {"alpha": 2 << 20, "beta": 3 << 19, "gamma": 3 << 19, "delta": 1 << 20}
EXTRA_INFO_FILES = 12  # small files per model, so that placing takes long enough to be hit
RATE = 16 << 20  # bytes per second and connection while a trial is being killed
LINK_MODES = ("auto", "copy", "symlink", "hardlink")


@dataclass(frozen=True)
class Bench:
    """A locked project, a full store to start placement trials from, and the phase windows."""

    server: ThrottledFileServer
    template: Path  # zoo.toml and zoo.lock
    full_store: Path
    download_window: tuple[float, float]  # seconds from start, throttled, empty store
    place_window: tuple[float, float]  # seconds from the first file placed, store full


@dataclass(frozen=True)
class Phases:
    """When things happened in one install, in seconds from its start."""

    first_request: float
    first_placed: float
    all_placed: float
    end: float


def _time_install(project: Path, home: Path, server: ThrottledFileServer) -> Phases:
    """Runs install, watching the server and models/ every millisecond."""
    expected = len(locked_files(project))
    requests = server.requests
    started = time.monotonic()
    process = spawn(["install"], project=project, home=home)
    seen: dict[str, float] = {}
    models = project / "models"

    def watch() -> None:
        while not has_exited(process.pid) and "all_placed" not in seen:
            now = time.monotonic() - started
            if server.requests > requests:
                seen.setdefault("first_request", now)
            if models.is_dir():
                placed = sum(
                    1
                    for p in models.rglob("*")
                    if p.is_file() and "/" in str(p.relative_to(models))
                )
                if placed:
                    seen.setdefault("first_placed", now)
                if placed >= expected:
                    seen.setdefault("all_placed", now)
            time.sleep(0.001)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    outcome = finish(process, ["install"], started, 60)
    watcher.join()
    assert outcome.returncode == 0, outcome.describe()
    end = outcome.seconds
    first_placed = seen.get("first_placed", end)
    return Phases(seen.get("first_request", 0.0), first_placed, seen.get("all_placed", end), end)


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    root = tmp_path_factory.mktemp("crash-bench")
    server = ThrottledFileServer()
    template = locked_template(root, server, BINARY_SIZES, EXTRA_INFO_FILES)

    # Timings come from this machine, so the seeded fractions land in the same phases anywhere.
    server.throttle(RATE)
    timed = root / "timed"
    shutil.copytree(template, timed)
    downloading = _time_install(timed, root / "timed-home", server)
    server.throttle(None)
    placing = root / "placing"
    shutil.copytree(template, placing)
    full_home = root / "full-home"
    shutil.copytree(root / "timed-home" / "store", full_home / "store", symlinks=True)
    placing_phases = _time_install(placing, full_home, server)
    server.throttle(RATE)
    try:
        yield Bench(
            server,
            template,
            root / "timed-home" / "store",
            (max(downloading.first_request - 0.1, 0.05), downloading.first_placed),
            # The watcher sees the last file late (it polls a growing tree): aim at the first part.
            (0.0, 0.4 * (placing_phases.all_placed - placing_phases.first_placed) + 0.002),
        )
    finally:
        server.stop()


@dataclass(frozen=True)
class Trial:
    seed: int
    phase: str  # "download" or "place"
    delays: tuple[float, ...]  # one kill after each delay, each in a fresh process
    jobs: int
    link_mode: str


def _trial(seed: int, bench: Bench) -> Trial:
    rng = random.Random(seed)
    phase = "place" if seed % 3 == 0 else "download"
    kills = 2 if seed % 4 == 1 else 1
    start, end = bench.place_window if phase == "place" else bench.download_window
    delays = tuple(rng.uniform(start, end) for _ in range(kills))
    return Trial(seed, phase, delays, rng.choice((1, 2, 4)), LINK_MODES[seed % len(LINK_MODES)])


def _kill_after(delay: float, project: Path, home: Path, trial: Trial) -> int:
    args = ["install", "--link-mode", trial.link_mode]
    started = time.monotonic()
    process = spawn(args, project=project, home=home, env={"ZOOPM_JOBS": str(trial.jobs)})
    if trial.phase == "place":
        # Start-up time varies more than placing takes: count from the first file placed.
        models = project / "models"
        while not has_exited(process.pid) and not _any_model_file(models):
            time.sleep(0.0005)
    time.sleep(delay)
    signal_unreaped(process.pid, signal.SIGKILL)
    outcome = finish(process, args, started, 30)
    return outcome.returncode


def _any_model_file(models: Path) -> bool:
    if not models.is_dir():
        return False
    return any(p.is_file() for directory in models.iterdir() for p in directory.glob("*"))


def _fresh(tmp_path: Path, bench: Bench, trial: Trial) -> tuple[Path, Path]:
    project = tmp_path / "proj"
    shutil.copytree(bench.template, project)
    home = tmp_path / "home"
    if trial.phase == "place":
        shutil.copytree(bench.full_store, home / "store", symlinks=True)
    return project, home


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(TRIALS))
def test_sigkill_at_a_random_point_of_install_leaves_verified_bytes_and_a_rerun_completes(
    seed: int, tmp_path: Path, bench: Bench
) -> None:
    trial = _trial(seed, bench)
    project, home = _fresh(tmp_path, bench, trial)
    pinned = locked_files(project)

    for delay in trial.delays:
        _kill_after(delay, project, home, trial)

        assert store_problems(home) == [], trial
        assert models_problems(project, pinned, complete=False) == [], trial

    bench.server.throttle(None)
    try:
        rerun = run(
            ["install", "--link-mode", trial.link_mode],
            project=project,
            home=home,
            env={"ZOOPM_JOBS": str(trial.jobs)},
        )
    finally:
        bench.server.throttle(RATE)
    assert rerun.returncode == 0, f"{trial}\n{rerun.describe()}"
    assert store_problems(home) == [], trial
    assert models_problems(project, pinned, complete=True) == [], trial


@pytest.mark.parametrize("seed", [101, 102])
def test_a_rerun_after_sigkill_mid_download_leaves_no_partial_or_temp_file_behind(
    seed: int, tmp_path: Path, bench: Bench
) -> None:
    trial = Trial(seed, "download", (), 2, "auto")
    project, home = _fresh(tmp_path, bench, trial)
    args = ["install"]
    started = time.monotonic()
    before = bench.server.requests
    process = spawn(args, project=project, home=home, env={"ZOOPM_JOBS": "2"})
    while bench.server.requests == before and not has_exited(process.pid):
        time.sleep(0.005)
    # Downloads are under way; the kill lands while the first bodies stream.
    time.sleep(random.Random(seed).uniform(0.05, 0.15))
    signal_unreaped(process.pid, signal.SIGKILL)
    finish(process, args, started, 30)
    partials = [p.name for p in (home / "store" / "tmp").glob("*") if p.is_file()]
    assert partials, "the kill landed before any partial download was written"

    bench.server.throttle(None)
    try:
        rerun = run(["install"], project=project, home=home)
    finally:
        bench.server.throttle(RATE)

    assert rerun.returncode == 0, rerun.describe()
    assert leftover_temp_files(project, home) == []


def test_the_trials_cover_both_phases_every_link_mode_and_double_kills() -> None:
    # Guards the trial plan itself: a change to _trial must not quietly drop a kind of trial.
    fake = Bench(ThrottledFileServer.__new__(ThrottledFileServer), Path(), Path(), (0, 1), (1, 2))
    trials = [_trial(seed, fake) for seed in range(TRIALS)]
    assert TRIALS >= 20
    assert {t.phase for t in trials} == {"download", "place"}
    assert {t.link_mode for t in trials} == set(LINK_MODES)
    assert any(len(t.delays) == 2 for t in trials)
    assert len({t.delays for t in trials}) == TRIALS
