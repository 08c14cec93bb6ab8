"""Specification of the GitHub emulator: real HTTP over loopback (urllib), no mocks."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import re
import time
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.github import (
    FIXTURES,
    HOSTILE_FILENAMES,
    ApiRequest,
    GitHubEmulator,
    git_blob_sha1,
)

NIN = "d802a5849de39225bcc6"
VGG = "509111f8a00a9ece2c3d5dde6a750129"
DIGITS = "4012587"
BUSY = "5e7e4a1c0de35c0ffee1"
CAFFE = "9b891540183ddc834a02b2bd81b31afae71b2153"
GOOGLENET = f"repos/BVLC/caffe/{CAFFE}/models/bvlc_googlenet"
JSON_ACCEPT = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}

GIST_KEYS = [
    "url",
    "forks_url",
    "commits_url",
    "id",
    "node_id",
    "git_pull_url",
    "git_push_url",
    "html_url",
    "files",
    "public",
    "created_at",
    "updated_at",
    "description",
    "comments",
    "user",
    "comments_url",
    "owner",
    "forks",
    "history",
    "truncated",
]
FILE_KEYS = ["filename", "type", "language", "raw_url", "size", "truncated", "content", "encoding"]
USER_KEYS = [
    "login",
    "id",
    "node_id",
    "avatar_url",
    "gravatar_id",
    "url",
    "html_url",
    "followers_url",
    "following_url",
    "gists_url",
    "starred_url",
    "subscriptions_url",
    "organizations_url",
    "repos_url",
    "events_url",
    "received_events_url",
    "type",
    "site_admin",
]
COMMIT_KEYS = ["user", "version", "committed_at", "change_status", "url"]
ENTRY_KEYS = [
    "name",
    "path",
    "sha",
    "size",
    "url",
    "html_url",
    "git_url",
    "download_url",
    "type",
    "_links",
]
PRIMARY_MESSAGE = (
    "API rate limit exceeded for 127.0.0.1. (But here's the good news: Authenticated requests "
    "get a higher rate limit. Check out the documentation for more details.)"
)


@pytest.fixture
def gh() -> Iterator[GitHubEmulator]:
    with GitHubEmulator() as emulator:
        emulator.load_fixtures(FIXTURES)
        yield emulator


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """GET with urllib; status, headers (lower-cased names), body, for errors too."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, _lower(response.headers.items()), response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, _lower(error.headers.items()), error.read()


def _lower(items: Any) -> dict[str, str]:
    return {str(name).lower(): str(value) for name, value in items}


def api(
    gh: GitHubEmulator, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], Any]:
    status, head, body = fetch(gh.api_url + path, {**JSON_ACCEPT, **(headers or {})})
    return status, head, json.loads(body) if body else None


def fixture_bytes(relative: str) -> bytes:
    return (FIXTURES / relative).read_bytes()


def raw_blob(url: str) -> str:
    """The blob sha segment of a gist raw_url."""
    return urllib.parse.urlsplit(url).path.split("/")[4]


# --- gists -----------------------------------------------------------------------------------


def test_gist_latest_has_the_real_field_set_order_and_own_urls(gh: GitHubEmulator) -> None:
    commits = gh.gist_commits(NIN)
    status, headers, gist = api(gh, f"/gists/{NIN}")

    assert status == 200
    assert list(gist) == GIST_KEYS
    assert gist["url"] == f"{gh.api_url}/gists/{NIN}"
    assert gist["commits_url"] == f"{gh.api_url}/gists/{NIN}/commits"
    assert gist["id"] == NIN
    assert base64.b64decode(gist["node_id"]) == f"04:Gist{NIN}".encode()
    assert gist["description"] == "NIN-Imagenet"
    assert (gist["public"], gist["comments"], gist["user"], gist["forks"]) == (True, 0, None, [])
    assert gist["truncated"] is False
    assert (gist["created_at"], gist["updated_at"]) == (
        "2015-02-15T08:00:00Z",
        "2015-02-17T08:00:00Z",
    )
    assert list(gist["owner"]) == USER_KEYS
    assert gist["owner"]["login"] == "mavenlin"
    assert sorted(gist["files"]) == ["deploy.prototxt", "readme.md"]
    for name, entry in gist["files"].items():
        assert list(entry) == FILE_KEYS
        data = fixture_bytes(f"gists/{NIN}/r3/{name}")
        assert entry["filename"] == name
        assert entry["size"] == len(data)
        assert entry["content"] == data.decode()
        assert entry["encoding"] == "utf-8"
        assert entry["raw_url"] == f"{gh.raw_base}/mavenlin/{NIN}/raw/{git_blob_sha1(data)}/{name}"
    assert gist["files"]["readme.md"]["type"] == "text/markdown"
    assert gist["files"]["readme.md"]["language"] == "Markdown"
    assert [h["version"] for h in gist["history"]] == commits[::-1]
    assert all(list(h) == COMMIT_KEYS for h in gist["history"])
    assert gist["history"][0]["url"] == f"{gh.api_url}/gists/{NIN}/{commits[-1]}"
    assert headers["content-type"] == "application/json; charset=utf-8"
    assert headers["x-github-media-type"] == "github.v3; format=json"
    assert headers["x-github-api-version-selected"] == "2022-11-28"
    assert headers["cache-control"] == "public, max-age=60, s-maxage=60"
    assert headers["vary"] == "Accept, Accept-Encoding"
    assert headers["etag"].startswith('W/"') and len(headers["etag"]) == 36
    assert headers["x-github-request-id"]
    every_url = [v for k, v in gist.items() if k.endswith("_url")] + [gist["url"]]
    assert all(u.startswith((gh.api_url, gh.raw_base)) for u in every_url)


