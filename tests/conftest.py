"""Shared pytest fixtures (keep small)."""

import http.server
import threading
from types import SimpleNamespace

import pytest

from nst_helpers import examples


@pytest.fixture
def http_files():
    """A local HTTP server on 127.0.0.1 (ephemeral port); never touches the real network.

    server.files["/a.png"] = b"..." serves bytes; server.url("/a.png") is its URL;
    server.hits["/a.png"] counts the requests.  Unknown paths answer 404.
    """
    state = SimpleNamespace(files={}, hits={})

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            state.hits[self.path] = state.hits.get(self.path, 0) + 1
            body = state.files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # keep test output clean
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = lambda path: f"http://127.0.0.1:{server.server_address[1]}{path}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def first_step_interrupted(monkeypatch):
    """Every run is stopped by Ctrl-C in its first loss evaluation, before any step has finished."""
    from nst_helpers import objective

    def interrupted(self, x):
        raise KeyboardInterrupt

    monkeypatch.setattr(objective.Objective, "__call__", interrupted)


@pytest.fixture(scope="module")
def photo():
    """A small photo (chelsea, 48 px) for the loop's and the hardware checks' tests."""
    return examples.load("chelsea", size=48)


@pytest.fixture(scope="module")
def painting():
    """A small style image (the swirls pattern, 64 px)."""
    return examples.load("swirls", size=64)
