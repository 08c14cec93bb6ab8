"""Specification of the test file server: real HTTP over loopback, no mocks."""

from __future__ import annotations

import email.utils
import hashlib
import http.client
import os
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.fileserver import FileServer, RequestRecord

DATA = bytes(range(256)) * 4 + b"tail"


@pytest.fixture
def server() -> Iterator[FileServer]:
    with FileServer() as running:
        yield running


def connect(server: FileServer) -> http.client.HTTPConnection:
    address = urllib.parse.urlsplit(server.base_url)
    assert address.hostname is not None
    return http.client.HTTPConnection(address.hostname, address.port, timeout=5)


def fetch(
    server: FileServer, path: str, method: str = "GET", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One request on a fresh connection: status, headers (lower-cased names), body."""
    conn = connect(server)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        body = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body
    finally:
        conn.close()


def statuses(server: FileServer) -> list[int]:
    return [record.status for record in server.requests]


def test_serves_bytes_with_length_validators_and_type(server: FileServer) -> None:
    url = server.add_bytes("/models/a.caffemodel", DATA, content_type="application/x-caffe")

    with urllib.request.urlopen(url, timeout=5) as response:
        body = response.read()
        headers = response.headers

    assert url == server.base_url + "/models/a.caffemodel"
    assert body == DATA
    assert headers["Content-Length"] == str(len(DATA))
    assert headers["Content-Type"] == "application/x-caffe"
    assert headers["Accept-Ranges"] == "bytes"
    assert headers["ETag"] == '"' + hashlib.sha256(DATA).hexdigest()[:16] + '"'
    assert email.utils.parsedate_to_datetime(headers["Last-Modified"]) is not None


def test_validators_are_stable_across_requests(server: FileServer) -> None:
    server.add_bytes("/a.bin", DATA)
    _, first, _ = fetch(server, "/a.bin")
    _, second, _ = fetch(server, "/a.bin")
    assert (first["etag"], first["last-modified"]) == (second["etag"], second["last-modified"])


def test_base_url_and_url(server: FileServer) -> None:
    assert server.base_url.startswith("http://127.0.0.1:")
    assert int(server.base_url.rsplit(":", 1)[1]) > 0
    assert server.url("/a/b.bin") == server.base_url + "/a/b.bin"


def test_head_has_the_get_headers_and_no_body(server: FileServer) -> None:
    server.add_bytes("/a.bin", DATA)
    status, headers, body = fetch(server, "/a.bin", method="HEAD")
    assert status == 200
    assert body == b""
    assert headers["content-length"] == str(len(DATA))
    assert headers["etag"].startswith('"')


def test_unknown_path_is_404_and_logged(server: FileServer) -> None:
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(server.url("/missing.bin"), timeout=5)
    caught.value.close()
    assert caught.value.code == 404
    assert statuses(server) == [404]


def test_other_methods_are_405(server: FileServer) -> None:
    server.add_bytes("/a.bin", DATA)
    status, headers, _ = fetch(server, "/a.bin", method="POST")
    assert status == 405
    assert headers["allow"] == "GET, HEAD"
    assert server.requests[0].method == "POST"
    assert server.requests[0].status == 405


def test_connection_is_kept_alive_between_requests(server: FileServer) -> None:
    server.add_bytes("/a.bin", DATA)
    conn = connect(server)
    try:
        for _ in range(3):
            conn.request("GET", "/a.bin")
            assert conn.getresponse().read() == DATA
    finally:
        conn.close()
    assert server.count("/a.bin") == 3


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=2-5", 2, 5),
        ("bytes=1000-", 1000, len(DATA) - 1),
        ("bytes=-3", len(DATA) - 3, len(DATA) - 1),
        ("bytes=-100000", 0, len(DATA) - 1),
        ("bytes=10-999999", 10, len(DATA) - 1),
        ("bytes=0-0", 0, 0),
    ],
)
def test_single_byte_range_is_206(server: FileServer, header: str, first: int, last: int) -> None:
    server.add_bytes("/a.bin", DATA)
    status, headers, body = fetch(server, "/a.bin", headers={"Range": header})
    assert status == 206
    assert body == DATA[first : last + 1]
    assert headers["content-range"] == f"bytes {first}-{last}/{len(DATA)}"
    assert headers["content-length"] == str(last - first + 1)


@pytest.mark.parametrize("header", ["bytes=5000-", "bytes=1028-1030", "bytes=-0"])
def test_unsatisfiable_range_is_416(server: FileServer, header: str) -> None:
    server.add_bytes("/a.bin", DATA)
    status, headers, body = fetch(server, "/a.bin", headers={"Range": header})
    assert status == 416
    assert headers["content-range"] == f"bytes */{len(DATA)}"
    assert body == b""


@pytest.mark.parametrize("header", ["bytes=0-1,5-6", "bytes=5-2", "items=0-1", "bytes=x-"])
def test_multiple_or_invalid_ranges_get_the_full_body(server: FileServer, header: str) -> None:
    server.add_bytes("/a.bin", DATA)
    status, headers, body = fetch(server, "/a.bin", headers={"Range": header})
    assert status == 200
    assert body == DATA
    assert "content-range" not in headers


def test_if_range_with_current_validators_honours_range(server: FileServer) -> None:
    server.add_bytes("/a.bin", DATA)
    _, headers, _ = fetch(server, "/a.bin", method="HEAD")
    for validator in (headers["etag"], headers["last-modified"]):
        status, _, body = fetch(
            server, "/a.bin", headers={"Range": "bytes=4-", "If-Range": validator}
        )
        assert (status, body) == (206, DATA[4:])


def test_if_range_with_stale_validators_sends_everything(server: FileServer) -> None:
    server.add_bytes("/a.bin", DATA)
    _, headers, _ = fetch(server, "/a.bin", method="HEAD")
    stale = [
        '"0000000000000000"',
        "W/" + headers["etag"],
        email.utils.formatdate(time.time() - 86400, usegmt=True),
        "not a date",
    ]
    for validator in stale:
        status, _, body = fetch(
            server, "/a.bin", headers={"Range": "bytes=4-", "If-Range": validator}
        )
        assert (status, body) == (200, DATA), validator


def test_fail_answers_status_and_headers_then_recovers(server: FileServer) -> None:
    server.add_bytes("/a.bin", DATA)
    server.fail("/a.bin", status=503, times=2, headers={"Retry-After": "1"})

    for _ in range(2):
        status, headers, body = fetch(server, "/a.bin")
        assert status == 503
        assert headers["retry-after"] == "1"
        assert headers["content-length"] == str(len(body))
        assert body
    assert fetch(server, "/a.bin")[0] == 200
    assert statuses(server) == [503, 503, 200]


def test_fail_seen_through_urllib(server: FileServer) -> None:
    url = server.add_bytes("/a.bin", DATA)
    server.fail("/a.bin")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(url, timeout=5)
    caught.value.close()
    assert caught.value.code == 500


def test_fault_on_unregistered_path_then_404(server: FileServer) -> None:
    server.fail("/nowhere", status=429)
    assert fetch(server, "/nowhere")[0] == 429
    assert fetch(server, "/nowhere")[0] == 404


def test_head_does_not_consume_faults(server: FileServer) -> None:
    server.add_bytes("/a.bin", DATA)
    server.fail("/a.bin", status=502)
    assert fetch(server, "/a.bin", method="HEAD")[0] == 200
    assert fetch(server, "/a.bin")[0] == 502
    assert fetch(server, "/a.bin")[0] == 200


def test_faults_queue_in_the_order_added(server: FileServer) -> None:
    server.add_bytes("/a.bin", DATA)
    server.fail("/a.bin", status=500)
    server.corrupt("/a.bin")
    server.html("/a.bin")
    assert fetch(server, "/a.bin")[0] == 500
    assert fetch(server, "/a.bin")[2] != DATA
    assert fetch(server, "/a.bin")[1]["content-type"].startswith("text/html")
    assert fetch(server, "/a.bin")[2] == DATA


def test_faults_are_per_path(server: FileServer) -> None:
    server.add_bytes("/a.bin", DATA)
    server.add_bytes("/b.bin", DATA)
    server.fail("/a.bin")
    assert fetch(server, "/b.bin")[0] == 200
    assert fetch(server, "/a.bin")[0] == 500


def test_cut_sends_full_length_then_a_short_body(server: FileServer) -> None:
    server.add_bytes("/a.bin", DATA)
    server.cut("/a.bin", after_bytes=100)

    conn = connect(server)
    try:
        conn.request("GET", "/a.bin")
        response = conn.getresponse()
        assert response.status == 200
        assert response.getheader("Content-Length") == str(len(DATA))
        with pytest.raises(http.client.IncompleteRead) as caught:
            response.read()
    finally:
        conn.close()
    assert caught.value.partial == DATA[:100]
    assert fetch(server, "/a.bin")[2] == DATA


def test_cut_applies_to_a_range_response(server: FileServer) -> None:
    server.add_bytes("/a.bin", DATA)
    server.cut("/a.bin", after_bytes=3)
    conn = connect(server)
    try:
        conn.request("GET", "/a.bin", headers={"Range": "bytes=10-"})
        response = conn.getresponse()
        assert response.status == 206
        with pytest.raises(http.client.IncompleteRead) as caught:
            response.read()
    finally:
        conn.close()
    assert caught.value.partial == DATA[10:13]


def test_cut_through_urllib_is_a_short_read(server: FileServer) -> None:
    url = server.add_bytes("/a.bin", DATA)
    server.cut("/a.bin", after_bytes=0)
    with (
        urllib.request.urlopen(url, timeout=5) as response,
        pytest.raises(http.client.IncompleteRead),
    ):
        response.read()


def test_corrupt_keeps_the_length_but_changes_every_byte(server: FileServer) -> None:
    server.add_bytes("/a.bin", DATA)
    server.corrupt("/a.bin", times=2)
    for _ in range(2):
        status, headers, body = fetch(server, "/a.bin")
        assert status == 200
        assert len(body) == len(DATA)
        assert all(got != want for got, want in zip(body, DATA, strict=True))
        assert headers["etag"] == '"' + hashlib.sha256(DATA).hexdigest()[:16] + '"'
    assert fetch(server, "/a.bin")[2] == DATA


def test_html_answers_a_login_page_with_200(server: FileServer) -> None:
    server.add_bytes("/a.bin", DATA)
    server.html("/a.bin")
    status, headers, body = fetch(server, "/a.bin")
    assert status == 200
    assert headers["content-type"].startswith("text/html")
    assert body.startswith(b"<!DOCTYPE html><html>")
    assert b"login" in body.lower()
    assert fetch(server, "/a.bin")[2] == DATA


def test_slow_delays_the_answer_once(server: FileServer) -> None:
    server.add_bytes("/a.bin", DATA)
    server.slow("/a.bin", delay_seconds=0.3)
    started = time.monotonic()
    assert fetch(server, "/a.bin")[2] == DATA
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    fetch(server, "/a.bin")
    assert time.monotonic() - started < 0.3


def test_slow_beyond_the_client_timeout_times_out(server: FileServer) -> None:
    url = server.add_bytes("/a.bin", DATA)
    server.slow("/a.bin", delay_seconds=2)
    with pytest.raises((TimeoutError, urllib.error.URLError)):
        urllib.request.urlopen(url, timeout=0.2)


def test_redirect_is_followed_by_urllib(server: FileServer) -> None:
    target = server.add_bytes("/real/a.bin", DATA)
    url = server.redirect("/a.bin", target)
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.read() == DATA
        assert response.url == target
    assert [(r.path, r.status) for r in server.requests] == [("/a.bin", 302), ("/real/a.bin", 200)]


def test_redirect_status_and_location(server: FileServer) -> None:
    server.redirect("/a.bin", "https://elsewhere.example/a.bin", status=301)
    status, headers, body = fetch(server, "/a.bin")
    assert status == 301
    assert headers["location"] == "https://elsewhere.example/a.bin"
    assert headers["content-length"] == "0"
    assert body == b""


def test_add_file_streams_a_file_from_disk(server: FileServer, tmp_path: Path) -> None:
    content = os.urandom(3 * 1024 * 1024 + 123)
    model = tmp_path / "model.caffemodel"
    model.write_bytes(content)
    url = server.add_file("/m.caffemodel", model)

    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.headers["Content-Length"] == str(len(content))
        assert response.headers["ETag"].startswith('"')
        assert response.read() == content
    status, _, body = fetch(server, "/m.caffemodel", headers={"Range": "bytes=70000-200000"})
    assert (status, body) == (206, content[70000:200001])


def test_add_file_serves_a_1gib_file_without_reading_it(server: FileServer, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    with big.open("wb") as stream:
        stream.truncate(1 << 30)  # sparse: no disk space, and nothing to read up front
        stream.seek((1 << 30) - 4)
        stream.write(b"END!")
    server.add_file("/big.bin", big)

    status, headers, _ = fetch(server, "/big.bin", method="HEAD")
    assert (status, headers["content-length"]) == (200, str(1 << 30))
    status, _, body = fetch(server, "/big.bin", headers={"Range": "bytes=-8"})
    assert (status, body) == (206, b"\0\0\0\0END!")

    # Abandon a full download early: the server must shrug and keep serving.
    conn = connect(server)
    conn.request("GET", "/big.bin")
    response = conn.getresponse()
    assert len(response.read(256 * 1024)) == 256 * 1024
    conn.close()
    assert fetch(server, "/big.bin", headers={"Range": "bytes=0-1"})[0] == 206


def test_request_log_records_what_was_asked_and_answered(server: FileServer) -> None:
    server.add_bytes("/a.bin", DATA)
    fetch(server, "/a.bin?token=abc&x=1", headers={"X-Test": "yes", "Range": "bytes=0-1"})
    fetch(server, "/a.bin", method="HEAD")
    fetch(server, "/nope")

    records = server.requests
    assert records[0] == RequestRecord(
        method="GET",
        path="/a.bin",
        query="token=abc&x=1",
        headers=records[0].headers,
        status=206,
    )
    assert records[0].headers["x-test"] == "yes"
    assert records[0].headers["range"] == "bytes=0-1"
    assert records[0].headers["host"].startswith("127.0.0.1:")
    assert (records[1].method, records[1].query, records[1].status) == ("HEAD", "", 200)
    assert (records[2].path, records[2].status) == ("/nope", 404)
    assert server.count() == 3
    assert server.count("/a.bin") == 2
    assert server.count("/other") == 0

    records.clear()  # a copy: the server's log is untouched
    assert server.count() == 3
    server.clear_log()
    assert server.requests == []
    assert server.count() == 0


def test_nothing_reaches_stderr(server: FileServer, capfd: pytest.CaptureFixture[str]) -> None:
    server.add_bytes("/a.bin", DATA * 200)
    fetch(server, "/a.bin")
    fetch(server, "/missing")
    conn = connect(server)
    conn.request("GET", "/a.bin")
    conn.close()  # hang up without reading the answer
    fetch(server, "/a.bin")
    captured = capfd.readouterr()
    assert captured.err == ""


def test_stop_is_idempotent_and_frees_the_port() -> None:
    server = FileServer().start()
    server.add_bytes("/a.bin", DATA)
    port = int(server.base_url.rsplit(":", 1)[1])
    assert fetch(server, "/a.bin")[0] == 200

    server.stop()
    server.stop()

    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))
    with pytest.raises(RuntimeError):
        _ = server.base_url


def test_stop_does_not_wait_for_idle_keep_alive_or_slow_requests() -> None:
    with FileServer() as server:
        server.add_bytes("/a.bin", DATA)
        idle = connect(server)
        idle.request("GET", "/a.bin")
        idle.getresponse().read()
        server.slow("/a.bin", delay_seconds=30)
        sleeper = connect(server)
        sleeper.request("GET", "/a.bin")
        started = time.monotonic()
    assert time.monotonic() - started < 2
    idle.close()
    sleeper.close()


def test_misuse_is_rejected() -> None:
    server = FileServer()
    with pytest.raises(RuntimeError):
        _ = server.base_url
    with server:
        with pytest.raises(RuntimeError):
            server.start()
        with pytest.raises(ValueError, match="must start with"):
            server.add_bytes("a.bin", DATA)
        with pytest.raises(ValueError, match="times"):
            server.fail("/a.bin", times=0)
        with pytest.raises(ValueError, match="3xx"):
            server.redirect("/a.bin", "/b.bin", status=200)
