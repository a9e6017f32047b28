"""Downloads against a real HTTP server on 127.0.0.1 that misbehaves in every way.

Each mirror is a path prefix of one local server (ephemeral port): ``/forbidden/``
answers 403, ``/html/`` an HTML page under the .gz name, ``/short/`` declares more
bytes than it sends and closes, ``/stall/`` sends nothing for longer than the timeout,
``/badsum/`` a well-formed file with the wrong payload, ``/good/`` the right files
(small synthetic ones whose checksums the tests patch into ``CHECKSUMS``).
"""

import gzip
import http.server
import threading
from pathlib import Path

import pytest

import idx_factory as f
from digitbench import data as data_mod
from digitbench import download as dl
from digitbench.cli import main
from digitbench import datasets
from digitbench.datasets import load_mnist
from digitbench.errors import DataError, DownloadError

NAME = "train-labels-idx1-ubyte"
STALL_SECONDS = 3.0
TIMEOUT = 0.3  # the client's: far below the stall, so the stalled mirror fails fast


class Handler(http.server.BaseHTTPRequestHandler):
    files = {}  # name.gz -> gzipped bytes of the good mirror
    wrong = {}  # name.gz -> gzipped bytes with another payload
    requests = []

    def log_message(self, *args):  # keep the test output clean
        pass

    def _send(self, body, content_type="application/gzip", length=None):
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        mirror, _, name = self.path.strip("/").partition("/")
        self.requests.append((mirror, name))
        if mirror == "forbidden":
            self.send_error(403, "Forbidden")
        elif mirror == "html":
            self._send(b"<!DOCTYPE html><html><body>Sign in to continue</body></html>", "text/html")
        elif mirror == "html-as-gzip":  # an HTML page that also lies about its type
            self._send(b"<html><body>moved</body></html>")
        elif mirror == "short":
            body = self.files[name]
            self._send(body[: len(body) // 2], length=len(body))
            self.close_connection = True
        elif mirror == "stall":
            self.server.stop.wait(STALL_SECONDS)
        elif mirror == "badsum":
            self._send(self.wrong[name])
        elif mirror == "good" and name in self.files:
            self._send(self.files[name])
        else:
            self.send_error(404, "Not Found")


@pytest.fixture
def server(tmp_path_factory, monkeypatch):
    """A local server with synthetic files; CHECKSUMS patched to match them."""
    sums, payloads = f.write_dataset(tmp_path_factory.mktemp("source"))
    _, other = f.write_dataset(tmp_path_factory.mktemp("other"), seed=7)
    monkeypatch.setitem(data_mod.CHECKSUMS, "mnist", sums)
    Handler.files = {n + ".gz": gzip.compress(p, mtime=0) for n, p in payloads.items()}
    Handler.wrong = {n + ".gz": gzip.compress(p, mtime=0) for n, p in other.items()}
    Handler.requests = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.stop = threading.Event()
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}/"
    yield base, payloads
    httpd.stop.set()
    httpd.shutdown()
    httpd.server_close()


def _files(folder):
    return sorted(p.name for p in Path(folder).iterdir())


@pytest.mark.parametrize("bad, reason", [
    ("forbidden", "HTTP 403 Forbidden"),
    ("html", "the server sent an HTML page, not the .gz file"),
    ("html-as-gzip", "not a gzip file (bad magic bytes 3c68)"),
    ("short", "transfer cut short"),
    ("stall", "timed out"),
    ("badsum", "checksum mismatch"),
    ("missing", "HTTP 404 Not Found"),
])
def test_bad_mirror_then_fallback(server, tmp_path, bad, reason):
    base, payloads = server
    out = tmp_path / "out"
    out.mkdir()
    # alone, the bad mirror fails with its reason and leaves nothing behind
    with pytest.raises(DownloadError) as info:
        dl.download_file(NAME, out, mirrors=[base + bad + "/"], progress=False, timeout=TIMEOUT)
    message = str(info.value)
    assert f"could not download {NAME}.gz for mnist; tried:\n  {base}{bad}/{NAME}.gz: " in message
    assert reason in message, message
    assert _files(out) == []
    # before a good one, it is skipped and the good file arrives, verified
    path = dl.download_file(NAME, out, mirrors=[base + bad + "/", base + "good/"], progress=False, timeout=TIMEOUT)
    assert path == out / f"{NAME}.gz" and _files(out) == [f"{NAME}.gz"]
    assert gzip.decompress(path.read_bytes()) == payloads[NAME]


def test_all_mirrors_fail_names_each(server, tmp_path):
    base, _ = server
    mirrors = [base + m + "/" for m in ("forbidden", "html", "short", "stall", "badsum")]
    with pytest.raises(DownloadError) as info:
        dl.download_file(NAME, tmp_path, mirrors=mirrors, progress=False, timeout=TIMEOUT)
    lines = str(info.value).splitlines()
    message = str(info.value)
    assert len(lines) == 2 + len(mirrors), lines  # the header, a short line per mirror, the way offline
    for line, mirror, reason in zip(lines[1:], mirrors, ("HTTP 403", "HTML page", "cut short", "timed out",
                                                          "checksum mismatch")):
        assert line.startswith(f"  {mirror}{NAME}.gz: ") and reason in line, line
    assert "--data-dir" in lines[-1] and "DIGITBENCH_DATA" in lines[-1]
    assert message.index("forbidden") < message.index("html") < message.index("short") < message.index("stall")
    assert _files(tmp_path) == []


def test_unreachable_mirror(tmp_path, monkeypatch):
    """A closed port on 127.0.0.1: connection refused, quickly."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setitem(data_mod.CHECKSUMS, "mnist", {NAME: "0" * 64})
    with pytest.raises(DownloadError, match="Connection refused"):
        dl.download_file(NAME, tmp_path, mirrors=[f"http://127.0.0.1:{port}/"], progress=False, timeout=TIMEOUT)


def test_interrupted_download_leaves_no_file(server, tmp_path, monkeypatch):
    """Ctrl-C in the middle of a transfer: no final name, no .part file."""
    base, _ = server
    real_fetch = dl._fetch

    def fetch_then_interrupt(url, dest, progress, timeout):
        real_fetch(url, dest, progress, timeout)
        dest.flush()
        raise KeyboardInterrupt

    monkeypatch.setattr(dl, "_fetch", fetch_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        dl.download_file(NAME, tmp_path, mirrors=[base + "good/"], progress=False, timeout=TIMEOUT)
    assert _files(tmp_path) == []


def test_download_dataset_and_corrupt_cache(server, tmp_path, monkeypatch):
    base, payloads = server
    monkeypatch.setenv(dl.MIRRORS_ENV, f"{base}forbidden/, {base}good")  # no trailing slash: added
    folder = dl.download_dataset(tmp_path / "cache", progress=False, timeout=TIMEOUT)
    assert _files(folder) == sorted(n + ".gz" for n in payloads)
    # corrupt one file after the download: in a folder of the user's, it is named and left alone
    victim = folder / "t10k-images-idx3-ubyte.gz"
    bad = gzip.compress(b"\0\0\x08\x03" + b"\0" * 20)
    victim.write_bytes(bad)
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz: "):
        dl.download_dataset(folder, progress=False, timeout=TIMEOUT)
    assert victim.read_bytes() == bad
    # in digitbench's own cache, it is deleted and fetched again
    before = len(Handler.requests)
    dl.download_dataset(folder, progress=False, timeout=TIMEOUT, replace_bad=True)
    assert gzip.decompress(victim.read_bytes()) == payloads["t10k-images-idx3-ubyte"]
    assert [r[1] for r in Handler.requests[before:]] == ["t10k-images-idx3-ubyte.gz"] * 2  # forbidden, good


def test_corrupt_raw_copy_falls_back_to_good_gz(server, tmp_path):
    base, payloads = server
    folder = dl.download_dataset(tmp_path, mirrors=[base + "good/"], progress=False, timeout=TIMEOUT)
    (folder / NAME).write_bytes(b"garbage")  # a raw copy is preferred, and is bad
    before = len(Handler.requests)
    dl.download_dataset(folder, mirrors=[base + "good/"], progress=False, timeout=TIMEOUT, replace_bad=True)
    assert not (folder / NAME).exists() and len(Handler.requests) == before  # the .gz was fine


def test_load_mnist_refetches_a_corrupt_default_cache(server, tmp_path, monkeypatch):
    base, payloads = server
    monkeypatch.delenv("DIGITBENCH_DATA", raising=False)
    monkeypatch.setenv(dl.MIRRORS_ENV, base + "good/")
    monkeypatch.setattr(datasets, "default_cache_dir", lambda: tmp_path / "cache")
    first = load_mnist(progress=False)  # empty cache: downloaded
    assert first.train_labels.tobytes() == payloads[NAME][8:]
    cached = tmp_path / "cache" / "mnist" / f"{NAME}.gz"
    cached.write_bytes(cached.read_bytes()[:-9])  # truncated after the fact
    second = load_mnist(progress=False)
    assert second.train_labels.tobytes() == payloads[NAME][8:]
    assert gzip.decompress(cached.read_bytes()) == payloads[NAME]


def test_user_folder_is_never_downloaded_into(server, tmp_path, monkeypatch):
    base, _ = server
    monkeypatch.setenv(dl.MIRRORS_ENV, base + "good/")
    with pytest.raises(DataError, match="missing .*digitbench download --data-dir"):
        load_mnist(tmp_path)
    assert _files(tmp_path) == [] and Handler.requests == []


def test_mirrors_env_rejects_non_http(monkeypatch, tmp_path):
    monkeypatch.setenv(dl.MIRRORS_ENV, "file:///etc/")
    with pytest.raises(DownloadError, match="not an http:// or https:// URL"):
        dl.download_dataset(tmp_path, progress=False)


def test_cli_download(server, tmp_path, monkeypatch, capsys):
    base, payloads = server
    monkeypatch.setenv(dl.MIRRORS_ENV, f"{base}stall/,{base}good/")
    monkeypatch.setattr(dl, "TIMEOUT_SECONDS", TIMEOUT)
    assert main(["download", "--data-dir", str(tmp_path / "d"), "--quiet"]) == 0
    assert "all four files present and verified" in capsys.readouterr().out
    assert _files(tmp_path / "d") == sorted(n + ".gz" for n in payloads)


def test_cli_download_all_fail_one_line(server, tmp_path, monkeypatch, capsys):
    base, _ = server
    monkeypatch.setenv(dl.MIRRORS_ENV, f"{base}forbidden/ {base}html/")
    assert main(["download", "--data-dir", str(tmp_path), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 4 and "Traceback" not in err
    assert err.startswith("digitbench download: error: could not download train-images-idx3-ubyte.gz for mnist; "
                          f"tried:\n  {base}forbidden/train-images-idx3-ubyte.gz: HTTP 403 Forbidden\n"
                          f"  {base}html/train-images-idx3-ubyte.gz: the server sent an HTML page"), err
    assert err.splitlines()[-1].startswith("to work offline, ")
    assert [p.name for p in tmp_path.iterdir()] == []