def test_gist_at_an_old_revision_shows_that_revisions_files(gh: GitHubEmulator) -> None:
    first, second, third = gh.gist_commits(NIN)
    status, _, gist = api(gh, f"/gists/{NIN}/{first}")

    assert status == 200
    assert list(gist) == GIST_KEYS
    assert gist["url"] == f"{gh.api_url}/gists/{NIN}/{first}"
    assert [h["version"] for h in gist["history"]] == [first]
    assert gist["history"][0]["change_status"]["deletions"] == 0
    assert gist["updated_at"] == "2015-02-17T08:00:00Z"  # current, not versioned
    assert gist["description"] == "NIN-Imagenet"
    for name, entry in gist["files"].items():
        data = fixture_bytes(f"gists/{NIN}/r1/{name}")
        status, headers, body = fetch(entry["raw_url"])
        assert status == 200
        assert headers["content-type"] == "text/plain; charset=utf-8"
        assert "etag" in headers
        assert body == data
        assert git_blob_sha1(body) == raw_blob(entry["raw_url"])

    _, _, middle = api(gh, f"/gists/{NIN}/{second}")
    assert [h["version"] for h in middle["history"]] == [second, first]
    assert middle["history"][0]["change_status"] == {"total": 2, "additions": 1, "deletions": 1}
    _, _, latest = api(gh, f"/gists/{NIN}")
    old_deploy = gist["files"]["deploy.prototxt"]["raw_url"]
    assert middle["files"]["deploy.prototxt"]["raw_url"] != old_deploy
    assert middle["files"]["readme.md"] == gist["files"]["readme.md"]
    assert latest["files"]["readme.md"] != middle["files"]["readme.md"]
    assert latest["history"][0]["version"] == third


def test_gist_errors_unknown_id_malformed_and_unknown_sha(gh: GitHubEmulator) -> None:
    status, _, body = api(gh, "/gists/0000000000deadbeef00")
    assert status == 404
    assert body == {
        "message": "Not Found",
        "documentation_url": "https://docs.github.com/rest/gists/gists#get-a-gist",
        "status": "404",
    }
    status, _, body = api(gh, f"/gists/{NIN}/12345")
    assert status == 422
    assert body["message"] == "Validation Failed"
    status, _, body = api(gh, f"/gists/{NIN}/{'0' * 40}")
    assert (status, body["message"]) == (404, "Not Found")


def test_fixture_gists_with_other_id_formats(gh: GitHubEmulator) -> None:
    _, _, vgg = api(gh, f"/gists/{VGG}")
    assert sorted(vgg["files"]) == ["README.md", "deploy.prototxt"]
    _, _, digits = api(gh, f"/gists/{DIGITS}")
    assert digits["id"] == DIGITS
    assert "readme.md" in digits["files"]

    for gist, binary in ((vgg, "vgg16"), (digits, "lenet_digits")):
        readme = next(e for n, e in gist["files"].items() if n.lower() == "readme.md")
        sha1 = hashlib.sha1(fixture_bytes(f"binaries/{binary}.caffemodel")).hexdigest()
        assert f"sha1: {sha1}\n" in readme["content"]


def test_nin_readmes_name_the_stand_in_binary(gh: GitHubEmulator) -> None:
    binary = fixture_bytes("binaries/nin_imagenet.caffemodel")
    for sha in gh.gist_commits(NIN):
        _, _, gist = api(gh, f"/gists/{NIN}/{sha}")
        _, _, readme = fetch(gist["files"]["readme.md"]["raw_url"])
        assert b"caffemodel: nin_imagenet.caffemodel\n" in readme
        assert (
            b"caffemodel_url: http://models.zoopm.invalid/nin/nin_imagenet.caffemodel\n" in readme
        )
        assert f"sha1: {hashlib.sha1(binary).hexdigest()}\n".encode() in readme


def test_api_version_2026_drops_history_and_forks(gh: GitHubEmulator) -> None:
    status, headers, gist = api(gh, f"/gists/{NIN}", {"X-GitHub-Api-Version": "2026-03-10"})
    assert status == 200
    assert headers["x-github-api-version-selected"] == "2026-03-10"
    assert "history" not in gist and "forks" not in gist
    gh.api_version_2026_drops_history = False
    _, _, gist = api(gh, f"/gists/{NIN}", {"X-GitHub-Api-Version": "2026-03-10"})
    assert "history" in gist and "forks" in gist
    status, _, body = api(gh, f"/gists/{NIN}", {"X-GitHub-Api-Version": "v3"})
    assert status == 400
    assert '"v3", is not a supported version' in body["message"]


def test_base64_media_type_and_binary_blobs(gh: GitHubEmulator) -> None:
    blob = bytes(range(256))
    gh.add_gist("b1a2b3c4d5e6f7a8b9c0", "someone", [{"weights.bin": blob, "a.txt": b"hi\n"}])
    _, _, gist = api(gh, "/gists/b1a2b3c4d5e6f7a8b9c0")
    assert gist["files"]["weights.bin"]["encoding"] == "base64"
    assert base64.b64decode(gist["files"]["weights.bin"]["content"]) == blob
    assert gist["files"]["a.txt"]["content"] == "hi\n"
    assert gist["files"]["a.txt"]["encoding"] == "utf-8"
    status, headers, gist = api(
        gh, "/gists/b1a2b3c4d5e6f7a8b9c0", {"Accept": "application/vnd.github.base64+json"}
    )
    assert status == 200
    assert headers["x-github-media-type"] == "github.v3; param=base64; format=json"
    assert gist["files"]["a.txt"]["encoding"] == "base64"
    assert base64.b64decode(gist["files"]["a.txt"]["content"]) == b"hi\n"


