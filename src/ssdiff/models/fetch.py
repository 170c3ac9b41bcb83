"""fetch_model: download a public checkpoint into the cache, resumably, and keep it only once verified.

What ``ssdiff models fetch NAME`` runs; nothing else in ssdiff downloads (``load_model`` only looks
in the folders of :func:`~ssdiff.models.loading.checkpoint_dirs`, the first of which is where this
puts the file). The bytes stream into ``<file>.part`` (standard-library HTTP, with a timeout on
every connection and read); an interrupted download resumes from the ``.part``'s size with a
``Range`` request (a server that answers the whole file instead starts it again). The finished
``.part`` is read with the safe reader (no pickled code runs) and compared with the model's key
manifest (every key, its shape, the parameter count) before it is renamed, in one step, to the
file's name: a file under the final name is always a verified checkpoint.

A ``.part`` that fails the check is deleted, not kept aside: its bytes are either damaged (resuming
would only append to the damage) or another file altogether, and a multi-gigabyte reject left on
disk would take the room the next try needs. The error says what was wrong.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import shutil
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from http.client import HTTPException
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from .catalog import KNOWN_MODELS, KnownModel, builtin_weights_dir, find_known_model, manifest_of
from .convert import CheckpointError
from .loading import cache_dir, read_state_dict

CHUNK = 1 << 20  # bytes read and written at a time
TIMEOUT = 60.0  # seconds to connect, and to wait for each read
ATTEMPTS = 3  # tries per call when the connection drops: each resumes where the last one stopped
USER_AGENT = "ssdiff (python-urllib)"


class _Interrupted(Exception):
    """The connection ended before the whole file came."""

    def __init__(self, received: int, total: int | None, why: str):
        super().__init__(why)
        self.received, self.total, self.why = received, total, why


def fetch_model(model: str | KnownModel, url: str | None = None, to: str | os.PathLike | None = None, *,
                manifest: Mapping[str, Any] | None = None, progress: bool = True, timeout: float = TIMEOUT,
                attempts: int = ATTEMPTS) -> Path:
    """Download a known model's public checkpoint, verify it, and return its path.

    ``model`` is a known name or alias (``ssdiff models``) or a :class:`KnownModel`; ``url``
    replaces its download address (a mirror); ``to`` is the folder (default: ``$SSDIFF_HOME``, else
    the platform's user cache folder, where ``load_model(NAME)`` finds it). ``manifest`` (a dict with
    ``keys``: {key: shape} and ``num_params``) replaces the packaged manifest of the model. A
    verified file already in place is not downloaded again. ``progress`` shows a progress bar and
    status lines on stderr. Raises :class:`CheckpointError`, one line, on any failure.
    """
    known = _known(model)
    say = _printer(progress)
    if known.filename is None:  # the built-in prior
        folder = builtin_weights_dir()
        say(f"{known.name} is built in: its weights ship inside ssdiff ({folder}); there is nothing to fetch")
        return folder
    manifest = manifest if manifest is not None else manifest_of(known)
    if manifest is None:
        raise CheckpointError(f"{known.name}: no key manifest to verify a download against, so ssdiff does not fetch it")
    url = url or known.url
    if not url:
        raise CheckpointError(f"{known.name}: no download address is known; give one with --url")
    folder = Path(to).expanduser() if to is not None else cache_dir()
    final = folder / known.filename
    if final.exists():
        problem = _problem(final, manifest)
        if problem:
            raise CheckpointError(f"{final}: already there, but not {known.name}'s checkpoint: {problem}; it is left as it "
                                  "is: move it away and run again to download the file")
        say(f"{final}: already there and verified; not downloaded again")
        return final
    created = not folder.is_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CheckpointError(f"{folder}: cannot create the folder ({error.strerror or error})") from None
    try:
        return _fetch_into(final, url, manifest, known.name, timeout, progress, attempts, say)
    except BaseException:
        if created:  # a failed fetch leaves no empty folder behind (one holding a .part to resume stays)
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


def _fetch_into(final: Path, url: str, manifest: Mapping[str, Any], name: str, timeout: float, progress: bool,
                attempts: int, say: Callable[[str], None]) -> Path:
    """Download ``url`` to ``final`` through ``final.part``, resuming; verify; rename."""
    part = final.with_name(final.name + ".part")
    for attempt in range(1, max(1, attempts) + 1):
        try:
            _download(url, part, final, timeout, progress, say)
            break
        except _Interrupted as cut:
            of = f" of {cut.total:,}" if cut.total else ""
            if attempt >= attempts:
                raise CheckpointError(f"{url}: the download stopped after {cut.received:,}{of} bytes ({cut.why}); "
                                      f"{part} is kept: run the same command again to resume") from None
            say(f"the download stopped after {cut.received:,}{of} bytes ({cut.why}); resuming")
    problem = _problem(part, manifest)
    if problem:
        part.unlink(missing_ok=True)
        raise CheckpointError(f"{final}: the file downloaded from {url} is not {name}'s checkpoint: {problem}; "
                              "the download was deleted")
    os.replace(part, final)  # atomic: the final name only ever holds a verified file
    say(f"{final}: downloaded and verified ({len(manifest['keys'])} tensors, {manifest['num_params']:,} parameters)")
    return final


def verify_checkpoint(path: str | os.PathLike, manifest: Mapping[str, Any]) -> None:
    """Read ``path`` safely and compare it with a key manifest: every key and its shape, and the
    parameter count; raises :class:`CheckpointError` naming the file and the first problems."""
    problem = _problem(Path(path), manifest)
    if problem:
        raise CheckpointError(f"{path}: {problem}")


def _problem(path: Path, manifest: Mapping[str, Any]) -> str | None:
    """What is wrong with the checkpoint at ``path`` for this manifest, in a few words, or None."""
    try:
        found = {key: tuple(tensor.shape) for key, tensor in read_state_dict(path).items()}
    except CheckpointError as error:
        return str(error).removeprefix(f"{path}: ")
    expected = {key: tuple(shape) for key, shape in manifest["keys"].items()}
    problems = []
    missing = [key for key in expected if key not in found]
    if missing:
        problems.append(f"{_count(len(missing), 'key')} missing, first: {missing[0]}")
    unexpected = [key for key in found if key not in expected]
    if unexpected:
        problems.append(f"{_count(len(unexpected), 'unexpected key')}, first: {unexpected[0]}")
    wrong = [key for key in expected if key in found and found[key] != expected[key]]
    if wrong:
        key = wrong[0]
        more = f" (and {_count(len(wrong) - 1, 'other shape')} wrong)" if len(wrong) > 1 else ""
        problems.append(f"shape of {key} is {list(found[key])} not {list(expected[key])}{more}")
    count = sum(math.prod(shape) for shape in found.values())
    if not problems and count != manifest["num_params"]:
        problems.append(f"it holds {count:,} parameters, not {manifest['num_params']:,}")
    return "; ".join(problems) or None


def _download(url: str, part: Path, final: Path, timeout: float, progress: bool, say: Callable[[str], None]) -> None:
    """Bring ``part`` to the whole file at ``url``, resuming from its size; raises :class:`_Interrupted`
    when the connection ends early (the bytes so far stay in ``part``)."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT, **({"Range": f"bytes={offset}-"} if offset else {})}
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as error:
        with error:
            if error.code == 416 and offset:  # nothing from the offset on: the .part is whole, or too long
                _, total = _content_range(error.headers.get("Content-Range", ""))
                if total == offset:
                    return
                say(f"{part.name} is longer than the file at {url}; starting again")
                part.unlink()
                return _download(url, part, final, timeout, progress, say)
            raise CheckpointError(f"{url}: the server answered {error.code} {error.reason}: {_by_hand(final)}") from None
    except (urllib.error.URLError, OSError, HTTPException, ValueError) as error:
        reason = getattr(error, "reason", error)
        why = getattr(reason, "strerror", None) or str(reason) or type(reason).__name__
        raise CheckpointError(f"ssdiff could not reach {url} ({why}): {_by_hand(final)}") from None
    with response:
        total = None
        if response.status == 206:
            start, total = _content_range(response.headers.get("Content-Range", ""))
            if start != offset:
                say(f"the server sent the file from byte {start}, not {offset}; starting again")
                part.unlink()
                return _download(url, part, final, timeout, progress, say)
        else:
            if offset:
                say(f"the server at {url} does not resume downloads (it sent the whole file); starting again")
                part.unlink()  # before the space check: its bytes are about to be freed
                offset = 0
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
        if total is not None:
            _check_space(part.parent, total - offset, final)
        received = offset
        with open(part, "ab" if offset else "wb") as out, \
                tqdm(total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024, desc=final.name,
                     disable=not progress, file=sys.stderr, mininterval=0.5) as bar:
            while True:
                try:
                    chunk = response.read(CHUNK)
                except (OSError, HTTPException) as error:  # a timeout, a reset, an incomplete chunked body
                    raise _Interrupted(received, total, str(error) or type(error).__name__) from None
                if not chunk:
                    break
                try:
                    out.write(chunk)
                except OSError as error:
                    raise CheckpointError(f"{part}: cannot write the download ({error.strerror or error}); "
                                          "the bytes so far are kept: run the same command again to resume") from None
                received += len(chunk)
                bar.update(len(chunk))
    if total is not None and received < total:
        raise _Interrupted(received, total, "the connection closed early")


