"""What a DVC remote holds, asked of DVC's object database in-process, at a cost that follows the
question, never the remote: `oids_exist` lists the WHOLE remote once it is asked about thousands
of objects; here an object is asked about on its own (in parallel, DVC's `jobs`), or, when that
takes fewer requests, only the 2-character hash prefixes that hold the objects asked about are
listed.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

from .dvc import _on_remote


@dataclass(frozen=True)
class Manifest:
    """A directory out's `.dir` manifest: the object ids of the files it lists."""

    oid: str
    files: frozenset[str]
    read_from_remote: bool  # then the remote holds the manifest: reading it proved it


@dataclass(frozen=True)
class Presence:
    """Which of the objects asked about the remote holds, and what asking cost."""

    present: frozenset[str]
    asked: int
    exists_calls: int  # one request each
    prefixes_listed: int  # one listing each (a page per 1,000 objects under the prefix)


def _can_list_prefixes(fs) -> bool:
    """Object stores (S3, GCS, Azure) list a key prefix in pages; other remotes (local, SSH,
    WebDAV, HTTP) would walk folders, so they are asked object by object."""
    from dvc_objects.fs.base import ObjectFileSystem

    return isinstance(fs, ObjectFileSystem) and bool(getattr(fs, "CAN_TRAVERSE", False))


def _listed(odb, prefixes: list[str], jobs: int) -> set[str]:
    """The object ids under these 2-character prefixes (each listed on its own, never the root)."""
    paths = [odb.fs.join(odb.path, prefix) for prefix in prefixes]
    found = set()
    for path in odb.fs.find(paths, prefix=True, batch_size=jobs):
        with contextlib.suppress(ValueError):  # not an object's path
            found.add(odb.path_to_oid(path))
    return found


def _existing(odb, oids: set[str], jobs: int) -> set[str]:
    """Those of `oids` the remote holds, one existence call each. fsspec's `exists` answers False
    for ANY error (a server that is down, a refused connection): when some are said to be missing,
    one of them is looked up with `info`, which raises everything but a real absence (then the
    caller's retries and exit 3 apply)."""
    if not oids:
        return set()
    found = set(odb.list_oids_exists(sorted(oids), jobs=jobs))
    absent = sorted(oids - found)
    if absent:
        try:
            odb.fs.info(odb.oid_to_path(absent[0]))
        except FileNotFoundError:
            return found  # the remote answered: not there
        raise ConnectionError(f"{len(absent)} existence checks failed, though the remote holds one of them")
    return found


def present_objects(odb, oids: Collection[str]) -> Presence:
    """Which of `oids` `odb` holds, in as few requests as the question allows.

    Per-object existence calls below a page's worth of objects (1,000), when the objects asked
    about are no more than the prefixes they fall in, or when the remote cannot list a prefix. Otherwise the prefix holding most of them is
    listed first: its size (pages of 1,000) prices listing each other needed prefix against one
    call per remaining object, and the cheaper is taken.
    """
    wanted = set(oids)
    jobs = odb.fs.jobs
    by_prefix: dict[str, set[str]] = {}
    for oid in wanted:
        by_prefix.setdefault(oid[:2], set()).add(oid)
    # Below a page's worth of objects, existence calls never cost much more than listings, and a
    # probe listing (1/256 of the remote, whatever its size) could cost far more.
    if len(wanted) < odb.fs.LIST_OBJECT_PAGE_SIZE or len(wanted) <= len(by_prefix) or not _can_list_prefixes(odb.fs):
        return Presence(frozenset(_existing(odb, wanted, jobs)), len(wanted), len(wanted), 0)
    probe = max(by_prefix, key=lambda prefix: (len(by_prefix[prefix]), prefix))
    listed = _listed(odb, [probe], jobs)
    found = by_prefix[probe] & listed
    rest = wanted - by_prefix[probe]
    others = sorted(set(by_prefix) - {probe})
    pages = max(1, math.ceil(len(listed) / odb.fs.LIST_OBJECT_PAGE_SIZE))
    if others and len(others) * pages < len(rest):
        found |= rest & _listed(odb, others, jobs)
        return Presence(frozenset(found), len(wanted), 0, 1 + len(others))
    found |= _existing(odb, rest, jobs)
    return Presence(frozenset(found), len(wanted), len(rest), 1)


def _read_manifest(source, oid: str) -> tuple[bytes, list[dict]]:
    """A `.dir` manifest's bytes and its entries, read as plain JSON (DVC's Tree builds a trie of
    the paths too, 2-3x the time for a manifest of 50,000 files); FileNotFoundError when `source`
    lacks it, ObjectFormatError when it is not a manifest."""
    import json

    from dvc_objects.errors import ObjectFormatError

    with source.fs.open(source.oid_to_path(oid), mode="rb") as stream:
        raw = stream.read()
    try:
        entries = json.loads(raw)
        if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
            raise TypeError("not a list of entries")
        return raw, entries
    except (ValueError, TypeError) as error:
        raise ObjectFormatError(f"{oid} is not a directory manifest") from error