def test_truncation_of_big_files_and_many_files(gh: GitHubEmulator) -> None:
    big = (b"0123456789abcde\n" * 70_000)[: 1024 * 1024 + 100]
    huge = b"x" * (10 * 1024 * 1024 + 1)
    gh.add_gist("ab000000000000000001", "someone", [{"big.txt": big, "huge.txt": huge}])
    _, _, gist = api(gh, "/gists/ab000000000000000001")
    entry = gist["files"]["big.txt"]
    assert entry["truncated"] is True
    assert entry["size"] == len(big)
    assert entry["content"].encode() == big[: 1024 * 1024]
    assert gist["truncated"] is False
    status, _, body = fetch(entry["raw_url"])
    assert (status, body) == (200, big)
    status, _, _ = fetch(gist["files"]["huge.txt"]["raw_url"])
    assert status == 403

    many = {f"f{i:03}.txt": f"{i}\n".encode() for i in range(301)}
    gh.add_gist("ab000000000000000002", "someone", [many])
    _, _, gist = api(gh, "/gists/ab000000000000000002")
    assert gist["truncated"] is True
    assert list(gist["files"]) == [f"f{i:03}.txt" for i in range(300)]


def test_hostile_filenames_switch(gh: GitHubEmulator) -> None:
    _, _, gist = api(gh, f"/gists/{NIN}")
    assert sorted(gist["files"]) == ["deploy.prototxt", "readme.md"]
    gh.hostile_filenames = True
    _, _, gist = api(gh, f"/gists/{NIN}")
    assert {"../evil", "a/b", ""} <= set(gist["files"])
    assert set(gist["files"]) == {"deploy.prototxt", "readme.md", *HOSTILE_FILENAMES}
    assert gist["files"]["../evil"]["raw_url"].endswith("/..%2Fevil")
    assert gist["files"]["a/b"]["raw_url"].endswith("/a%2Fb")
    assert gist["files"][".."]["raw_url"].endswith("/%2E%2E")
    for name in HOSTILE_FILENAMES:
        entry = gist["files"][name]
        status, _, body = fetch(entry["raw_url"])
        assert status == 200
        assert git_blob_sha1(body) == raw_blob(entry["raw_url"])
        assert entry["size"] == len(body)


def test_gist_commits_pagination_and_link_header(gh: GitHubEmulator) -> None:
    commits = gh.gist_commits(BUSY)[::-1]  # newest first
    base = f"{gh.api_url}/gists/{BUSY}/commits"
    assert len(commits) == 35

    status, headers, page1 = api(gh, f"/gists/{BUSY}/commits")
    assert status == 200
    assert [c["version"] for c in page1] == commits[:30]
    assert list(page1[0]) == COMMIT_KEYS
    assert page1[0]["url"] == f"{gh.api_url}/gists/{BUSY}/{commits[0]}"
    assert headers["link"] == f'<{base}?page=2>; rel="next", <{base}?page=2>; rel="last"'
    _, headers, page2 = api(gh, f"/gists/{BUSY}/commits?page=2")
    assert [c["version"] for c in page2] == commits[30:]
    assert headers["link"] == f'<{base}?page=1>; rel="prev", <{base}?page=1>; rel="first"'

    _, headers, middle = api(gh, f"/gists/{BUSY}/commits?per_page=10&page=2")
    assert [c["version"] for c in middle] == commits[10:20]
    assert headers["link"] == (
        f'<{base}?per_page=10&page=1>; rel="prev", <{base}?per_page=10&page=3>; rel="next", '
        f'<{base}?per_page=10&page=4>; rel="last", <{base}?per_page=10&page=1>; rel="first"'
    )
    # The client follows rel="next" as given.
    next_url = headers["link"].split(", ")[1].split(";")[0].strip("<>")
    status, _, body = fetch(next_url, JSON_ACCEPT)
    assert [c["version"] for c in json.loads(body)] == commits[20:30]

    _, headers, newest = api(gh, f"/gists/{BUSY}/commits?per_page=1")
    assert [c["version"] for c in newest] == commits[:1]
    assert headers["link"].endswith(f'<{base}?per_page=1&page=35>; rel="last"')
    _, headers, everything = api(gh, f"/gists/{BUSY}/commits?per_page=500")
    assert len(everything) == 35 and "link" not in headers  # per_page is capped at 100
    _, headers, nin = api(gh, f"/gists/{NIN}/commits")
    assert len(nin) == 3 and "link" not in headers
    assert nin[-1]["change_status"] == {
        "total": nin[-1]["change_status"]["additions"],
        "additions": nin[-1]["change_status"]["additions"],
        "deletions": 0,
    }


# --- repository contents ---------------------------------------------------------------------


