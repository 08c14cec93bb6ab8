"""Caffe's own workflows: the jobs of the Model Zoo scripts (download a binary, fetch a gist,
publish model info), and adopting a models/ tree those scripts filled."""
