"""`bench review`: a local web page for judging benchmark items, served from the command.

    jax-spatial bench review out/bench [--port 8765] [--host 127.0.0.1] [--no-browser]

A standard-library `ThreadingHTTPServer` serves three things and nothing else:

* the page (`static/index.html`, `review.js`, `review.css`, shipped with the package);
* the benchmark: `GET /api/bench` (its items), `GET /api/verdicts` (the marks so far) and the
  files under the benchmark folder, `GET /bench/<path relative to B>` (item images). A path
  that resolves outside the folder (`..`, an absolute path, a symlink out) is a 404: only files
  under `B` are ever read;
* `POST /api/verdict` with `{"id": ..., "verdict": "accept" | "reject" | "unsure" | null}`: the
  verdict is written to `B/verdicts.json` before the reply (`verdicts.set_verdict`: atomic,
  under a lock), so a reload, a closed tab or a killed server loses nothing.

The page (keys: a accept, r reject, u unsure, x clear, j / right arrow next, k / left arrow
previous; filters by task, format and verdict; progress) restores its marks from the server
on every load. There is no authentication: keep `--host` on the loopback interface unless the
network is trusted.
"""

from __future__ import annotations

import http.server
import json
import logging
import mimetypes
import os
import pathlib
import threading
import urllib.parse
import webbrowser
from importlib import resources

from jax_spatial.benchmark import verdicts as verdicts_lib
from jax_spatial.errors import UserError

log = logging.getLogger(__name__)

DEFAULT_PORT = 8765
STATIC_FILES = {
    "index.html": "text/html; charset=utf-8",
    "review.js": "text/javascript; charset=utf-8",
    "review.css": "text/css; charset=utf-8",
}
# A verdict request is a few hundred bytes; anything far larger is not one.
MAX_BODY = 64 * 1024


class ReviewState:
    """The benchmark being reviewed: its items, their digests, and the verdict store."""

    def __init__(self, bench_dir: str | os.PathLike, reviewer: str | None = None):
        self.root = verdicts_lib.bench_folder(bench_dir).resolve()
        self.items = verdicts_lib.read_items(self.root)
        if not self.items:
            raise UserError(f"{self.root / verdicts_lib.BENCH_FILE} holds no items to review")
        self.digests = {i["id"]: verdicts_lib.item_digest(self.root, i) for i in self.items}
        self.reviewer = reviewer
        verdicts_lib.read_entries(self.root)  # a corrupt file is an error before serving

    def verdicts(self) -> dict[str, str]:
        """id -> verdict of the current items (stale and unknown entries left out)."""
        out = {}
        for item_id, entry in verdicts_lib.read_entries(self.root).items():
            digest = self.digests.get(item_id)
            if digest is not None and entry.get("digest", digest) == digest:
                out[item_id] = entry["verdict"]
        return out

    def set(self, item_id: str, verdict: str | None) -> dict:
        verdicts_lib.set_verdict(
            self.root, item_id, verdict, digest=self.digests[item_id], reviewer=self.reviewer
        )
        return verdicts_lib.progress(self.verdicts(), len(self.items))

    def file(self, url_path: str) -> pathlib.Path | None:
        """The file under the benchmark folder a `/bench/...` path names, or None."""
        relative = urllib.parse.unquote(url_path)
        if "\x00" in relative or relative.startswith(("/", "\\")):
            return None
        try:
            path = (self.root / relative).resolve()
        except (OSError, ValueError):
            return None
        if not path.is_relative_to(self.root) or not path.is_file():
            return None
        return path


def _static(name: str) -> bytes:
    return resources.files("jax_spatial.benchmark").joinpath("static", name).read_bytes()


