"""The attest-build-provenance stand-in's body (test-only; see action.yml): resolve the subjects
as the real action does, then record the statement it would sign."""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import sys

PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
MAX_SUBJECTS = 1024  # the real action's limit
DIGEST = re.compile(r"([0-9a-fA-F]{64}|[0-9a-fA-F]{128})")


def fail(message: str) -> None:
    print(f"::error::attest-build-provenance stand-in: {message}")
    sys.exit(1)


def from_paths(spec: str) -> list[dict]:
    subjects = []
    for pattern in filter(None, (part.strip() for part in re.split(r"[\n,]", spec))):
        files = [path for path in sorted(glob.glob(pattern, recursive=True)) if os.path.isfile(path)]
        if not files:
            fail(f"could not find subject at path {pattern}")
        for path in files:
            with open(path, "rb") as handle:
                digest = hashlib.file_digest(handle, "sha256").hexdigest()
            subjects.append({"name": os.path.basename(path), "digest": {"sha256": digest}})
    return subjects


def from_checksums(path: str) -> list[dict]:
    if not os.path.isfile(path):
        fail(f"subject checksums file not found: {path}")
    subjects = []
    with open(path, encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        digest, _, name = line.partition(" ")
        name = name[1:] if name[:1] in (" ", "*") else name
        if not DIGEST.fullmatch(digest) or not name:
            fail(f"{path} line {number} is not '<digest>  <name>': {line!r}")
        algorithm = "sha256" if len(digest) == 64 else "sha512"
        subjects.append({"name": name, "digest": {algorithm: digest.lower()}})
    return subjects


def main() -> None:
    given = {name: os.environ[f"STAND_IN_SUBJECT_{name.upper()}"].strip() for name in ("path", "digest", "checksums")}
    chosen = [name for name, value in given.items() if value]
    if len(chosen) != 1:
        fail("one of subject-path, subject-digest, or subject-checksums must be provided")
    if os.environ["STAND_IN_PUSH_TO_REGISTRY"] == "true":
        fail("push-to-registry needs an image registry; there is none offline")
    if given["path"]:
        subjects = from_paths(given["path"])
    elif given["checksums"]:
        subjects = from_checksums(given["checksums"])
    else:
        algorithm, _, digest = given["digest"].partition(":")
        name = os.environ["STAND_IN_SUBJECT_NAME"].strip()
        if not name or algorithm not in ("sha256", "sha512") or not DIGEST.fullmatch(digest):
            fail("subject-digest must be 'sha256:<hex>', with subject-name")
        subjects = [{"name": name, "digest": {algorithm: digest.lower()}}]
    if not subjects or len(subjects) > MAX_SUBJECTS:
        fail(f"{len(subjects)} subjects; between 1 and {MAX_SUBJECTS} are attested")
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": subjects,
        "predicateType": PREDICATE_TYPE,
        "workflowRef": os.environ.get("GITHUB_WORKFLOW_REF", ""),
    }
    record = os.environ.get("ATTEST_STAND_IN_RECORD")
    if not record:
        fail("ATTEST_STAND_IN_RECORD is not set (the test names the file to record in)")
    with open(record, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(statement) + "\n")
    with open(os.environ["GITHUB_OUTPUT"], "a", encoding="utf-8") as handle:
        handle.write(f"bundle-path={record}\n")
    print(f"actions/attest-build-provenance stand-in: recorded {len(subjects)} subject(s) in {record}")


if __name__ == "__main__":
    main()
