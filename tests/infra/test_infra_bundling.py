"""The Lambda asset: built with pip for the Lambda platform, used by synthesis only when current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from infra import bundling


@pytest.fixture
def sources(tmp_path: Path) -> tuple[Path, Path]:
    """A small functions/ tree and requirements file standing in for the real ones."""
    functions = tmp_path / "functions"
    (functions / "handlers").mkdir(parents=True)
    (functions / "handlers" / "poller.py").write_text("def handler(event, context): ...\n")
    (functions / "syncline.toml").write_text('app = "syncline"\n')
    (functions / "handlers" / "__pycache__").mkdir()
    (functions / "handlers" / "__pycache__" / "poller.cpython-312.pyc").write_bytes(b"\0")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("pydantic==2.14.3\n")
    return functions, requirements


@pytest.fixture
def pip_calls(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Record pip invocations instead of running them (no network in tests); other commands really run.

    The stand-in for the installed packages is one small module, so the bytecode step has work to do.
    """
    calls: list[list[str]] = []
    real_run = subprocess.run

    def fake_run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
        if command[1:4] != ["-m", "pip", "install"]:
            return real_run(command, **kwargs)
        assert kwargs.get("check") is True
        calls.append(command)
        target = Path(command[command.index("--target") + 1])
        (target / "pydantic").mkdir()
        (target / "pydantic" / "__init__.py").write_text("VERSION = '2.14.3'\n")
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(bundling.subprocess, "run", fake_run)
    monkeypatch.delenv("SYNCLINE_BUNDLE_PYTHON", raising=False)
    return calls


def test_pip_installs_binary_wheels_for_lambda_python312_on_arm64(tmp_path: Path) -> None:
    command = bundling.pip_command(tmp_path / "out", tmp_path / "requirements.txt")
    joined = " ".join(command)
    assert "--platform manylinux2014_aarch64" in joined
    assert "--platform manylinux_2_28_aarch64" in joined  # pymssql, psycopg-binary
    assert "--implementation cp" in joined
    assert "--python-version 3.12" in joined
    assert "--only-binary=:all:" in command
    assert command[command.index("--target") + 1] == str(tmp_path / "out")
    assert command[command.index("--requirement") + 1] == str(tmp_path / "requirements.txt")


def test_without_a_bundle_synthesis_uses_the_functions_tree(sources: tuple[Path, Path], tmp_path: Path) -> None:
    functions, requirements = sources
    chosen = bundling.code_asset_dir(tmp_path / "build", functions_dir=functions, requirements=requirements)
    assert chosen == functions


def test_a_built_bundle_holds_the_code_and_dependencies_and_is_used(
    sources: tuple[Path, Path], tmp_path: Path, pip_calls: list[list[str]]
) -> None:
    functions, requirements = sources
    out = bundling.build_asset(
        tmp_path / "build", functions_dir=functions, requirements=requirements, python=sys.executable
    )
    assert len(pip_calls) == 1
    assert (out / "handlers" / "poller.py").is_file()
    assert (out / "syncline.toml").is_file()
    assert (out / "pydantic").is_dir()
    # The source tree's stale cache is not copied; bytecode is compiled afresh, for the interpreter given.
    cached = sorted(path.relative_to(out).as_posix() for path in out.rglob("*.pyc"))
    tag = sys.implementation.cache_tag
    assert cached == [f"handlers/__pycache__/poller.{tag}.pyc", f"pydantic/__pycache__/__init__.{tag}.pyc"]
    assert bundling.code_asset_dir(out, functions_dir=functions, requirements=requirements) == out


def test_bytecode_is_used_without_checking_the_source_and_names_lambdas_paths(
    sources: tuple[Path, Path], tmp_path: Path, pip_calls: list[list[str]]
) -> None:
    functions, requirements = sources
    out = bundling.build_asset(
        tmp_path / "build", functions_dir=functions, requirements=requirements, python=sys.executable
    )
    pyc = (out / "handlers" / "__pycache__" / f"poller.{sys.implementation.cache_tag}.pyc").read_bytes()
    # PEP 552 header flags: bit 0 hash-based, bit 1 check_source. The zip of the asset loses timestamps.
    assert int.from_bytes(pyc[4:8], "little") == 0b01
    assert bundling.LAMBDA_TASK_ROOT.encode() + b"/handlers/poller.py" in pyc


def test_without_the_runtimes_python_the_bundle_is_complete_and_says_it_starts_slower(
    sources: tuple[Path, Path],
    tmp_path: Path,
    pip_calls: list[list[str]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    functions, requirements = sources
    monkeypatch.setattr(bundling, "lambda_python", lambda: None)
    out = bundling.build_asset(tmp_path / "build", functions_dir=functions, requirements=requirements)
    assert not list(out.rglob("*.pyc"))
    assert "no python3.12" in capsys.readouterr().err
    assert bundling.code_asset_dir(out, functions_dir=functions, requirements=requirements) == out


def test_a_python_of_another_version_is_not_taken_for_the_runtimes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNCLINE_BUNDLE_PYTHON", sys.executable)  # 3.11 here: not the runtime's 3.12
    monkeypatch.setattr(bundling.shutil, "which", lambda name: None)
    if sys.version_info[:2] != (3, 12):
        assert bundling.lambda_python() is None
    else:
        assert bundling.lambda_python() == sys.executable


@pytest.mark.parametrize(
    "change",
    [
        lambda functions, _: (functions / "handlers" / "poller.py").write_text("def handler(e, c): return 1\n"),
        lambda functions, _: (functions / "handlers" / "new.py").write_text(""),
        lambda _, requirements: requirements.write_text("pydantic==2.15.0\n"),
    ],
    ids=["edited source", "added source", "changed requirements"],
)
def test_an_outdated_bundle_is_not_used(
    sources: tuple[Path, Path], tmp_path: Path, pip_calls: list[list[str]], change: Any
) -> None:
    functions, requirements = sources
    out = bundling.build_asset(tmp_path / "build", functions_dir=functions, requirements=requirements)
    change(functions, requirements)
    assert bundling.code_asset_dir(out, functions_dir=functions, requirements=requirements) == functions


def test_caches_do_not_make_a_bundle_outdated(
    sources: tuple[Path, Path], tmp_path: Path, pip_calls: list[list[str]]
) -> None:
    functions, requirements = sources
    out = bundling.build_asset(tmp_path / "build", functions_dir=functions, requirements=requirements)
    (functions / "handlers" / "__pycache__" / "new.cpython-312.pyc").write_bytes(b"\1")
    assert bundling.code_asset_dir(out, functions_dir=functions, requirements=requirements) == out


def test_a_failed_pip_leaves_no_usable_bundle(
    sources: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    functions, requirements = sources

    def failing_run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
        raise subprocess.CalledProcessError(1, command)

    monkeypatch.setattr(bundling.subprocess, "run", failing_run)
    with pytest.raises(subprocess.CalledProcessError):
        bundling.build_asset(tmp_path / "build", functions_dir=functions, requirements=requirements)
    chosen = bundling.code_asset_dir(tmp_path / "build", functions_dir=functions, requirements=requirements)
    assert chosen == functions


def test_the_cli_builds_into_the_requested_folder(
    tmp_path: Path, pip_calls: list[list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    assert bundling.main(["--out", str(tmp_path / "asset")]) == 0
    assert (tmp_path / "asset" / "handlers").is_dir()  # the real functions/ tree was copied
    assert (tmp_path / "asset" / bundling.MARKER).is_file()
    assert str(tmp_path / "asset") in capsys.readouterr().out
