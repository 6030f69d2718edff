"""A server's services hand the GIL over after ``SERVER_SWITCH_INTERVAL_S``, and give the old interval back."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from gql_media.services import SERVER_SWITCH_INTERVAL_S, open_services
from gql_media.settings import Settings


async def test_a_server_sets_the_switch_interval_while_its_services_are_open(tmp_path: Path, library: Path) -> None:
    # SQLite: the setting is the process's, whatever the database.
    settings = Settings(roots=[library], data_dir=tmp_path / "data", watch=False)
    before_s = sys.getswitchinterval()
    assert before_s != pytest.approx(SERVER_SWITCH_INTERVAL_S)
    async with open_services(settings, media=False, serve=True):
        assert sys.getswitchinterval() == pytest.approx(SERVER_SWITCH_INTERVAL_S)
    assert sys.getswitchinterval() == before_s
    # The CLI's scan (not a server) leaves it alone.
    async with open_services(settings, media=False):
        assert sys.getswitchinterval() == before_s
