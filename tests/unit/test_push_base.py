"""What a base commit's files let the push check trust: only cached outs of stages the base declares."""

from __future__ import annotations

from dvc.utils.serialize import parse_yaml

from ci_helpers.adapters.dvc import committed_remote_urls
from ci_helpers.push_check import _base_stage_outs, _md5_outs


def _stages(text: str) -> object:
    return parse_yaml(text, "dvc.yaml").get("stages")


def test_a_stage_the_base_does_not_declare_is_no_base():
    stages = _stages("stages:\n  prepare:\n    cmd: x\n    outs: [data/clean]\n")

    assert _base_stage_outs(stages, "train", ".") is None
    assert _base_stage_outs(stages, "prepare", ".") == set()


def test_an_out_the_base_declares_uncached_is_named_with_its_wdir():
    stages = _stages(
        "stages:\n  train:\n    wdir: sub\n    cmd: x\n    outs:\n      - model\n      - out:\n          cache: false\n"
        "    metrics:\n      - m.json:\n          cache: false\n"
    )

    assert _base_stage_outs(stages, "train", "sub") == {"sub/out", "sub/m.json"}


def test_a_templated_uncached_out_makes_the_whole_stage_untrusted():
    stages = _stages(
        "stages:\n  train:\n    foreach: [a, b]\n    do:\n      cmd: x\n      outs:\n"
        "        - out/${item}:\n            cache: false\n"
    )

    assert _base_stage_outs(stages, "train@a", ".") is None


def test_foreach_items_are_found_by_their_group():
    stages = _stages(
        "stages:\n  train:\n    foreach: [a, b]\n    do:\n      cmd: x\n      outs:\n        - out/${item}\n"
    )

    assert _base_stage_outs(stages, "train@b", ".") == set()


def test_a_dvc_file_out_with_cache_false_or_a_legacy_hash_is_never_a_base():
    entries = [
        {"path": "kept", "md5": "a" * 32 + ".dir", "hash": "md5"},
        {"path": "uncached", "md5": "b" * 32, "hash": "md5", "cache": False},
        {"path": "legacy", "md5": "c" * 32},
    ]

    from pathlib import PurePosixPath

    assert _md5_outs(entries, PurePosixPath("data")) == {"data/kept": "a" * 32 + ".dir"}


def test_the_committed_remote_urls_are_read_from_the_config_text():
    text = "[core]\n    remote = storage\n['remote \"storage\"']\n    url = s3://bucket/dvc\n"

    assert committed_remote_urls(text) == {"storage": "s3://bucket/dvc"}
    assert committed_remote_urls(None) == {}
    assert committed_remote_urls("not [ a config") == {}
