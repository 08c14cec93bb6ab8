"""Holding zoopm's locks from another process, as a second zoopm would."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path


def project_lock(project: Path) -> Path:
    """The lock file zoopm holds while it works in project (keyed by the directory itself)."""
    info = project.stat()
    key = hashlib.sha256(f"{info.st_dev}:{info.st_ino}".encode()).hexdigest()[:32]
    return Path(os.environ["ZOOPM_HOME"]) / "locks" / f"project-{key}.lock"


def hold(lock_file: Path) -> subprocess.Popen[str]:
    """Another process holding lock_file (for 30 s at most) once this returns; kill it after."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from pathlib import Path\n"
            "from zoopm.storage.locks import hold_lock\n"
            "with hold_lock(Path(sys.argv[1]), 'a test', timeout=5):\n"
            "    print('held', flush=True)\n"
            "    time.sleep(30)\n",
            str(lock_file),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    return holder