def test_contents_listing_of_a_model_directory_at_a_commit(gh: GitHubEmulator) -> None:
    path = "models/bvlc_googlenet"
    status, headers, listing = api(gh, f"/repos/BVLC/caffe/contents/{path}?ref={CAFFE}")

    assert status == 200
    assert "etag" in headers
    expected = [
        "deploy.prototxt",
        "quick_solver.prototxt",
        "readme.md",
        "solver.prototxt",
        "train_val.prototxt",
    ]
    assert [entry["name"] for entry in listing] == expected
    for entry in listing:
        assert list(entry) == ENTRY_KEYS
        assert entry["type"] == "file"
        assert entry["path"] == f"{path}/{entry['name']}"
        assert entry["download_url"] == f"{gh.raw_base}/BVLC/caffe/{CAFFE}/{entry['path']}"
        assert entry["url"].startswith(f"{gh.api_url}/repos/BVLC/caffe/contents/{path}/")
        status, _, body = fetch(entry["download_url"])
        assert status == 200
        assert body == fixture_bytes(f"{GOOGLENET}/{entry['name']}")
        assert git_blob_sha1(body) == entry["sha"]
        assert len(body) == entry["size"]

    _, _, readme = api(gh, f"/repos/BVLC/caffe/contents/{path}/readme.md?ref={CAFFE}")
    assert readme["type"] == "file" and readme["encoding"] == "base64"
    text = base64.b64decode(readme["content"]).decode()
    assert "name: BAIR/BVLC GoogleNet Model\n" in text
    assert "caffemodel_url: http://dl.caffe.berkeleyvision.org/bvlc_googlenet.caffemodel\n" in text
    assert "caffe_commit: bc614d1bd91896e3faceaf40b23b72dab47d44f5\n" in text
    binary = fixture_bytes("binaries/bvlc_googlenet.caffemodel")
    assert f"sha1: {hashlib.sha1(binary).hexdigest()}\n" in text

    _, _, models = api(gh, f"/repos/BVLC/caffe/contents/models?ref={CAFFE}")
    assert [(e["name"], e["type"], e["download_url"]) for e in models] == [
        (name, "dir", None)
        for name in (
            "bvlc_alexnet",
            "bvlc_googlenet",
            "bvlc_reference_caffenet",
            "bvlc_reference_rcnn_ilsvrc13",
            "finetune_flickr_style",
        )
    ]


def test_every_bundled_model_readme_matches_its_stand_in_binary() -> None:
    models = FIXTURES / GOOGLENET / ".."
    for readme in sorted(models.glob("*/readme.md")):
        text = readme.read_text(encoding="utf-8")
        binary = FIXTURES / "binaries" / f"{readme.parent.name}.caffemodel"
        assert f"caffemodel: {binary.name}\n" in text
        assert f"sha1: {hashlib.sha1(binary.read_bytes()).hexdigest()}\n" in text
    repo = tomllib.loads((FIXTURES / "repos/BVLC/caffe/repo.toml").read_text(encoding="utf-8"))
    assert repo["history"] == [CAFFE]


def test_contents_errors_are_404_not_found(gh: GitHubEmulator) -> None:
    for path in (
        f"/repos/BVLC/caffe/contents/models/nope?ref={CAFFE}",
        f"/repos/BVLC/caffe/contents/models/bvlc_googlenet?ref={'1' * 40}",
        "/repos/BVLC/nope/contents/models",
    ):
        status, _, body = api(gh, path)
        assert status == 404
        assert body["message"] == "Not Found" and body["status"] == "404"
        assert body["documentation_url"].startswith("https://docs.github.com/")


def test_repository_commits_for_a_path_and_by_ref(gh: GitHubEmulator) -> None:
    newer = "c" * 40
    gh.add_repo_tree(
        "BVLC",
        "caffe",
        newer,
        {
            "models/bvlc_googlenet/readme.md": fixture_bytes(f"{GOOGLENET}/readme.md"),
            "README.md": b"changed only the top readme\n",
        },
    )
    gh.set_repo_history("BVLC", "caffe", [newer, CAFFE])

    status, _, commits = api(gh, "/repos/BVLC/caffe/commits?path=models/bvlc_googlenet&per_page=1")
    assert status == 200
    assert [c["sha"] for c in commits] == [newer]  # the other files went away in `newer`
    _, _, commits = api(gh, "/repos/BVLC/caffe/commits?path=models/bvlc_alexnet")
    assert [c["sha"] for c in commits] == [newer, CAFFE]
    _, _, head = api(gh, "/repos/BVLC/caffe/commits/master")
    assert head["sha"] == newer
    assert head["parents"][0]["sha"] == CAFFE
    _, _, old = api(gh, f"/repos/BVLC/caffe/commits/{CAFFE[:12]}")
    assert old["sha"] == CAFFE and old["parents"] == []
    status, _, body = api(gh, "/repos/BVLC/caffe/commits/deadbeef")
    assert (status, body["message"]) == (422, "No commit found for SHA: deadbeef")

    _, headers, _ = api(gh, "/repos/BVLC/caffe/commits?per_page=1")
    first_link = headers["link"].split(", ")[0]
    assert first_link.startswith(f"<{gh.api_url}/repositories/")
    next_url = first_link.split(";")[0].strip("<>")
    status, _, body = fetch(next_url, JSON_ACCEPT)
    assert [c["sha"] for c in json.loads(body)] == [CAFFE]


# --- conditional requests and rate limits ----------------------------------------------------


