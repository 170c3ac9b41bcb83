"""ssdiff models fetch: a download resumed, verified against a key manifest, and placed atomically.

The server is a local http.server on 127.0.0.1 that honours Range requests (or ignores them, or cuts
the connection after N bytes); the file it serves is the small reference DDPM network saved as a
``.ckpt`` in the format of the public ``celeba_hq.ckpt`` (torch's legacy pickle format), with a
manifest made from that network. No test reaches the internet.
"""

from __future__ import annotations

import math
import re
import socket
import threading
from collections import namedtuple
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from ssdiff.cli import main
from ssdiff.models import KNOWN_MODELS, CheckpointError, fetch_model, load_model, read_state_dict
from ssdiff.models import fetch as fetch_module
from ssdiff.models.catalog import KnownModel, manifest_of, manifests

NAME, FILE = "tiny-ddpm", "tiny.ckpt"


class Handler(BaseHTTPRequestHandler):
    """GET of the server's files, with ``Range: bytes=N-`` (206, or 416 past the end) unless told to
    ignore it; the first ``cuts`` bodies stop after ``cut_after`` bytes and the connection closes."""

    def do_GET(self) -> None:
        server = self.server
        asked = self.headers.get("Range")
        server.requests.append(asked)
        data = server.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start = 0
        if asked and not server.ignore_range:
            start = int(re.fullmatch(r"bytes=(\d+)-", asked).group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if server.cuts and server.cut_after < len(body):
            server.cuts -= 1
            body = body[: server.cut_after]  # then the connection closes: fewer bytes than announced
        try:
            self.wfile.write(body)
        except ConnectionError:  # the client stopped reading (a download refused before its body)
            self.close_connection = True

    def log_message(self, *args) -> None:
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.files: dict[str, bytes] = {}
        self.requests: list[str | None] = []  # the Range header of every request (None: none)
        self.ignore_range, self.cuts, self.cut_after = False, 0, 0

    def url(self, path: str = f"/{FILE}") -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


@pytest.fixture(scope="module")
def checkpoint(golden, tmp_path_factory) -> tuple[bytes, dict]:
    """The small reference DDPM network as a legacy-format .ckpt (as celeba_hq.ckpt is), and its manifest."""
    state = read_state_dict(golden / "ddpm_model_small.safetensors")
    path = tmp_path_factory.mktemp("ckpt") / FILE
    torch.save(state, path, _use_new_zipfile_serialization=False)
    manifest = {"keys": {k: list(v.shape) for k, v in state.items()}, "num_params": sum(v.numel() for v in state.values())}
    return path.read_bytes(), manifest


@pytest.fixture
def server(checkpoint):
    server = Server()
    server.files[f"/{FILE}"] = checkpoint[0]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def tiny(server, model_configs) -> KnownModel:
    return KnownModel(name=NAME, format="ddpm", config=model_configs["ddpm_model_small"], description="the small "
                      "reference DDPM network", filename=FILE, source="this test's server", url=server.url())


@pytest.fixture
def registered(tiny, checkpoint, monkeypatch) -> KnownModel:
    """The tiny model in the catalog, with its manifest, as the public ones are (undone after the test)."""
    monkeypatch.setitem(KNOWN_MODELS, NAME, tiny)
    monkeypatch.setitem(manifests(), NAME, checkpoint[1])
    return tiny


def fetch(tiny, checkpoint, to, **options) -> Path:
    return fetch_model(tiny, to=to, manifest=checkpoint[1], progress=False, timeout=10, **options)


def test_a_download_is_verified_before_it_takes_its_name(tiny, checkpoint, server, tmp_path, monkeypatch, capsys):
    to = tmp_path / "cache" / "models"  # created as needed
    checked = []
    original = fetch_module._problem

    def spy(path, manifest):  # the file is verified as .part, before the final name exists
        checked.append((path.name, (to / FILE).exists()))
        return original(path, manifest)

    monkeypatch.setattr(fetch_module, "_problem", spy)
    path = fetch(tiny, checkpoint, to)
    assert path == to / FILE and path.read_bytes() == checkpoint[0]
    assert checked == [(f"{FILE}.part", False)] and not (to / f"{FILE}.part").exists()
    assert server.requests == [None]
    capsys.readouterr()
    assert fetch_model(tiny, to=to, manifest=checkpoint[1], timeout=10) == path  # already there: not again
    assert server.requests == [None] and "already there and verified; not downloaded again" in capsys.readouterr().err


def test_an_interrupted_download_resumes_from_the_part(tiny, checkpoint, server, tmp_path):
    data, cut = checkpoint[0], len(checkpoint[0]) // 3
    server.cuts, server.cut_after = 1, cut
    with pytest.raises(CheckpointError, match=rf"stopped after {cut:,} of {len(data):,} bytes.*kept.*resume") as error:
        fetch(tiny, checkpoint, tmp_path, attempts=1)
    assert "\n" not in str(error.value)
    part = tmp_path / f"{FILE}.part"
    assert part.read_bytes() == data[:cut] and not (tmp_path / FILE).exists()
    path = fetch(tiny, checkpoint, tmp_path)  # the same command again
    assert server.requests == [None, f"bytes={cut}-"]
    assert path.read_bytes() == data and not part.exists()


def test_a_dropped_connection_is_resumed_within_one_call(tiny, checkpoint, server, tmp_path, capsys):
    data, cut = checkpoint[0], 12345
    server.cuts, server.cut_after = 2, cut
    path = fetch_model(tiny, to=tmp_path, manifest=checkpoint[1], timeout=10)
    assert server.requests == [None, f"bytes={cut}-", f"bytes={2 * cut}-"]
    assert path.read_bytes() == data
    assert capsys.readouterr().err.count("resuming") == 2


def test_a_corrupted_download_is_refused_and_deleted(tiny, checkpoint, server, tmp_path):
    data = bytearray(checkpoint[0])
    data[:64] = bytes(b ^ 0xFF for b in data[:64])  # the pickle's header: unreadable
    server.files[f"/{FILE}"] = bytes(data)
    with pytest.raises(CheckpointError, match=rf"{FILE}: the file downloaded from .* is not {NAME}'s checkpoint: "
                       r"cannot read checkpoint.*the download was deleted") as error:
        fetch(tiny, checkpoint, tmp_path)
    assert "\n" not in str(error.value)
    assert list(tmp_path.iterdir()) == []  # neither the file nor its .part


def altered(manifest: dict, change: str) -> dict:
    keys, key = dict(manifest["keys"]), "temb.dense.0.weight"
    if change == "missing":
        keys["extra.weight"] = [3, 3]
    elif change == "unexpected":
        del keys[key]
    else:
        keys[key] = [keys[key][0] + 1, *keys[key][1:]]
    return {"keys": keys, "num_params": sum(math.prod(shape) for shape in keys.values())}


@pytest.mark.parametrize("change,message", [
    ("missing", r"1 key missing, first: extra\.weight"),
    ("unexpected", r"1 unexpected key, first: temb\.dense\.0\.weight"),
    ("shape", r"shape of temb\.dense\.0\.weight is \[128, 32\] not \[129, 32\]"),
])
def test_wrong_keys_or_shapes_are_refused_by_name(tiny, checkpoint, server, tmp_path, change, message):
    manifest = altered(checkpoint[1], change)
    with pytest.raises(CheckpointError, match=rf"{FILE}: .*not {NAME}'s checkpoint: {message}") as error:
        fetch_model(tiny, to=tmp_path, manifest=manifest, progress=False, timeout=10)
    assert "\n" not in str(error.value) and list(tmp_path.iterdir()) == []


def test_a_server_that_ignores_range_restarts_cleanly(tiny, checkpoint, server, tmp_path):
    (tmp_path / f"{FILE}.part").write_bytes(b"stale bytes of another try" * 40)
    server.ignore_range = True
    path = fetch(tiny, checkpoint, tmp_path)
    assert server.requests == [f"bytes={26 * 40}-"]  # asked to resume, answered 200 with the whole file
    assert path.read_bytes() == checkpoint[0] and not (tmp_path / f"{FILE}.part").exists()


def test_a_whole_part_is_verified_without_downloading_again(tiny, checkpoint, server, tmp_path):
    (tmp_path / f"{FILE}.part").write_bytes(checkpoint[0])  # the last run stopped before the rename
    path = fetch(tiny, checkpoint, tmp_path)
    assert server.requests == [f"bytes={len(checkpoint[0])}-"]  # answered 416: nothing left to send
    assert path.read_bytes() == checkpoint[0]


def test_offline_is_one_line_that_says_what_to_do(tiny, checkpoint, tmp_path):
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/{FILE}"
    to = tmp_path / "cache"
    with pytest.raises(CheckpointError) as error:
        fetch(tiny, checkpoint, to, url=url)
    message = str(error.value)
    assert message.startswith(f"ssdiff could not reach {url} (") and "\n" not in message
    assert f"by hand and place it at {to / FILE}" in message and "--url" in message
    assert not to.exists()  # a failed fetch leaves no empty folder


def test_a_missing_file_on_the_server_is_named(tiny, checkpoint, server, tmp_path):
    with pytest.raises(CheckpointError, match=r"/nothing\.ckpt: the server answered 404 .*by hand"):
        fetch(tiny, checkpoint, tmp_path, url=server.url("/nothing.ckpt"))


def test_a_download_that_does_not_fit_on_disk_is_refused_first(tiny, checkpoint, server, tmp_path, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(fetch_module.shutil, "disk_usage", lambda folder: usage(10**6, 10**6 - 1000, 1000))
    with pytest.raises(CheckpointError, match=rf"not enough free space in .*: the download needs "
                       rf"{len(checkpoint[0]) / 2**20:.1f} MB more, 1,000 bytes are free"):
        fetch(tiny, checkpoint, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_bad_file_already_in_place_is_left_alone(tiny, checkpoint, server, tmp_path):
    (tmp_path / FILE).write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"already there, but not .*left as it is"):
        fetch(tiny, checkpoint, tmp_path)
    assert (tmp_path / FILE).read_bytes() == b"not a checkpoint" and server.requests == []


def test_load_model_finds_the_fetched_file_in_the_cache(registered, golden, tmp_path, monkeypatch):
    monkeypatch.setenv("SSDIFF_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    with pytest.raises(CheckpointError, match=rf"{FILE}.*run `ssdiff models fetch {NAME}`"):
        load_model(NAME)  # nothing is downloaded at load time
    path = fetch_model(NAME, progress=False, timeout=10)
    assert path == tmp_path / "home" / FILE
    prior = load_model(NAME)
    io = load_file(golden / "ddpm_model_small_io.safetensors")
    assert prior.info["source"] == str(path)
    assert (prior(io["x"], io["t"]) - io["out"]).abs().max() < 1e-4


def test_the_command_line(registered, server, tmp_path, capsys):
    to = tmp_path / "models"
    assert main(["models", "fetch", NAME, "--to", str(to)]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(to / FILE)
    assert (to / FILE).is_file()
    # a real model's name, served the wrong file: refused in one line, exit code 2
    assert main(["models", "fetch", "celeba-hq-256", "--url", server.url(), "--to", str(to)]) == 2
    err = capsys.readouterr().err.strip().splitlines()  # the progress bar, then the error
    errors = [line for line in err if line.startswith("ssdiff: error: ")]
    assert errors == err[-1:] and errors[0].startswith(f"ssdiff: error: {to / 'celeba_hq.ckpt'}: ")
    assert "keys missing, first:" in errors[0] and not (to / "celeba_hq.ckpt").exists()
    assert main(["models", "fetch", "nonesuch", "--to", str(to)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown model 'nonesuch'" in err[0] and "celeba-hq-256" in err[0]


def test_the_built_in_prior_needs_no_fetching(capsys):
    assert main(["models", "fetch", "celeba64"]) == 0
    assert "celeba64 is built in" in capsys.readouterr().err


def test_fetch_options_go_with_fetch(capsys):
    assert main(["models", "fetch"]) == 2
    assert main(["models", "--to", "somewhere"]) == 2
    assert "--url and --to go with `ssdiff models fetch NAME`" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["openai-256-uncond", "celeba-hq-256"])
def test_the_packaged_manifests_match_the_public_checkpoints(name):
    known = KNOWN_MODELS[name]
    manifest = manifest_of(known)
    assert manifest["filename"] == known.filename and manifest["config"] == known.config
    assert sum(math.prod(shape) for shape in manifest["keys"].values()) == manifest["num_params"] == known.num_params
    assert known.url.startswith("https://") and known.url.endswith("/" + known.filename)
