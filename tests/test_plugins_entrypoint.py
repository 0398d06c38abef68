"""Entry-point plugins, with the first-party distribution under plugins/ installed for real.

``kgqa-validator-wikidata-style`` is its own distribution: when it is not installed, this
module installs it with pip into a throwaway target folder (never into the running
environment, which the tests must leave as they found it), puts that folder on ``sys.path``
and on the CLI's ``PYTHONPATH``, and then loads it through the ``kgqa_validator`` entry-point
group, exactly as any third-party plugin.  Broken plugins
are real distributions too: a ``*.dist-info`` folder on ``sys.path`` whose entry point names a
module that is missing or raises (importlib.metadata reads them like any installed package).
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest

from kgqa_validator import PluginLoadError, Settings, Severity, Validator
from kgqa_validator.plugins import get_plugin_manager

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_DIR = ROOT / "plugins" / "kgqa-validator-wikidata-style"
DIST = "kgqa-validator-wikidata-style"
NAME = "wikidata_style"
ENV_NAMES = ("KGQA_VALIDATOR_DISABLE_PLUGIN_AUTOLOAD", "KGQA_VALIDATOR_BLOCK_PLUGINS",
             "KGQA_VALIDATOR_STRICT_PLUGINS")
NO_MODEL = ["scoring", "execute", "endpoint_labels"]


_TARGET: list[Path] = []  # the throwaway install folder, when this module made one


@pytest.fixture(scope="module", autouse=True)
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[metadata.Distribution]:
    """The plugin's distribution: the installed one, else one pip installs into a temporary
    target folder that is on ``sys.path`` for this module only."""
    try:
        yield metadata.distribution(DIST)
        return
    except metadata.PackageNotFoundError:
        pass
    target = tmp_path_factory.mktemp("plugin-target")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--target", str(target),  # never the venv
         "--quiet", "--no-deps", "--no-build-isolation", "--no-index", str(PLUGIN_DIR)],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    sys.path.insert(0, str(target))
    _TARGET.append(target)
    importlib.invalidate_caches()
    try:
        yield metadata.distribution(DIST)
    finally:
        _TARGET.clear()
        sys.path.remove(str(target))
        for module in [m for m in sys.modules if m.split(".")[0] == "kgqa_wikidata_style"]:
            del sys.modules[module]
        importlib.invalidate_caches()


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)


def cli(*args: str, env: dict[str, str] | None = None,
        pythonpath: Path | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in ENV_NAMES}
    environment.update(env or {})
    extra = [str(p) for p in (pythonpath, *_TARGET) if p is not None]
    if extra:
        environment["PYTHONPATH"] = os.pathsep.join(
            [*extra, *filter(None, [environment.get("PYTHONPATH")])])
    return subprocess.run([sys.executable, "-m", "kgqa_validator.cli", *args],
                          capture_output=True, text=True, env=environment, timeout=120)


def fake_distribution(folder: Path, name: str, entry_points: dict[str, str],
                      modules: dict[str, str] | None = None) -> Path:
    """A minimal installed distribution in ``folder`` (put the folder on sys.path)."""
    info = folder / f"{name.replace('-', '_')}-9.9.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 9.9\n")
    lines = "".join(f"{key} = {value}\n" for key, value in entry_points.items())
    (info / "entry_points.txt").write_text(f"[kgqa_validator]\n{lines}")
    for module, source in (modules or {}).items():
        (folder / f"{module}.py").write_text(textwrap.dedent(source))
    return folder


@pytest.fixture
def broken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Three broken plugins: a missing module, a module that raises, a taken name."""
    folder = fake_distribution(
        tmp_path / "site", "kgqa-broken-example",
        {"broken_missing": "kgqa_no_such_module_anywhere",
         "broken_raises": "kgqa_raising_plugin",
         "lints": "kgqa_raising_plugin"},
        {"kgqa_raising_plugin": "raise RuntimeError('this plugin cannot start')\n"})
    monkeypatch.syspath_prepend(str(folder))
    return folder


