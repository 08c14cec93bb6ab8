"""The shared remote store: blobs named by SHA-256 on object storage or a static web server.

A cache shared by machines, as DVC remotes and Bazel's remote cache are: never trusted, every
byte read from it proven by the hash zoo.lock pins. `location` parses where it is (and imports
nothing heavy); `objects` is the only module that imports fsspec.
"""
