"""`fpslink serve`'s helpers that need no server."""

from __future__ import annotations

import socket

import pytest

from fpslink import serving


@pytest.mark.parametrize(
    ("level", "shown"),
    [("debug", True), ("info", True), ("INFO", True), ("warning", False), ("error", False)],
)
def test_access_lines_only_at_a_level_that_shows_them(level: str, shown: bool) -> None:
    assert serving.access_log(level) is shown


def test_a_port_in_use_is_refused_before_any_worker_starts() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError):
            serving.ensure_free("127.0.0.1", taken.getsockname()[1])
