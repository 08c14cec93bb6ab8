"""Building small zoopm projects on disk for tests."""

from __future__ import annotations

from pathlib import Path

from tests.support.fileserver import FileServer

REPO = Path(__file__).resolve().parents[2]
TINY_NET = REPO / "fixtures" / "tiny_net"


def write_project(root: Path, models: dict[str, str], extra: str = "") -> Path:
    """A project directory whose zoo.toml declares models (name → inline-table TOML)."""
    root.mkdir(parents=True, exist_ok=True)
    lines = ["[project]", 'models-dir = "models"', "", "[models]"]
    lines += [f"{name} = {spec}" for name, spec in models.items()]
    (root / "zoo.toml").write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    return root


def serve_binary_elsewhere(model_dir: Path, url: str) -> bytes:
    """Moves the model's binary out of its directory and points caffemodel_url at url."""
    from zoopm.formats.modelinfo import set_frontmatter_key

    binary = model_dir / "tiny_net.caffemodel"
    data = binary.read_bytes()
    binary.unlink()
    readme = model_dir / "readme.md"
    readme.write_bytes(set_frontmatter_key(readme.read_bytes(), "caffemodel_url", url, str(readme)))
    return data


def store_files(store: Path) -> set[str]:
    """Every file in the store (blobs, aliases, temp files), relative to it; locks excluded."""
    if not store.exists():
        return set()
    return {
        p.relative_to(store).as_posix()
        for p in store.rglob("*")
        if p.is_file() and "locks" not in p.relative_to(store).parts
    }


def mirrors_for(host: FileServer) -> str:
    """A [mirrors] table sending the real model hosts of the fixtures to host."""
    return (
        "\n[mirrors]\n"
        f'"http://dl.caffe.berkeleyvision.org/" = ["{host.url("/caffe/")}"]\n'
        f'"http://models.zoopm.invalid/nin/" = ["{host.url("/nin/")}"]\n'
        f'"http://models.zoopm.invalid/jimmie33/" = ["{host.url("/nin/")}"]\n'
        f'"http://models.zoopm.invalid/oldzoo/" = ["{host.url("/nin/")}"]\n'
        f'"http://www.robots.ox.ac.uk/~vgg/software/very_deep/caffe/" = ["{host.url("/caffe/")}"]\n'
        f'"http://www.robots.ox.ac.uk/~vgg/software/deep_eval/releases/bvlc/" = '
        f'["{host.url("/caffe/")}"]\n'
    )


def fresh_checkout(project: Path, where: Path) -> Path:
    """What a clone of project gives another machine: zoo.toml and zoo.lock, nothing else."""
    where.mkdir(parents=True)
    for name in ("zoo.toml", "zoo.lock"):
        (where / name).write_bytes((project / name).read_bytes())
    return where


def tree(directory: Path) -> dict[str, bytes]:
    """Every file below directory (the install record aside) and its bytes."""
    return {
        p.relative_to(directory).as_posix(): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.name != ".zoopm-installed.json"
    }
