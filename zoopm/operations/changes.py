"""Changes: how zoo.lock differs from zoo.toml, and from the lock that would replace it."""

from __future__ import annotations

from zoopm.formats.lockfile import Lock, LockedModel
from zoopm.formats.manifest import Manifest


def manifest_changes(manifest: Manifest, lock: Lock) -> list[str]:
    """What zoo.toml says differently from the lock, one short phrase per model."""
    wanted = manifest.canonical_models()
    locked = {m.name: m for m in lock.models}
    changes = [f"{name} added" for name in sorted(set(wanted) - set(locked))]
    changes += [f"{name} removed" for name in sorted(set(locked) - set(wanted))]
    for name in sorted(set(wanted) & set(locked)):
        if not _same_request(wanted[name], locked[name]):
            changes.append(f"{name} changed")
    if not changes and manifest.manifest_hash() != lock.manifest_hash:
        changes.append("manifest-hash differs")
    return changes


def _same_request(wanted: dict[str, object], model: LockedModel) -> bool:
    have: dict[str, object] = dict(model.source_dict())
    if "rev" not in wanted:
        # A source without rev means "newest"; the lock records which commit that was.
        have = {k: v for k, v in have.items() if k != "rev"}
    if not model.binary:
        have = have | {"binary": False}
    return have == wanted


def lock_changes(old: Lock | None, new: Lock) -> list[str]:
    """What writing new over old would change, one short phrase per model."""
    if old is None:
        return ["zoo.lock does not exist"]
    before = {m.name: m for m in old.models}
    after = {m.name: m for m in new.models}
    changes = [f"{name} added" for name in sorted(set(after) - set(before))]
    changes += [f"{name} removed" for name in sorted(set(before) - set(after))]
    for name in sorted(set(before) & set(after)):
        a, b = before[name], after[name]
        if a.source != b.source or a.binary != b.binary:
            changes.append(f"{name}: source changed")
            continue
        old_files = {f.path: f for f in a.files}
        new_files = {f.path: f for f in b.files}
        for path in sorted(set(new_files) | set(old_files)):
            if path not in old_files:
                changes.append(f"{name}: {path} added")
            elif path not in new_files:
                changes.append(f"{name}: {path} removed")
            elif old_files[path] != new_files[path]:
                changes.append(f"{name}: {path} changed")
        if (a.caffemodel, a.license, a.caffe_commit, a.caffe_version) != (
            b.caffemodel,
            b.license,
            b.caffe_commit,
            b.caffe_version,
        ):
            changes.append(f"{name}: model info changed")
    if not changes and old.manifest_hash != new.manifest_hash:
        changes.append("manifest-hash differs")
    return changes