def make_handler(state: ReviewState) -> type[http.server.BaseHTTPRequestHandler]:
    """The request handler class bound to one benchmark."""

    class Handler(http.server.BaseHTTPRequestHandler):
        server_version = "jax-spatial-review"

        def log_message(self, format, *args):  # noqa: A002 - the base class's signature
            log.debug("%s " + format, self.address_string(), *args)

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, status: int, data) -> None:
            self._send(status, json.dumps(data).encode("utf-8"), "application/json")

        def _not_found(self) -> None:
            self._send(404, b"not found\n", "text/plain; charset=utf-8")

        def do_GET(self):  # noqa: N802 - the base class's name
            path = urllib.parse.urlsplit(self.path).path
            if path in ("/", "/index.html"):
                return self._send(200, _static("index.html"), STATIC_FILES["index.html"])
            if path.startswith("/static/"):
                name = path[len("/static/") :]
                if name in STATIC_FILES:
                    return self._send(200, _static(name), STATIC_FILES[name])
                return self._not_found()
            if path == "/api/bench":
                return self._json(200, {"name": state.root.name, "items": state.items})
            if path == "/api/verdicts":
                try:
                    marks = state.verdicts()
                except UserError as error:
                    return self._json(500, {"error": str(error)})
                progress = verdicts_lib.progress(marks, len(state.items))
                return self._json(200, {"verdicts": marks, "progress": progress})
            if path.startswith("/bench/"):
                file = state.file(path[len("/bench/") :])
                if file is None:
                    return self._not_found()
                kind = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
                return self._send(200, file.read_bytes(), kind)
            return self._not_found()

        do_HEAD = do_GET  # noqa: N815

        def do_POST(self):  # noqa: N802
            if urllib.parse.urlsplit(self.path).path != "/api/verdict":
                return self._not_found()
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if not 0 < length <= MAX_BODY:
                return self._json(400, {"error": "expected a JSON body of at most 64 KiB"})
            try:
                body = json.loads(self.rfile.read(length))
            except (ValueError, UnicodeDecodeError):
                return self._json(400, {"error": "body is not JSON"})
            if not isinstance(body, dict):
                return self._json(400, {"error": "body is not a JSON object"})
            item_id, verdict = body.get("id"), body.get("verdict")
            if item_id not in state.digests:
                return self._json(404, {"error": f"no item {item_id!r} in this benchmark"})
            if verdict is not None and verdict not in verdicts_lib.VERDICTS:
                known = ", ".join(verdicts_lib.VERDICTS)
                return self._json(400, {"error": f"verdict must be one of {known} or null"})
            try:
                progress = state.set(item_id, verdict)
            except (UserError, OSError) as error:
                return self._json(500, {"error": str(error)})
            return self._json(200, {"ok": True, "id": item_id, "verdict": verdict,
                                    "progress": progress})  # fmt: skip

    return Handler


def make_server(
    state: ReviewState, host: str = "127.0.0.1", port: int = DEFAULT_PORT
) -> http.server.ThreadingHTTPServer:
    """A bound (not yet serving) server; port 0 picks a free one (`server.server_address`)."""
    try:
        server = http.server.ThreadingHTTPServer((host, port), make_handler(state))
    except OSError as error:
        raise UserError(
            f"cannot serve on {host}:{port}: {error.strerror or error}; choose another --port"
        ) from None
    server.daemon_threads = True
    return server


def page_url(server: http.server.HTTPServer) -> str:
    host, port = server.server_address[:2]
    host = f"[{host}]" if ":" in str(host) else host
    return f"http://{host}:{port}/"


def serve(
    bench_dir: str | os.PathLike,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    open_browser: bool = True,
    reviewer: str | None = None,
) -> int:
    """Serves the review page until Ctrl-C; returns how many verdicts the benchmark has."""
    state = ReviewState(bench_dir, reviewer)
    server = make_server(state, host, port)
    url = page_url(server)
    print(
        f"reviewing {len(state.items)} items of {state.root} at {url} "
        f"(verdicts go to {state.root / verdicts_lib.FILE_NAME}; Ctrl-C to stop)",
        flush=True,
    )
    if open_browser:
        threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    marks = state.verdicts()
    print(f"stopped; {len(marks)} of {len(state.items)} items have a verdict")
    return len(marks)


__all__ = ["DEFAULT_PORT", "ReviewState", "make_handler", "make_server", "page_url", "serve"]