def _load_manifest(source, oid: str) -> frozenset[str]:
    """The object ids a `.dir` manifest lists (see _read_manifest)."""
    return frozenset(str(entry["md5"]) for entry in _read_manifest(source, oid)[1] if entry.get("md5"))


@dataclass(frozen=True)
class ManifestListing:
    """A `.dir` manifest as the remote holds it: the md5 of its bytes (DVC names a directory by
    it, so a manifest whose bytes do not hash to its name was changed) and its files."""

    md5: str
    files: tuple[tuple[str, str], ...]  # (relative path, md5)


class RemoteObjects:
    """One DVC remote's object database (and the local cache, for manifests), opened once; every
    call on the remote retried through dvc._on_remote (exit 3 when it stays down, exit 2 at once
    when the remote rejects the credentials)."""

    def __init__(self, repo: Path, remote: str, endpoint: str, dvc_repo) -> None:
        self._repo, self._remote, self._endpoint = repo, remote, endpoint
        self._local = dvc_repo.cache.local
        self._odb = _on_remote(repo, remote, endpoint, "open", lambda: dvc_repo.cloud.get_remote_odb(remote, "status"))

    def manifest(self, oid: str) -> Manifest | None:
        """The `.dir` manifest `oid`, from the local cache, else the remote; None when neither has it
        (or it is not a manifest)."""
        return self.manifests([oid])[oid]

    def manifests(self, oids: Collection[str]) -> dict[str, Manifest | None]:
        """Several manifests (see `manifest`), those not in the local cache fetched at once."""
        from concurrent.futures import ThreadPoolExecutor

        from dvc_objects.errors import ObjectFormatError

        found: dict[str, Manifest | None] = {}
        for oid in dict.fromkeys(oids):
            with contextlib.suppress(FileNotFoundError, ObjectFormatError):
                found[oid] = Manifest(oid, _load_manifest(self._local, oid), False)
        remote = [oid for oid in dict.fromkeys(oids) if oid not in found]

        def one(oid: str) -> Manifest | None:
            try:
                return Manifest(oid, _load_manifest(self._odb, oid), True)
            except (FileNotFoundError, ObjectFormatError):
                return None

        def fetch() -> dict[str, Manifest | None]:
            if len(remote) < 2:
                return {oid: one(oid) for oid in remote}
            with ThreadPoolExecutor(max_workers=min(len(remote), 8)) as pool:
                return dict(zip(remote, pool.map(one, remote), strict=True))

        if remote:
            found |= _on_remote(self._repo, self._remote, self._endpoint, "read a manifest from", fetch)
        return found

    def object_digests(self, oid: str) -> tuple[str, str] | None:
        """(md5, sha256) of the bytes the remote holds for object `oid`, streamed (a model may be
        big); None when the remote lacks it."""
        import hashlib

        def read() -> tuple[str, str] | None:
            md5, sha256 = hashlib.md5(usedforsecurity=False), hashlib.sha256()
            try:
                with self._odb.fs.open(self._odb.oid_to_path(oid), mode="rb") as stream:
                    for chunk in iter(lambda: stream.read(1 << 20), b""):
                        md5.update(chunk)
                        sha256.update(chunk)
            except FileNotFoundError:
                return None
            return md5.hexdigest(), sha256.hexdigest()

        return _on_remote(self._repo, self._remote, self._endpoint, "read an object from", read)

    def manifest_listing(self, oid: str) -> ManifestListing | None:
        """The `.dir` manifest `oid` read from the remote (never the local cache: it is the remote's
        copy that is asked about); None when the remote lacks it or it is not a manifest."""
        import hashlib

        from dvc_objects.errors import ObjectFormatError

        def read() -> ManifestListing | None:
            try:
                raw, entries = _read_manifest(self._odb, oid)
                files = tuple((str(entry["relpath"]), str(entry["md5"])) for entry in entries)
            except (FileNotFoundError, ObjectFormatError, KeyError):
                return None
            return ManifestListing(hashlib.md5(raw, usedforsecurity=False).hexdigest(), files)

        return _on_remote(self._repo, self._remote, self._endpoint, "read a manifest from", read)

    def present(self, oids: Collection[str]) -> Presence:
        """Which of `oids` the remote holds (see present_objects)."""
        if not oids:
            return Presence(frozenset(), 0, 0, 0)
        return _on_remote(
            self._repo, self._remote, self._endpoint, "check what is on", lambda: present_objects(self._odb, oids)
        )


@contextlib.contextmanager
def remote_objects(repo: Path, remote: str, endpoint: str) -> Iterator[RemoteObjects]:
    """The remote's objects for the span of one check (one DVC repo, one filesystem client)."""
    from dvc.repo import Repo

    dvc_repo = _on_remote(repo, remote, endpoint, "open", lambda: Repo(str(repo)))
    try:
        yield RemoteObjects(repo, remote, endpoint, dvc_repo)
    finally:
        dvc_repo.close()
