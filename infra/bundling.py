"""Build the Lambda code asset without Docker: the ``functions/`` tree plus Linux ARM64 wheels.

``make bundle`` (``python -m infra.bundling``) copies ``functions/`` into ``build/lambda/`` and
pip-installs ``requirements.txt`` next to it as binary wheels for the Lambda platform (python3.12 on
ARM64), so the host's OS and Python version do not matter and nothing is compiled from C.

Then every module is compiled to python3.12 bytecode (``compileall`` with ``unchecked-hash``
invalidation, by a Python 3.12 interpreter). Lambda's code folder is read-only, so a module without
bytecode is compiled from source at every cold start and the result thrown away; boto3, botocore and
pydantic alone are hundreds of modules. ``unchecked-hash`` bytecode is used without comparing the
source's timestamp, which the asset's zip does not preserve; the bundle is rebuilt from scratch, so
bytecode and source cannot drift apart. Without a Python 3.12 on the host the bundle is still
complete, only slower to start, and the build says so.

Synthesis never runs pip and needs no network: :func:`code_asset_dir` returns the bundle only when it is
complete and built from the current sources and requirements, and otherwise falls back to
``functions/`` alone. That fallback is enough to synthesise and test the stack but lacks the
third-party packages, so the stack warns about it and ``make deploy`` always bundles first.
"""

from __future__ import annotations

import argparse
import hashlib
import os
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
LAMBDA_PYTHON = "3.12"
LAMBDA_TASK_ROOT = "/var/task"  # where Lambda unpacks the asset: tracebacks name files under it
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


def compile_command(target: Path, python: str) -> list[str]:
    """Compile every module under ``target`` to bytecode Lambda uses as it is (see the module docstring)."""
    return [
        python,
        "-m",
        "compileall",
        "-q",
        "-j",
        "0",
        "--invalidation-mode",
        "unchecked-hash",
        "-s",
        str(target),
        "-p",
        LAMBDA_TASK_ROOT,
        str(target),
    ]


def lambda_python() -> str | None:
    """A Python of the Lambda runtime's version on this host (``SYNCLINE_BUNDLE_PYTHON`` first), if any runs."""
    for candidate in (os.environ.get("SYNCLINE_BUNDLE_PYTHON"), shutil.which(f"python{LAMBDA_PYTHON}")):
        if candidate and _is_lambda_python(candidate):
            return candidate
    return None


def _is_lambda_python(python: str) -> bool:
    """Whether ``python`` runs and is the runtime's version (a pyenv shim may exist and still refuse)."""
    probe = "import sys; print('%d.%d' % sys.version_info[:2])"
    try:
        ran = subprocess.run([python, "-c", probe], capture_output=True, text=True, timeout=30, check=False)  # noqa: S603
    except (OSError, subprocess.TimeoutExpired):
        return False
    return ran.returncode == 0 and ran.stdout.strip() == LAMBDA_PYTHON


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
    python: str | None = None,
) -> Path:
    """Rebuild ``out`` from scratch as a deployable Lambda asset and return it.

    Needs pip and access to the package index; raises ``subprocess.CalledProcessError`` if pip or the
    bytecode compilation fails, leaving ``out`` without its marker so that synthesis will not use it.
    ``python`` compiles the bytecode (default: :func:`lambda_python`; none found: no bytecode, a warning).
    """
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(functions_dir, out, ignore=shutil.ignore_patterns(*IGNORED))
    # The commands are built from fixed arguments and our own paths, never from user input.
    subprocess.run(pip_command(out, requirements), check=True)  # noqa: S603
    compiler = python or lambda_python()
    if compiler is None:
        sys.stderr.write(
            f"warning: no python{LAMBDA_PYTHON} on this machine, so the bundle has no bytecode and every cold start "
            f"compiles its modules; install Python {LAMBDA_PYTHON} or set SYNCLINE_BUNDLE_PYTHON and bundle again\n"
        )
    else:
        subprocess.run(compile_command(out, compiler), check=True)  # noqa: S603
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