# -- the distribution ---------------------------------------------------------------------------


def test_the_plugin_is_a_separate_distribution(installed: metadata.Distribution) -> None:
    assert installed.metadata["Name"] == DIST
    assert installed.version == "0.1.0"
    (entry_point,) = [e for e in installed.entry_points if e.group == "kgqa_validator"]
    assert (entry_point.name, entry_point.value) == (NAME, "kgqa_wikidata_style")
    assert metadata.distribution("kgqa-validator").metadata["Name"] != DIST


def test_loaded_through_its_entry_point() -> None:
    pm = get_plugin_manager(block=NO_MODEL)
    plugin = pm.get_plugin(NAME)
    assert plugin is importlib.import_module("kgqa_wikidata_style")
    assert pm.origins[NAME] == (DIST, "0.1.0")
    info = {i.name: i for i in pm.describe()}[NAME]
    assert (info.version, info.origin, info.hooks) == ("0.1.0", DIST, ("kgqa_check",))
    assert pm.failures == []


def test_its_lints_run_in_the_pipeline() -> None:
    validator = Validator(Settings(), block=NO_MODEL)
    (assessment,) = validator.check(["SELECT *\nWHERE { ?s rdfs:label ?l }"])
    found = {d.code: d for d in assessment.diagnostics if d.producer == NAME}
    assert set(found) == {"missing_limit", "label_language"}
    assert (found["missing_limit"].line, found["missing_limit"].column) == (1, 8)
    label = found["label_language"]
    assert (label.line, label.column, label.excerpt) == (2, 12, "rdfs:label")
    assert all(d.severity is Severity.WARNING for d in found.values())
    assert assessment.valid  # style warnings never reject a query
    (fine,) = validator.check(['SELECT ?l WHERE { ?s rdfs:label ?l FILTER(LANG(?l) = "en") } LIMIT 5'])
    assert not [d for d in fine.diagnostics if d.producer == NAME]


def test_cli_lists_it_with_its_version() -> None:
    done = cli("plugins")
    assert done.returncode == 0, done.stderr
    line = next(line for line in done.stdout.splitlines() if line.startswith(NAME))
    assert "0.1.0" in line and DIST in line and "kgqa_check" in line
    listed = json.loads(cli("plugins", "--json").stdout)
    entry = next(p for p in listed["plugins"] if p["name"] == NAME)
    assert entry == {"name": NAME, "version": "0.1.0", "origin": DIST, "hooks": ["kgqa_check"]}


# -- blocking and autoload ----------------------------------------------------------------------


def test_blocked_by_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KGQA_VALIDATOR_BLOCK_PLUGINS", f"other,{NAME}")
    pm = get_plugin_manager(block=NO_MODEL)
    assert pm.get_plugin(NAME) is None and pm.get_plugin("parse") is not None
    done = cli("plugins", env={"KGQA_VALIDATOR_BLOCK_PLUGINS": NAME})
    assert done.returncode == 0 and NAME not in done.stdout and "parse" in done.stdout


def test_blocked_by_argument() -> None:
    assert get_plugin_manager(block=[NAME]).get_plugin(NAME) is None
    (assessment,) = Validator(block=[*NO_MODEL, NAME]).check(["SELECT * WHERE { ?s ?p ?o }"])
    assert [d.code for d in assessment.diagnostics] == []
    done = cli("check", "--block", NAME, "SELECT * WHERE { ?s ?p ?o }")
    assert done.returncode == 0 and "missing_limit" not in done.stdout
    assert "missing_limit" in cli("check", "SELECT * WHERE { ?s ?p ?o }").stdout