def test_if_none_match_gives_a_free_304(gh: GitHubEmulator) -> None:
    _, headers, _ = api(gh, f"/gists/{NIN}")
    etag = headers["etag"]
    assert gh.counted_requests() == 1
    remaining = gh.rate_remaining()

    for condition in (etag, etag.removeprefix("W/"), f'"nope", {etag}', "*"):
        conditional = {**JSON_ACCEPT, "If-None-Match": condition}
        status, head, body = fetch(gh.api_url + f"/gists/{NIN}", conditional)
        assert (status, body) == (304, b"")
        assert head["etag"] == etag
        assert head["x-ratelimit-remaining"] == str(remaining)
    assert gh.counted_requests() == 1
    assert gh.rate_remaining() == remaining
    assert [r.counted for r in gh.requests] == [True, False, False, False, False]

    status, _, _ = api(gh, f"/gists/{NIN}", {"If-None-Match": 'W/"something-else"'})
    assert status == 200
    _, other_accept, _ = api(gh, f"/gists/{NIN}", {"Accept": "application/vnd.github.v3+json"})
    assert other_accept["etag"] != etag  # and with the media type asked for
    _, token_headers, _ = api(gh, f"/gists/{NIN}", {"Authorization": "Bearer t0ken"})
    assert token_headers["etag"] != etag  # the ETag varies with who asks
    assert token_headers["cache-control"] == "private, max-age=60, s-maxage=60"
    assert token_headers["vary"] == "Accept, Authorization, Cookie, X-GitHub-OTP, Accept-Encoding"


def test_primary_rate_limit_counts_and_runs_out(gh: GitHubEmulator) -> None:
    for used in range(1, 61):
        status, headers, _ = api(gh, f"/gists/{NIN}/commits")
        assert status == 200
        assert headers["x-ratelimit-remaining"] == str(60 - used)
        assert headers["x-ratelimit-used"] == str(used)
    status, headers, body = api(gh, f"/gists/{NIN}")
    assert status == 403
    assert body["message"] == PRIMARY_MESSAGE
    assert headers["x-ratelimit-remaining"] == "0"
    assert gh.counted_requests() == 60
    assert gh.rate_remaining() == 0
    # A token has its own, larger budget; /rate_limit is free.
    status, headers, _ = api(gh, f"/gists/{NIN}", {"Authorization": "token abc"})
    assert (status, headers["x-ratelimit-limit"], headers["x-ratelimit-remaining"]) == (
        200,
        "5000",
        "4999",
    )
    status, _, limits = api(gh, "/rate_limit")
    assert status == 200
    assert limits["rate"]["remaining"] == 0 and limits["resources"]["core"]["limit"] == 60
    assert gh.requests[-1].counted is False


def test_exhausted_rate_limit_answer(gh: GitHubEmulator) -> None:
    gh.exhaust_rate_limit()
    before = time.time()
    status, headers, body = api(gh, f"/gists/{NIN}")
    assert status == 403
    assert body == {
        "message": PRIMARY_MESSAGE,
        "documentation_url": (
            "https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting"
        ),
    }
    assert headers["x-ratelimit-remaining"] == "0"
    assert headers["x-ratelimit-limit"] == "60"
    assert headers["x-ratelimit-resource"] == "core"
    assert before < int(headers["x-ratelimit-reset"]) <= before + 3600
    assert gh.counted_requests() == 0

    status, _, body = api(gh, f"/gists/{NIN}", {"Authorization": "Bearer abc"})
    assert status == 403
    assert body["message"].startswith("API rate limit exceeded for user ID ")
    assert gh.rate_remaining("abc") == 0

    gh.exhaust_rate_limit(status=429)
    status, headers, _ = api(gh, f"/repos/BVLC/caffe/contents/models?ref={CAFFE}")
    assert (status, headers["x-ratelimit-remaining"]) == (429, "0")
    gh.restore_rate_limit()
    assert api(gh, f"/gists/{NIN}")[0] == 200


def test_secondary_rate_limit_has_retry_after(gh: GitHubEmulator) -> None:
    gh.secondary_limit(times=2, status=429, retry_after=7)
    for _ in range(2):
        status, headers, body = api(gh, f"/gists/{NIN}")
        assert status == 429
        assert headers["retry-after"] == "7"
        assert headers["x-ratelimit-remaining"] != "0"
        assert body["message"].startswith("You have exceeded a secondary rate limit.")
    assert api(gh, f"/gists/{NIN}")[0] == 200
    assert [r.status for r in gh.requests] == [429, 429, 200]
    assert gh.counted_requests() == 1


def test_tokens_bearer_or_token_scheme_and_bad_credentials(gh: GitHubEmulator) -> None:
    assert api(gh, f"/gists/{NIN}", {"Authorization": "BEARER anything"})[0] == 200
    gh.allow_token("good")
    for header in ("Bearer good", "token good", "Token good"):
        status, headers, _ = api(gh, f"/gists/{NIN}", {"Authorization": header})
        assert (status, headers["x-ratelimit-limit"]) == (200, "5000")
    assert gh.rate_remaining("good") == 4997
    status, _, body = api(gh, f"/gists/{NIN}", {"Authorization": "Bearer bad"})
    assert status == 401
    assert body == {
        "message": "Bad credentials",
        "documentation_url": "https://docs.github.com/rest",
        "status": "401",
    }


def test_raw_requests_are_logged_but_never_counted(gh: GitHubEmulator) -> None:
    _, _, gist = api(gh, f"/gists/{NIN}")
    gh.clear_log()
    url = gist["files"]["readme.md"]["raw_url"]
    assert fetch(url)[0] == 200
    assert fetch(url, {"Authorization": "Bearer leaked"})[0] == 200
    assert fetch(f"{gh.raw_base}/mavenlin/{NIN}/raw/{'0' * 40}/readme.md")[:3:2] == (
        404,
        b"404: Not Found",
    )
    log = gh.requests
    assert [(r.server, r.status, r.counted) for r in log] == [
        ("raw", 200, False),
        ("raw", 200, False),
        ("raw", 404, False),
    ]
    assert "authorization" not in log[0].headers
    assert log[1].headers["authorization"] == "Bearer leaked"
    assert gh.counted_requests() == 0


