"""The CLI's shape: it teaches (--help), it talks only to Validator, and --block reaches
every command (``labels`` included)."""

from __future__ import annotations

import argparse
import ast
import json
import re
import tomllib
from pathlib import Path

import pytest
from conftest import ScriptedServer

import kgqa_validator
from kgqa_validator._version import __version__
from kgqa_validator.cli import EXIT_INVALID, build_parser, main
from kgqa_validator.errors import KgqaValidatorError, UsageError

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "kgqa_validator"


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def test_every_option_of_every_command_has_help() -> None:
    parser = build_parser()
    missing = []
    for name, command in {"": parser, **_subparsers(parser)}.items():
        for action in command._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            if not action.help or action.help == argparse.SUPPRESS:
                missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
    assert missing == []


def test_every_command_has_a_description_and_an_example() -> None:
    for name, command in _subparsers(build_parser()).items():
        assert command.description, name
        assert command.epilog and "examples:" in command.epilog, name
        assert f"kgqa-validator {name}" in command.epilog, name


def test_top_level_help_lists_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for code in ("0 ", "1 ", "2 ", "130 "):
        assert re.search(rf"^\s+{code}", out, re.M), code
    assert "check" in out and "rerank" in out


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_the_cli_never_imports_builtin_plugins() -> None:
    sources = sorted((PACKAGE / "cli").glob("*.py"))
    assert sources
    for source in sources:
        assert not [m for m in _imports(source) if m.startswith("kgqa_validator.builtin")], source


def test_config_and_types_import_no_engine_package() -> None:
    for name in ("config.py", "types.py"):
        for engine in ("model", "parsing", "execution"):
            assert not [m for m in _imports(PACKAGE / name)
                        if m.startswith(f"kgqa_validator.{engine}")], (name, engine)


def test_usage_error_is_in_the_one_exception_tree() -> None:
    assert issubclass(UsageError, KgqaValidatorError)
    assert kgqa_validator.UsageError is UsageError


def test_version_has_one_source() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert "version" in project.get("dynamic", [])
    assert kgqa_validator.__version__ == __version__


def test_labels_honours_block_endpoint_labels(canary: ScriptedServer, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({"Q42": "Douglas Adams"}), encoding="utf-8")
    code = main(["labels", "Q42", "Q5", "--labels", str(labels), "--endpoint", canary.url,
                 "--cache-dir", str(tmp_path), "--block", "endpoint_labels", "--no-plugins",
                 "--json"])
    assert code == EXIT_INVALID  # Q5 has no label: the files do not have it
    data = json.loads(capsys.readouterr().out)
    assert data["endpoint"] is None  # nothing was asked
    assert data["ids"] == [{"id": "Q42", "label": "Douglas Adams", "known": None},
                           {"id": "Q5", "label": None, "known": None}]
    assert canary.requests == []


def test_labels_with_endpoint_labels_blocked_needs_no_contact(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Without the block the Wikidata endpoint needs --contact (a one-line error); blocked,
    # nothing would be sent, so nothing is required.
    code = main(["labels", "Q42", "--cache-dir", str(tmp_path), "--contact", "",
                 "--block", "endpoint_labels", "--no-plugins"])
    assert code == EXIT_INVALID
    assert capsys.readouterr().out.strip() == "Q42\t-\tno English label"


def test_every_dependency_has_an_upper_bound() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    project = pyproject["project"]
    requirements = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        requirements.extend(extra)
    unbounded = [r for r in requirements if "<" not in r and "==" not in r]
    assert unbounded == []
