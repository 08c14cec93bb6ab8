"""The zoopm command line: one module per group of commands, all registered on one typer app."""

from zoopm.cli import manage, inspect, upkeep, caffe  # noqa: I001  (order = order in --help)
from zoopm.cli.app import app, main

__all__ = ["app", "caffe", "inspect", "main", "manage", "upkeep"]
