"""Tests for course_lib.download: caching, checksums and offline behaviour, all without a network."""

import errno
import hashlib
import os

import pytest

from course_lib import download
from course_lib.download import fetch, get_cache_dir, sha256_of


def _served_file(tmp_path, payload=b"some bytes to download\n" * 100):
    """A file:// URL to a freshly written file and its independently computed digest."""
    source = tmp_path / "server" / "data.bin"
    source.parent.mkdir()
    source.write_bytes(payload)
    return source.as_uri(), hashlib.sha256(payload).hexdigest(), payload


def test_fetch_downloads_verifies_and_caches(tmp_path):
    url, digest, payload = _served_file(tmp_path)
    cache = tmp_path / "cache"
    path = fetch(url, digest, cache_dir=cache, filename="data.bin")
    assert path == cache / "data.bin"
    assert path.read_bytes() == payload
    # Once cached, the source may disappear: no second download happens.
    (tmp_path / "server" / "data.bin").unlink()
    assert fetch(url, digest, cache_dir=cache, filename="data.bin") == path
    assert not list(cache.glob("*.part")), "temporary files must not be left behind"


def test_filename_defaults_to_last_part_of_url(tmp_path):
    url, digest, _ = _served_file(tmp_path)
    assert fetch(url, digest.upper(), cache_dir=tmp_path / "c").name == "data.bin"


def test_wrong_checksum_is_rejected_and_nothing_is_kept(tmp_path):
    url, digest, _ = _served_file(tmp_path)
    cache = tmp_path / "cache"
    wrong = "0" * 64
    with pytest.raises(ValueError, match="SHA-256"):
        fetch(url, wrong, cache_dir=cache, filename="data.bin")
    assert list(cache.iterdir()) == []


def test_corrupted_cache_is_downloaded_again(tmp_path):
    url, digest, payload = _served_file(tmp_path)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "data.bin").write_bytes(b"truncated")
    assert fetch(url, digest, cache_dir=cache, filename="data.bin").read_bytes() == payload


def test_offline_without_cache_says_what_to_do(tmp_path):
    missing = (tmp_path / "nowhere" / "data.bin").as_uri()
    with pytest.raises(ConnectionError, match="could not download") as info:
        fetch(missing, "a" * 64, cache_dir=tmp_path / "cache", filename="data.bin")
    assert str(tmp_path / "cache" / "data.bin") in str(info.value)


def test_failed_downloads_close_their_files_and_remove_them(tmp_path):
    """Each attempt opens a temporary file; a failure must close it, or a notebook that
    retries runs out of file descriptors. Twenty failures would leave twenty open."""
    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc/self/fd to count open files")
    missing = (tmp_path / "nowhere" / "data.bin").as_uri()
    cache = tmp_path / "cache"
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        with pytest.raises(ConnectionError):
            fetch(missing, "a" * 64, cache_dir=cache, filename="data.bin")
    assert len(os.listdir("/proc/self/fd")) == before
    assert list(cache.iterdir()) == []


def test_a_full_disk_is_not_reported_as_a_network_problem(tmp_path, monkeypatch):
    """The temporary file is redirected to /dev/full, where every write fails with ENOSPC:
    the error must say so, not tell the user to connect to the internet."""
    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full to simulate a full disk")
    url, digest, _ = _served_file(tmp_path, payload=b"x" * (3 * download._CHUNK))
    real_mkstemp = download.tempfile.mkstemp

    def mkstemp_on_full_disk(*args, **kwargs):
        fd, name = real_mkstemp(*args, **kwargs)
        full = os.open("/dev/full", os.O_WRONLY)
        os.dup2(full, fd)
        os.close(full)
        return fd, name

    monkeypatch.setattr(download.tempfile, "mkstemp", mkstemp_on_full_disk)
    with pytest.raises(OSError) as info:
        fetch(url, digest, cache_dir=tmp_path / "cache", filename="data.bin")
    assert not isinstance(info.value, ConnectionError)     # ConnectionError is an OSError too
    assert info.value.errno == errno.ENOSPC
    assert list((tmp_path / "cache").iterdir()) == []


def test_offline_with_valid_cache_needs_no_network(tmp_path, monkeypatch):
    payload = b"cached content"
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "f.txt").write_bytes(payload)

    def no_network(*args, **kwargs):
        raise AssertionError("fetch must not open a connection when the cache is valid")

    monkeypatch.setattr(download.urllib.request, "urlopen", no_network)
    path = fetch("http://example.invalid/f.txt", hashlib.sha256(payload).hexdigest(),
                 cache_dir=cache)
    assert path.read_bytes() == payload


@pytest.mark.parametrize("bad", ["abc", "g" * 64, "0" * 63])
def test_malformed_checksum_is_a_value_error(tmp_path, bad):
    with pytest.raises(ValueError, match="64 hexadecimal"):
        fetch("file:///dev/null", bad, cache_dir=tmp_path)


def test_filename_must_not_contain_a_folder(tmp_path):
    with pytest.raises(ValueError, match="plain file name"):
        fetch("file:///dev/null", "0" * 64, cache_dir=tmp_path, filename="../escape")


def test_cache_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(download.CACHE_ENV, str(tmp_path / "env-cache"))
    assert get_cache_dir() == tmp_path / "env-cache"
    assert (tmp_path / "env-cache").is_dir()
    assert get_cache_dir(tmp_path / "explicit") == tmp_path / "explicit"


def test_sha256_of_matches_hashlib(tmp_path):
    data = bytes(range(256)) * 5000   # larger than one read chunk
    (tmp_path / "f").write_bytes(data)
    assert sha256_of(tmp_path / "f") == hashlib.sha256(data).hexdigest()
