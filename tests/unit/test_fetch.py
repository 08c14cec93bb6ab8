"""Mirror URLs: which URLs a download tries, in which order."""

from __future__ import annotations

from zoopm.network.fetch import candidate_urls

URL = "http://dl.caffe.berkeleyvision.org/bvlc_googlenet.caffemodel"


def test_without_mirrors_only_the_url_is_tried() -> None:
    assert candidate_urls([URL], {}) == [URL]


def test_mirrors_are_tried_first_then_the_original() -> None:
    mirrors = {"http://dl.caffe.berkeleyvision.org/": ("http://a/caffe/", "file:///srv/caffe/")}

    assert candidate_urls([URL], mirrors) == [
        "http://a/caffe/bvlc_googlenet.caffemodel",
        "file:///srv/caffe/bvlc_googlenet.caffemodel",
        URL,
    ]


def test_the_longest_matching_prefix_wins() -> None:
    mirrors = {
        "http://dl.caffe.berkeleyvision.org/": ("http://a/",),
        "http://dl.caffe": ("http://b/",),
    }

    assert candidate_urls([URL], mirrors)[0] == "http://a/bvlc_googlenet.caffemodel"
