"""Template source trees: ``spec.files`` <-> the zip archives Coder stores.

Pure functions (no I/O). Paths are normalised (``./main.tf`` -> ``main.tf``,
``a//b`` -> ``a/b``); empty, absolute, backslashed, root-resolving and ``..``
paths are rejected. Limits follow the Go original: 2 MiB per file, 40 MiB in
total, 20 MiB per archive, 2000 entries. Files that are not UTF-8 are left
out of ``spec.files`` and kept, byte for byte, when a new archive is built
from an old one.
"""

from __future__ import annotations

import io
import posixpath
import stat
import zipfile
import zlib
from collections.abc import Mapping

from k8swatch._go import go_quote

__all__ = [
    "MAX_ARCHIVE_BYTES",
    "MAX_ENTRIES",
    "MAX_FILE_BYTES",
    "MAX_TOTAL_BYTES",
    "build_archive",
    "merge_archive",
    "normalize_files",
    "normalize_path",
    "read_archive",
]

MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_TOTAL_BYTES = 40 * 1024 * 1024
MAX_ARCHIVE_BYTES = 20 * 1024 * 1024
MAX_ENTRIES = 2000
_DEFAULT_MODE = 0o644
_ENTRY_ERRORS = (zlib.error, EOFError, OSError, NotImplementedError, RuntimeError)
"""What ``zipfile`` raises besides ``BadZipFile``: corrupt data, unsupported
compression or encryption."""


def normalize_path(path: str) -> str:
    """Return the clean relative form of *path*.

    Raises:
        ValueError: *path* is empty, absolute, contains a backslash or a ``..``
            component, or resolves to the root.
    """
    if not path:
        raise ValueError("file path must not be empty")
    if "\\" in path:
        raise ValueError(f"file path {go_quote(path)} must not contain backslashes")
    if path.startswith("/"):
        raise ValueError(f"file path {go_quote(path)} must be relative")
    if ".." in path.split("/"):
        raise ValueError(f"file path {go_quote(path)} must not contain '..'")
    cleaned = posixpath.normpath(path)
    if cleaned in (".", "", "/"):
        raise ValueError(f"file path {go_quote(path)} resolves to the root")
    return cleaned


def normalize_files(files: Mapping[str, str]) -> dict[str, str]:
    """Normalise every path of *files*; check sizes and duplicates.

    Raises:
        ValueError: a bad path, two paths that normalise to the same one, or a
            size limit exceeded.
    """
    if len(files) > MAX_ENTRIES:
        raise ValueError(f"too many files: {len(files)} (limit {MAX_ENTRIES})")
    out: dict[str, str] = {}
    total = 0
    for path, content in files.items():
        clean = normalize_path(path)
        if clean in out:
            raise ValueError(f"duplicate file path {go_quote(clean)} after normalization")
        size = len(content.encode("utf-8"))
        if size > MAX_FILE_BYTES:
            raise ValueError(f"file {go_quote(clean)} is {size} bytes (limit {MAX_FILE_BYTES})")
        total += size
        if total > MAX_TOTAL_BYTES:
            raise ValueError(f"files total more than {MAX_TOTAL_BYTES} bytes")
        out[clean] = content
    return out


def _info(path: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = ((stat.S_IFREG | mode) & 0xFFFF) << 16
    info.create_system = 3  # unix, so the mode is honoured
    return info


def _check_archive_size(data: bytes) -> bytes:
    if len(data) > MAX_ARCHIVE_BYTES:
        raise ValueError(f"archive is {len(data)} bytes (limit {MAX_ARCHIVE_BYTES})")
    return data


def build_archive(files: Mapping[str, str]) -> bytes:
    """Build a deflated zip of *files* (paths normalised and sorted).

    Raises:
        ValueError: as `normalize_files`, or the archive exceeds its limit.
    """
    clean = normalize_files(files)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(clean):
            archive.writestr(_info(path, _DEFAULT_MODE), clean[path].encode("utf-8"))
    return _check_archive_size(buffer.getvalue())


def read_archive(data: bytes) -> dict[str, str]:
    """Return the UTF-8 text files of the zip *data* (directories and binaries skipped).

    Raises:
        ValueError: not a zip, a bad or duplicate path, or a limit exceeded.
    """
    return _read_entries(data)[0]


def _read_entries(data: bytes) -> tuple[dict[str, str], list[tuple[zipfile.ZipInfo, bytes]]]:
    _check_archive_size(data)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, *_ENTRY_ERRORS) as exc:
        # zipfile's own words stay in the cause, for the log, never in a Status
        raise ValueError("not a valid zip archive") from exc
    texts: dict[str, str] = {}
    binaries: list[tuple[zipfile.ZipInfo, bytes]] = []
    seen: set[str] = set()
    total = 0
    with archive:
        infos = [i for i in archive.infolist() if not i.is_dir()]
        if len(infos) > MAX_ENTRIES:
            raise ValueError(f"too many files: {len(infos)} (limit {MAX_ENTRIES})")
        for info in infos:
            path = normalize_path(info.filename)
            if path in seen:
                raise ValueError(f"duplicate file path {go_quote(path)} after normalization")
            seen.add(path)
            if info.file_size > MAX_FILE_BYTES:
                raise ValueError(f"file {go_quote(path)} exceeds {MAX_FILE_BYTES} bytes")
            total += info.file_size
            if total > MAX_TOTAL_BYTES:
                raise ValueError(f"files total more than {MAX_TOTAL_BYTES} bytes")
            try:
                raw = archive.read(info)
            except (zipfile.BadZipFile, *_ENTRY_ERRORS) as exc:
                raise ValueError(f"file {go_quote(path)} cannot be extracted") from exc
            try:
                texts[path] = raw.decode("utf-8")
            except UnicodeDecodeError:
                binaries.append((info, raw))
                continue
    return texts, binaries


def _modes(data: bytes) -> dict[str, int]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {
            normalize_path(i.filename): (i.external_attr >> 16) & 0o7777
            for i in archive.infolist()
            if not i.is_dir()
        }


def merge_archive(files: Mapping[str, str], old: bytes) -> bytes:
    """Build the archive of *files* on top of the *old* archive.

    The old archive's non-UTF-8 files are kept as they were (bytes, header,
    mode); its text files absent from *files* are dropped; a replaced file
    keeps its old mode.

    Raises:
        ValueError: as `build_archive` and `read_archive`.
    """
    clean = normalize_files(files)
    _, binaries = _read_entries(old)
    modes = _modes(old)
    entries: dict[str, tuple[zipfile.ZipInfo, bytes]] = {}
    for info, raw in binaries:
        entries[normalize_path(info.filename)] = (info, raw)
    for path, content in clean.items():
        mode = modes.get(path) or _DEFAULT_MODE
        entries[path] = (_info(path, mode), content.encode("utf-8"))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(entries):
            info, raw = entries[path]
            archive.writestr(info, raw, compress_type=info.compress_type)
    return _check_archive_size(buffer.getvalue())