def test_request_log_records_query_headers_and_missing_user_agent(gh: GitHubEmulator) -> None:
    address = urllib.parse.urlsplit(gh.api_url)
    assert address.hostname is not None
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=5)
    try:
        connection.request("GET", f"/gists/{BUSY}/commits?per_page=2&page=3")
        response = connection.getresponse()
        assert response.status == 200  # a missing User-Agent is logged, not rejected
        response.read()
    finally:
        connection.close()
    (entry,) = gh.requests
    assert entry == ApiRequest(
        server="api",
        method="GET",
        path=f"/gists/{BUSY}/commits",
        query={"per_page": "2", "page": "3"},
        headers=entry.headers,
        status=200,
        counted=True,
    )
    assert "user-agent" not in entry.headers
    assert all(name == name.lower() for name in entry.headers)


# --- faults and GitHub Enterprise ------------------------------------------------------------


def test_fail_api_and_corrupt_raw(gh: GitHubEmulator) -> None:
    gh.fail_api(f"/gists/{NIN}", status=502, times=1)
    assert api(gh, f"/gists/{NIN}")[0] == 502
    status, _, gist = api(gh, f"/gists/{NIN}")
    assert status == 200

    url = gist["files"]["readme.md"]["raw_url"]
    good = fetch(url)[2]
    gh.corrupt_raw("/readme.md")
    status, _, bad = fetch(url)
    assert status == 200
    assert len(bad) == len(good) and bad != good
    assert git_blob_sha1(bad) != raw_blob(url)
    assert fetch(url)[2] == good


def test_enterprise_prefix() -> None:
    with GitHubEmulator(api_prefix="/api/v3") as gh:
        gh.load_fixtures(FIXTURES)
        assert gh.api_url.endswith("/api/v3")
        status, _, gist = api(gh, f"/gists/{NIN}")
        assert status == 200
        assert gist["url"] == f"{gh.api_url}/gists/{NIN}"
        assert gist["history"][0]["url"].startswith(gh.api_url + "/gists/")
        _, headers, _ = api(gh, f"/gists/{BUSY}/commits")
        assert headers["link"].startswith(f"<{gh.api_url}/gists/{BUSY}/commits?page=2>")
        _, _, listing = api(gh, f"/repos/BVLC/caffe/contents/models/bvlc_googlenet?ref={CAFFE}")
        assert len(listing) == 5
        assert api(gh, "/rate_limit")[0] == 200
        root = gh.api_url.removesuffix("/api/v3")
        status, _, _ = fetch(f"{root}/gists/{NIN}", JSON_ACCEPT)
        assert status == 404
        assert gh.requests[0].path == f"/api/v3/gists/{NIN}"
        assert (gh.requests[-1].path, gh.requests[-1].status) == (f"/gists/{NIN}", 404)


# --- gist writes: create, update (PATCH and the POST alias), delete ----------------------------

OWNER_TOKEN = "ghp_publisherToken"
MAVENLIN_TOKEN = "ghp_mavenlinToken"
DOC_CREATE = "https://docs.github.com/rest/gists/gists#create-a-gist"
DOC_UPDATE = "https://docs.github.com/rest/gists/gists#update-a-gist"


@pytest.fixture
def writer(gh: GitHubEmulator) -> GitHubEmulator:
    gh.allow_token(OWNER_TOKEN, login="publisher")
    gh.allow_token(MAVENLIN_TOKEN, login="mavenlin")
    return gh


