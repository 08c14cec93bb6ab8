"""The plumbing the test HTTP servers share: quiet servers on 127.0.0.1 that track connections."""

from __future__ import annotations

import socket
import socketserver
import threading
from contextlib import suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_HANDLER_JOIN_SECONDS = 2.0


class Connections:
    """The open connections of a server, each with the handler thread serving it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[socket.socket, threading.Thread] = {}

    def opened(self, connection: socket.socket) -> None:
        with self._lock:
            self._open[connection] = threading.current_thread()

    def closed(self, connection: socket.socket) -> None:
        with self._lock:
            self._open.pop(connection, None)

    def disconnect_all(self) -> None:
        """Shut down every open connection, then wait (a little) for their handler threads."""
        # Keep-alive clients would otherwise pin handler threads (and the port) after stop().
        with self._lock:
            # Under the lock, so a handler cannot close (and the OS reuse) the fd meanwhile.
            for connection in self._open:
                with suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
            threads = list(self._open.values())
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(_HANDLER_JOIN_SECONDS)


class LoopbackServer(ThreadingHTTPServer):
    """A threading HTTP server on 127.0.0.1:<free port> whose handlers report to `connections`."""

    daemon_threads = True

    def __init__(self, handler: type[QuietHandler]) -> None:
        self.connections = Connections()
        self._thread: threading.Thread | None = None
        super().__init__(("127.0.0.1", 0), handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls getfqdn(), which can stall on a reverse DNS lookup.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def serve_in_thread(self, name: str) -> None:
        """Serve from a daemon thread called `name` until stop()."""
        # A short poll keeps stop() (which waits for the next poll) fast across many tests.
        thread = threading.Thread(
            target=self.serve_forever,
            kwargs={"poll_interval": 0.01},
            name=name,
            daemon=True,
        )
        thread.start()
        self._thread = thread

    def stop(self) -> None:
        """Stop serving, close the listening socket, then every connection still open."""
        thread = self._thread
        if thread is not None:
            # shutdown() waits for serve_forever to return, so it must have been started.
            self.shutdown()
        self.server_close()
        if thread is not None:
            thread.join()
        self.connections.disconnect_all()


class QuietHandler(BaseHTTPRequestHandler):
    """An HTTP/1.1 keep-alive handler that logs nothing and registers its connection."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; Nagle plus delayed ACK would stall each one.
    disable_nagle_algorithm = True
    server: LoopbackServer

    def setup(self) -> None:
        super().setup()
        self.server.connections.opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.connections.closed(self.connection)

    def handle(self) -> None:
        try:
            super().handle()
        except (ConnectionError, TimeoutError):
            # The client went away mid-response; that is a scenario under test, not an error.
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        pass
