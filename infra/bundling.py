"""Build the Lambda code asset without Docker: the ``functions/`` tree plus Linux ARM64 wheels.

``make bundle`` (``python -m infra.bundling``) copies ``functions/`` into ``build/lambda/`` and
pip-installs ``requirements.txt`` next to it as binary wheels for the Lambda platform (python3.12 on
ARM64), so the host's OS and Python version do not matter and nothing is compiled.

Synthesis never runs pip and needs no network: :func:`code_asset_dir` returns the bundle only when it is
complete and built from the current sources and requirements, and otherwise falls back to
``functions/`` alone. That fallback is enough to synthesise and test the stack but lacks the
third-party packages, so the stack warns about it and ``make deploy`` always bundles first.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from fnmatch import fnmatch
from pathlib import Path

from infra import FUNCTIONS_DIR, REPO_ROOT

BUILD_DIR = REPO_ROOT / "build" / "lambda"
REQUIREMENTS = REPO_ROOT / "requirements.txt"
# Written last, holding the fingerprint of what was bundled: an interrupted or outdated bundle is never used.
MARKER = ".syncline-bundle"
# The Lambda python3.12 runtime (Amazon Linux 2023, glibc 2.34) on Graviton. manylinux_2_28 as well as
# manylinux2014 (glibc 2.17): pymssql and psycopg-binary publish their aarch64 wheels for 2.28 only.
PLATFORM_ARGS = (
    "--platform",
    "manylinux2014_aarch64",
    "--platform",
    "manylinux_2_28_aarch64",
    "--implementation",
    "cp",
    "--python-version",
    "3.12",
    "--only-binary=:all:",
)
IGNORED = ("__pycache__", "*.pyc", ".mypy_cache", ".pytest_cache", ".ruff_cache")


def pip_command(target: Path, requirements: Path = REQUIREMENTS) -> list[str]:
    """The pip invocation that installs the runtime requirements into ``target`` for the Lambda platform."""
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        *PLATFORM_ARGS,
        "--target",
        str(target),
        "--requirement",
        str(requirements),
        # .pyc files compiled by the host's Python would be for the wrong version: dead weight.
        "--no-compile",
        "--disable-pip-version-check",
    ]


def _source_files(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        parts = path.relative_to(root).parts
        if path.is_file() and not any(fnmatch(part, pattern) for part in parts for pattern in IGNORED):
            yield path


def fingerprint(functions_dir: Path = FUNCTIONS_DIR, requirements: Path = REQUIREMENTS) -> str:
    """A digest of everything a bundle is built from: sources, requirements and target platform."""
    digest = hashlib.sha256(" ".join(PLATFORM_ARGS).encode())
    digest.update(requirements.read_bytes())
    for path in _source_files(functions_dir):
        digest.update(path.relative_to(functions_dir).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def build_asset(
    out: Path = BUILD_DIR,
    *,
    functions_dir: Path = FUNCTIONS_DIR,
    requirements: Path = REQUIREMENTS,
) -> Path:
    """Rebuild ``out`` from scratch as a deployable Lambda asset and return it.

    Needs pip and access to the package index; raises ``subprocess.CalledProcessError`` if pip fails,
    leaving ``out`` without its marker so that synthesis will not use it.
    """
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(functions_dir, out, ignore=shutil.ignore_patterns(*IGNORED))
    # The command is built from fixed arguments and our own paths, never from user input.
    subprocess.run(pip_command(out, requirements), check=True)  # noqa: S603
    (out / MARKER).write_text(fingerprint(functions_dir, requirements) + "\n", encoding="utf-8")
    return out


def code_asset_dir(
    build_dir: Path = BUILD_DIR,
    *,
    functions_dir: Path = FUNCTIONS_DIR,
    requirements: Path = REQUIREMENTS,
) -> Path:
    """The folder to use as the Lambda code asset: the bundle if it is current, else ``functions/``."""
    marker = build_dir / MARKER
    if marker.is_file() and marker.read_text(encoding="utf-8").strip() == fingerprint(functions_dir, requirements):
        return build_dir
    return functions_dir


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m infra.bundling [--out DIR]``: build the asset and print where it is."""
    parser = argparse.ArgumentParser(prog="python -m infra.bundling", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=BUILD_DIR, help=f"asset folder (default: {BUILD_DIR})")
    args = parser.parse_args(argv)
    out = build_asset(args.out)
    sys.stdout.write(f"Lambda asset ready: {out}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