def send(
    gh: GitHubEmulator,
    method: str,
    path: str,
    body: Any = None,
    *,
    token: str | None = OWNER_TOKEN,
    raw: bytes | None = None,
) -> tuple[int, dict[str, str], Any]:
    """A write with urllib: the JSON of body (or raw bytes as they are); status, headers, JSON."""
    data = raw if raw is not None else json.dumps(body).encode()
    headers = {**JSON_ACCEPT, "Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"token {token}"
    request = urllib.request.Request(gh.api_url + path, data, headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            status, head, payload = (
                response.status,
                _lower(response.headers.items()),
                response.read(),
            )
    except urllib.error.HTTPError as error:
        with error:
            status, head, payload = error.code, _lower(error.headers.items()), error.read()
    return status, head, json.loads(payload) if payload else None


def files_of(gist: dict[str, Any]) -> dict[str, bytes]:
    """Every file of a gist answer, fetched from its raw_url (whose blob id must match)."""
    result = {}
    for name, entry in gist["files"].items():
        status, _, data = fetch(entry["raw_url"])
        assert status == 200
        assert git_blob_sha1(data) == raw_blob(entry["raw_url"])
        result[name] = data
    return result


def test_create_answers_201_with_location_and_one_history_entry(writer: GitHubEmulator) -> None:
    files = {"readme.md": {"content": "---\nname: x\n---\n"}, "deploy.prototxt": {"content": "a"}}
    status, headers, gist = send(writer, "POST", "/gists", {"files": files})

    assert status == 201
    assert headers["location"] == f"{writer.api_url}/gists/{gist['id']}"
    assert list(gist) == GIST_KEYS
    assert re.fullmatch(r"[0-9a-f]{32}", gist["id"])
    assert gist["public"] is False  # secret unless asked
    assert gist["description"] is None  # omitted, so null
    assert gist["owner"]["login"] == "publisher"
    assert gist["created_at"] == gist["updated_at"]
    assert [list(h) for h in gist["history"]] == [COMMIT_KEYS]
    assert gist["history"][0]["change_status"] == {"total": 4, "additions": 4, "deletions": 0}
    assert files_of(gist) == {"readme.md": b"---\nname: x\n---\n", "deploy.prototxt": b"a"}
    assert gist["files"]["deploy.prototxt"]["content"] == "a"
    status, _, again = api(writer, f"/gists/{gist['id']}")
    assert status == 200
    assert again["history"] == gist["history"]
    assert writer.gist_commits(gist["id"]) == [gist["history"][0]["version"]]


def test_create_takes_public_as_a_boolean_or_a_string(writer: GitHubEmulator) -> None:
    file = {"a.txt": {"content": "x"}}
    for public, expected in ((True, True), ("true", True), ("false", False), (False, False)):
        status, _, gist = send(writer, "POST", "/gists", {"public": public, "files": file})
        assert (status, gist["public"]) == (201, expected)
    status, _, body = send(writer, "POST", "/gists", {"public": "yes", "files": file})
    assert status == 422
    assert body["message"].startswith("Invalid request.")


def test_created_ids_and_commits_are_deterministic() -> None:
    made = []
    for _ in range(2):
        with GitHubEmulator() as gh:
            gh.allow_token(OWNER_TOKEN, login="publisher")
            _, _, first = send(gh, "POST", "/gists", {"files": {"a.txt": {"content": "x"}}})
            _, _, second = send(
                gh, "PATCH", f"/gists/{first['id']}", {"files": {"a.txt": {"content": "y"}}}
            )
            made.append((first["id"], [h["version"] for h in second["history"]]))
    assert made[0] == made[1]
    assert len(made[0][1]) == 2


def test_update_modifies_renames_adds_deletes_and_carries_the_rest(
    writer: GitHubEmulator,
) -> None:
    start = {
        "keep.txt": {"content": "kept\n"},
        "edit.txt": {"content": "old\n"},
        "move.txt": {"content": "moved\n"},
        "gone.txt": {"content": "gone\n"},
        "empty-object.txt": {"content": "also gone\n"},
    }
    _, _, gist = send(writer, "POST", "/gists", {"description": "d", "files": start})
    first = gist["history"][0]["version"]
    change = {
        "edit.txt": {"content": "new\n"},
        "move.txt": {"filename": "moved.txt"},
        "added.txt": {"content": "added\n"},
        "gone.txt": None,
        "empty-object.txt": {},
    }
    status, _, after = send(writer, "PATCH", f"/gists/{gist['id']}", {"files": change})

    assert status == 200
    assert files_of(after) == {
        "keep.txt": b"kept\n",
        "edit.txt": b"new\n",
        "moved.txt": b"moved\n",
        "added.txt": b"added\n",
    }
    assert [h["version"] for h in after["history"]][1:] == [first]
    assert after["history"][0]["change_status"] == {"total": 7, "additions": 3, "deletions": 4}
    assert raw_blob(after["files"]["moved.txt"]["raw_url"]) == raw_blob(
        gist["files"]["move.txt"]["raw_url"]
    )
    assert after["description"] == "d"
    _, _, old = api(writer, f"/gists/{gist['id']}/{first}")
    assert files_of(old)["gone.txt"] == b"gone\n"  # the old revision is still served


def test_post_to_a_gist_is_an_update_that_ignores_public(writer: GitHubEmulator) -> None:
    _, _, gist = send(writer, "POST", "/gists", {"files": {"a.txt": {"content": "x"}}})
    body = {"public": True, "files": {"a.txt": {"content": "y"}}}
    status, _, after = send(writer, "POST", f"/gists/{gist['id']}", body)

    assert status == 200
    assert after["public"] is False
    assert files_of(after) == {"a.txt": b"y"}
    assert len(after["history"]) == 2


def test_description_only_and_unchanged_content_make_no_commit(writer: GitHubEmulator) -> None:
    before = writer.gist_commits(NIN)
    _, _, gist = api(writer, f"/gists/{NIN}")
    status, _, after = send(
        writer, "PATCH", f"/gists/{NIN}", {"description": "renamed"}, token=MAVENLIN_TOKEN
    )
    assert status == 200
    assert after["description"] == "renamed"
    assert after["history"] == gist["history"]
    assert after["updated_at"] > gist["updated_at"]
    same = {"readme.md": {"content": gist["files"]["readme.md"]["content"]}}
    status, _, after = send(writer, "PATCH", f"/gists/{NIN}", {"files": same}, token=MAVENLIN_TOKEN)
    assert status == 200
    assert writer.gist_commits(NIN) == before

    writer.noop_patch_422 = True
    status, _, body = send(writer, "PATCH", f"/gists/{NIN}", {"files": same}, token=MAVENLIN_TOKEN)
    assert (status, body["errors"]) == (
        422,
        [{"resource": "Gist", "code": "missing_field", "field": "files"}],
    )


def test_delete_answers_204_and_the_gist_is_gone(writer: GitHubEmulator) -> None:
    _, _, gist = send(writer, "POST", "/gists", {"files": {"a.txt": {"content": "x"}}})
    raw_url = gist["files"]["a.txt"]["raw_url"]
    status, headers, body = send(writer, "DELETE", f"/gists/{gist['id']}", raw=b"")

    assert (status, body) == (204, None)
    assert "content-type" not in headers
    assert api(writer, f"/gists/{gist['id']}")[0] == 404
    assert fetch(raw_url)[0] == 404


def test_writes_need_a_token_github_accepts_with_the_gist_scope(writer: GitHubEmulator) -> None:
    writer.allow_token("ghp_noScope", login="publisher", scopes=("repo",))
    create = {"files": {"a.txt": {"content": "x"}}}
    status, _, body = send(writer, "POST", "/gists", create, token=None)
    assert (status, body) == (
        401,
        {"message": "Requires authentication", "documentation_url": DOC_CREATE, "status": "401"},
    )
    status, _, body = send(writer, "POST", "/gists", create, token="ghp_unknown")
    assert (status, body["message"], body["status"]) == (401, "Bad credentials", "401")
    status, _, body = send(writer, "POST", "/gists", create, token="ghp_noScope")
    assert (status, body) == (
        404,
        {"message": "Not Found", "documentation_url": DOC_CREATE, "status": "404"},
    )
    status, headers, _ = api(writer, f"/gists/{NIN}", {"Authorization": "token ghp_noScope"})
    assert (status, headers["x-oauth-scopes"]) == (200, "repo")  # reading needs no scope
    edit = {"files": {"readme.md": {"content": "mine now"}}}
    status, _, body = send(writer, "PATCH", f"/gists/{NIN}", edit)  # mavenlin's gist
    assert (status, body["message"], body["documentation_url"]) == (404, "Not Found", DOC_UPDATE)
    assert send(writer, "DELETE", f"/gists/{NIN}", raw=b"")[0] == 404
    assert send(writer, "PATCH", "/gists/0000000000deadbeef00", edit)[0] == 404
    assert len(writer.gist_commits(NIN)) == 3


def test_an_unregistered_token_cannot_write_even_when_none_is_registered() -> None:
    with GitHubEmulator() as gh:
        status, _, body = send(gh, "POST", "/gists", {"files": {"a": {"content": "x"}}})
        assert (status, body["message"]) == (401, "Bad credentials")


def test_bodies_that_are_not_json_objects_are_400(writer: GitHubEmulator) -> None:
    for raw, message in (
        (b"{not json", "Problems parsing JSON"),
        (b'{"files": {"a.txt": {"content": "\xff\xfe"}}}', "Problems parsing JSON"),
        (b'{"files": {"a.txt": {"content": "\\ud800"}}}', "Problems parsing JSON"),
        (b"[1, 2]", "Body should be a JSON object"),
    ):
        status, _, body = send(writer, "POST", "/gists", raw=raw)
        assert (status, body) == (
            400,
            {"message": message, "documentation_url": DOC_CREATE, "status": "400"},
        )


@pytest.mark.parametrize(
    ("files", "code"),
    [
        (None, "missing_field"),
        ({}, "missing_field"),
        ({"a.txt": {"content": "x"}, "b.txt": {"content": ""}}, "missing_field"),
        ({"a.txt": {"content": " \n\t"}}, "missing_field"),
        ({"a.txt": {}}, "missing_field"),
        ({"sub/a.txt": {"content": "x"}}, "invalid"),
    ],
)
def test_create_validation_failed(
    writer: GitHubEmulator, files: dict[str, Any] | None, code: str
) -> None:
    body: dict[str, Any] = {"description": "x"}
    if files is not None:
        body["files"] = files
    status, _, answer = send(writer, "POST", "/gists", body)
    assert (status, answer) == (
        422,
        {
            "message": "Validation Failed",
            "errors": [{"resource": "Gist", "code": code, "field": "files"}],
            "documentation_url": DOC_CREATE,
            "status": "422",
        },
    )


def test_content_null_is_the_schema_error(writer: GitHubEmulator) -> None:
    status, _, body = send(writer, "POST", "/gists", {"files": {"a.txt": {"content": None}}})
    assert (status, body["message"]) == (
        422,
        "Invalid request.\n\nFor 'properties/content', nil is not a string.",
    )


@pytest.mark.parametrize(
    ("files", "code"),
    [
        ({"readme.md": None, "deploy.prototxt": None}, "missing_field"),  # the last file
        ({"nothing.txt": None}, "missing_field"),
        ({"nothing.txt": {"filename": "x.txt"}}, "missing_field"),
        ({"readme.md": {"content": ""}}, "missing_field"),
        ({"readme.md": {"filename": "a/readme.md"}}, "invalid"),
        ({"readme.md": {"filename": "deploy.prototxt"}}, "already_exists"),
    ],
)
def test_update_validation_failed(writer: GitHubEmulator, files: dict[str, Any], code: str) -> None:
    status, _, body = send(writer, "PATCH", f"/gists/{NIN}", {"files": files}, token=MAVENLIN_TOKEN)
    assert (status, body["errors"], body["documentation_url"]) == (
        422,
        [{"resource": "Gist", "code": code, "field": "files"}],
        DOC_UPDATE,
    )
    assert len(writer.gist_commits(NIN)) == 3


def test_fail_api_for_one_method_only(writer: GitHubEmulator) -> None:
    writer.fail_api(f"/gists/{NIN}", status=502, method="PATCH")
    assert api(writer, f"/gists/{NIN}")[0] == 200
    edit = {"files": {"readme.md": {"content": "x"}}}
    assert send(writer, "PATCH", f"/gists/{NIN}", edit, token=MAVENLIN_TOKEN)[0] == 502
    assert send(writer, "PATCH", f"/gists/{NIN}", edit, token=MAVENLIN_TOKEN)[0] == 200
