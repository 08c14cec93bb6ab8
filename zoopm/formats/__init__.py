"""Formats: zoo.toml, zoo.lock and readme.md frontmatter, parsed into frozen values."""
