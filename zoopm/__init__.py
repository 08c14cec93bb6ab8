"""zoopm: a package manager for pretrained Caffe Model Zoo models."""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:
    from zoopm.project import Project

__all__ = ["Project", "__version__"]


def __getattr__(name: str) -> object:
    # Importing zoopm stays cheap: the composition root loads only when asked for.
    if name == "Project":
        from zoopm.project import Project

        return Project
    raise AttributeError(name)
