"""Download a file once into a cache folder and check its SHA-256 checksum.

Everything the course downloads (text8, MNIST) goes through :func:`fetch`, so
every data set lands in one cache folder and a corrupted or truncated download
is caught before it is used. The cache folder is ``$COURSE_LIB_CACHE`` when that
variable is set, else ``~/.cache/course_lib``.
"""

import hashlib
import http.client
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from contextlib import closing
from pathlib import Path

#: Environment variable that overrides the default cache folder.
CACHE_ENV = "COURSE_LIB_CACHE"

_CHUNK = 1 << 20  # read and hash 1 MiB at a time, so big files never sit in memory


def get_cache_dir(path=None):
    """The cache folder as a ``Path``, created if missing.

    ``path`` wins when given; otherwise ``$COURSE_LIB_CACHE``; otherwise
    ``~/.cache/course_lib``.
    """
    if path is None:
        path = os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "course_lib"
    path = Path(path).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def sha256_of(path):
    """The SHA-256 digest of the file at ``path``, as 64 lower-case hex digits."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_sha256(sha256):
    sha256 = str(sha256).strip().lower()
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ValueError(f"sha256 must be 64 hexadecimal digits, got {sha256!r}")
    return sha256


def _download(url, timeout, target):
    """The bytes at ``url``, in blocks of ``_CHUNK``.

    A failure to connect or to read becomes a ConnectionError that says where
    to put the file by hand (``target``); what the caller does with the blocks
    (writing them to disk) is outside this generator, so its errors keep their own type.
    """
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            yield from iter(lambda: response.read(_CHUNK), b"")
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        raise ConnectionError(
            f"could not download {url} ({exc}). There is no verified copy in the "
            f"cache either: connect to the internet once, or download the file by "
            f"hand and save it as {target}") from exc


def fetch(url, sha256, cache_dir=None, filename=None, timeout=60):
    """Return the path of a cached copy of ``url``, downloading it on first use.

    The file is stored as ``cache_dir / filename`` (``filename`` defaults to the
    last part of the URL). A cached file is used only when its SHA-256 digest
    equals ``sha256``; otherwise it is downloaded again into a temporary file,
    hashed while it streams, and moved into place only when the digest matches,
    so an interrupted download never leaves a half-written file under the final
    name.

    Args:
        url: where to download from (``http(s)://`` or ``file://``).
        sha256: the expected SHA-256 digest, 64 hex digits.
        cache_dir: folder for the file (default: see :func:`get_cache_dir`).
        filename: name of the file in that folder.
        timeout: seconds to wait for the server to answer.

    Returns:
        ``pathlib.Path`` of the verified file.

    Raises:
        ValueError: the checksum argument is malformed, or the downloaded
            file's digest differs from ``sha256``.
        ConnectionError: the download failed (e.g. no network) and no valid
            cached copy exists; the message says where to put the file by hand.
        OSError: the file could not be written (a full disk, say), as the
            system reports it; the partial file is removed.
    """
    sha256 = _check_sha256(sha256)
    folder = get_cache_dir(cache_dir)
    filename = filename or url.rstrip("/").rsplit("/", 1)[-1]
    if not filename or "/" in filename or "\\" in filename:
        raise ValueError(f"filename must be a plain file name, got {filename!r}")
    target = folder / filename
    if target.exists() and sha256_of(target) == sha256:
        return target

    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(prefix=filename + ".", suffix=".part", dir=folder)
    try:
        # The file and the connection are closed whatever fails below.
        with os.fdopen(fd, "wb") as out, closing(_download(url, timeout, target)) as blocks:
            for block in blocks:
                digest.update(block)
                out.write(block)                # a full disk raises its own OSError
        got = digest.hexdigest()
        if got != sha256:
            raise ValueError(
                f"the file downloaded from {url} has SHA-256 {got}, expected {sha256}: "
                "the download is corrupted or the file on the server changed")
        shutil.move(tmp_name, target)
    finally:
        if os.path.exists(tmp_name):
            os.remove(tmp_name)
    return target