def test_autoload_disabled_by_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KGQA_VALIDATOR_DISABLE_PLUGIN_AUTOLOAD", "1")
    pm = get_plugin_manager()
    assert pm.get_plugin(NAME) is None
    assert pm.get_plugin("lints") is not None  # built-ins are not entry points
    # An explicit argument wins over the environment.
    assert get_plugin_manager(autoload=True).get_plugin(NAME) is not None
    done = cli("plugins", env={"KGQA_VALIDATOR_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert done.returncode == 0 and NAME not in done.stdout


def test_autoload_disabled_by_argument() -> None:
    assert get_plugin_manager(autoload=False).get_plugin(NAME) is None
    done = cli("plugins", "--no-plugins")
    assert done.returncode == 0 and NAME not in done.stdout and "lints" in done.stdout


# -- broken plugins ------------------------------------------------------------------------------


def test_broken_plugins_are_reported_by_name_and_skipped(
        broken: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="kgqa_validator.plugins"):
        pm = get_plugin_manager(block=NO_MODEL)
    failures = {f.name: f.error for f in pm.failures}
    assert set(failures) == {"broken_missing", "broken_raises", "lints"}
    assert failures["broken_missing"].startswith("ModuleNotFoundError")
    assert failures["broken_raises"] == "RuntimeError: this plugin cannot start"
    assert "already taken" in failures["lints"]
    for name in failures:
        assert any(f"'{name}'" in record.getMessage() for record in caplog.records), name
    # Everything else still loaded, and the built-in lints were not replaced.
    assert pm.get_plugin(NAME) is not None
    assert pm.get_plugin("lints") is importlib.import_module("kgqa_validator.builtin.lints")
    (assessment,) = Validator(plugin_manager=pm).check(["SELECT ?x WHERE { ?x wdt:P31 wd:Q5 }"])
    assert assessment.valid


def test_broken_plugins_can_be_blocked(broken: Path) -> None:
    pm = get_plugin_manager(block=[*NO_MODEL, "broken_missing", "broken_raises", "lints"])
    assert pm.failures == []


def test_strict_mode_raises(broken: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(PluginLoadError, match=r"broken_missing|broken_raises|lints"):
        get_plugin_manager(strict=True, block=NO_MODEL)
    monkeypatch.setenv("KGQA_VALIDATOR_STRICT_PLUGINS", "1")
    with pytest.raises(PluginLoadError):
        get_plugin_manager(block=NO_MODEL)
    # Only the broken ones fail strict mode.
    get_plugin_manager(block=[*NO_MODEL, "broken_missing", "broken_raises", "lints"])


def test_cli_reports_broken_plugins(broken: Path) -> None:
    done = cli("plugins", pythonpath=broken)
    assert done.returncode == 0, done.stderr
    failed = [line for line in done.stdout.splitlines() if "FAILED" in line]
    assert sorted(line.split()[0] for line in failed) == ["broken_missing", "broken_raises", "lints"]
    assert NAME in done.stdout
    # A check still works, with a warning per broken plugin on stderr.
    checked = cli("check", "SELECT ?x WHERE { ?x wdt:P31 wd:Q5 }", pythonpath=broken)
    assert checked.returncode == 0
    assert "broken_raises" in checked.stderr and "Traceback" not in checked.stderr
    # In strict mode it is an infrastructure error: exit 2 and one line.
    strict = cli("check", "SELECT ?x WHERE { ?x wdt:P31 wd:Q5 }", pythonpath=broken,
                 env={"KGQA_VALIDATOR_STRICT_PLUGINS": "1"})
    assert strict.returncode == 2
    assert len(strict.stderr.strip().splitlines()) == 1
    assert strict.stderr.startswith("kgqa-validator: error: plugin ")


def test_not_loaded_at_import_time(broken: Path) -> None:
    code = ("import sys, kgqa_validator, kgqa_validator.plugins, kgqa_validator.validator, "
            "kgqa_validator.cli; print('kgqa_wikidata_style' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": str(broken)})
    assert done.returncode == 0 and done.stdout.strip() == "False"
    assert done.stderr == ""  # the broken plugins were never even looked at