def _content_range(header: str) -> tuple[int | None, int | None]:
    """(first byte, total size) of a ``Content-Range`` header (``bytes 100-199/200``, ``bytes */200``)."""
    match = re.fullmatch(r"\s*bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)\s*", header or "")
    if not match:
        return None, None
    start, total = match.groups()
    return (int(start) if start else None), (int(total) if total != "*" else None)


def _check_space(folder: Path, needed: int, final: Path) -> None:
    free = shutil.disk_usage(folder).free
    if needed > free:
        raise CheckpointError(f"{final}: not enough free space in {folder}: the download needs {_size(needed)} more, "
                              f"{_size(free)} are free; free some space, or fetch it into another folder with --to DIR")


def _by_hand(final: Path) -> str:
    return f"download {final.name} by hand and place it at {final}, or give another address with --url"


def _known(model: str | KnownModel) -> KnownModel:
    if isinstance(model, KnownModel):
        return model
    known = find_known_model(str(model))
    if known is None:
        names = ", ".join(KNOWN_MODELS)
        raise CheckpointError(f"unknown model {str(model)!r}: the known models are {names} (ssdiff models lists them)")
    return known


def _printer(progress: bool) -> Callable[[str], None]:
    def say(line: str) -> None:
        if progress:
            tqdm.write(line, file=sys.stderr)
    return say


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _size(n: int) -> str:
    if n < 1024:
        return f"{n:,} bytes"
    value, unit = n / 1024, "KB"
    for larger in ("MB", "GB"):
        if value < 1024:
            break
        value, unit = value / 1024, larger
    return f"{value:.1f} {unit}"
