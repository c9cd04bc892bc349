"""Where the runner may cut a stage's endless line to show it: never inside a secret or a URL's
credentials, which would reach the log in two unredacted halves."""

from __future__ import annotations

from ci_helpers.adapters.runner import LONG_LINE_BYTES, _shown_up_to

SECRET = "PLANTED-secret-5150xyz"


def test_output_is_shown_up_to_its_last_newline_and_a_short_partial_line_waits():
    assert _shown_up_to(b"one\ntwo\nthr") == len(b"one\ntwo\n")
    assert _shown_up_to(b"a partial line without its end") == 0


def test_an_endless_line_is_cut_after_its_last_blank():
    data = b"x" * LONG_LINE_BYTES + b" tail" + b"y" * 10
    assert _shown_up_to(data) == LONG_LINE_BYTES + 1


def test_an_endless_line_without_blanks_is_never_cut_inside_a_secret(monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    for shift in range(len(SECRET) + 2):
        data = b"x" * (LONG_LINE_BYTES - shift) + SECRET.encode() + b"z" * (4096 - len(SECRET) + shift)
        cut = _shown_up_to(data)
        secret_at = LONG_LINE_BYTES - shift
        assert 0 < cut <= secret_at or cut >= secret_at + len(SECRET), shift


def test_an_endless_line_without_blanks_is_never_cut_inside_url_credentials():
    url = b"https://bob:pw-12345@host"
    for shift in range(len(url)):
        data = b"x=" * (LONG_LINE_BYTES // 2) + url + b"z" * (4096 - len(url) + shift)
        data = data[: LONG_LINE_BYTES + 4096 + shift]
        cut = _shown_up_to(data)
        at = data.find(b"https://")
        assert cut <= at or cut >= at + len(b"https://bob:pw-12345@"), shift
