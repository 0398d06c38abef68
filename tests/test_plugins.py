"""Plugin manager rules for the built-in plugins (entry points: test_plugins_entrypoint.py)."""

from __future__ import annotations

import importlib
from collections.abc import Sequence

import pytest

import kgqa_validator
from kgqa_validator import Candidate, Diagnostic, ParsedQuery, Question, Settings, Severity, hookimpl
from kgqa_validator.plugins import DEFAULT_PLUGINS, get_plugin_manager

BUILTIN_NAMES = [module.rsplit(".", 1)[-1] for module in DEFAULT_PLUGINS]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KGQA_VALIDATOR_DISABLE_PLUGIN_AUTOLOAD", "KGQA_VALIDATOR_BLOCK_PLUGINS",
                 "KGQA_VALIDATOR_STRICT_PLUGINS"):
        monkeypatch.delenv(name, raising=False)


class Extra:
    @hookimpl
    def kgqa_check(self, question: Question, candidate: Candidate, parsed: ParsedQuery,
                   settings: Settings) -> Sequence[Diagnostic]:
        return [Diagnostic("extra", Severity.INFO, "extra was here")]


def test_builtins_are_registered_first_in_their_order() -> None:
    pm = get_plugin_manager(autoload=False)
    names = [name for name, plugin in pm.list_name_plugin() if plugin is not None]
    assert names == BUILTIN_NAMES
    for module, name in zip(DEFAULT_PLUGINS, BUILTIN_NAMES, strict=True):
        assert pm.get_plugin(name) is importlib.import_module(module)


def test_each_call_builds_a_fresh_manager() -> None:
    first = get_plugin_manager(autoload=False)
    second = get_plugin_manager(autoload=False)
    assert first is not second
    first.register(Extra(), name="extra")
    assert first.has_plugin("extra") and not second.has_plugin("extra")


def test_builtins_can_be_left_out() -> None:
    pm = get_plugin_manager(autoload=False, builtins=False)
    assert [p for _, p in pm.list_name_plugin() if p is not None] == []
    assert pm.hook.kgqa_parse.get_hookimpls() == []
    # The contract is there even without implementations.
    assert pm.hook.kgqa_decide.spec is not None


def test_block_a_builtin_by_argument() -> None:
    pm = get_plugin_manager(autoload=False, block=["scoring"])
    assert pm.get_plugin("scoring") is None
    assert pm.is_blocked("scoring")
    # A blocked name stays blocked: registering under it later does nothing.
    from kgqa_validator.builtin import scoring

    assert pm.register(scoring, name="scoring") is None
    assert [i.plugin_name for i in pm.hook.kgqa_score.get_hookimpls()] == ["consensus"]


def test_block_by_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KGQA_VALIDATOR_BLOCK_PLUGINS", " scoring , lints,")
    pm = get_plugin_manager(autoload=False, block=["labels"])
    for name in ("scoring", "lints", "labels"):  # environment and argument together
        assert pm.get_plugin(name) is None, name
    assert pm.get_plugin("parse") is not None


def test_describe_names_versions_and_hooks() -> None:
    pm = get_plugin_manager(autoload=False)
    pm.register(Extra(), name="extra")
    infos = {info.name: info for info in pm.describe()}
    assert infos["parse"].origin == "builtin"
    assert infos["parse"].version == kgqa_validator.__version__
    assert infos["parse"].hooks == ("kgqa_parse",)
    assert infos["lints"].hooks == ("kgqa_check", "kgqa_check_question")
    assert infos["extra"].origin == "runtime" and infos["extra"].hooks == ("kgqa_check",)
    # Built-ins are listed first.
    assert [i.origin for i in pm.describe()][: len(BUILTIN_NAMES)] == ["builtin"] * len(BUILTIN_NAMES)


def test_registering_a_name_twice_is_an_error() -> None:
    pm = get_plugin_manager(autoload=False)
    with pytest.raises(ValueError):
        pm.register(Extra(), name="lints")


def test_builtin_implementations_are_fallbacks() -> None:
    # Every built-in hook implementation is trylast, so that any installed plugin runs first.
    pm = get_plugin_manager(autoload=False)
    for name in BUILTIN_NAMES:
        for caller in pm.get_hookcallers(pm.get_plugin(name)) or ():
            for impl in caller.get_hookimpls():
                if impl.plugin_name == name:
                    assert impl.trylast, f"{name}.{caller.name} is not trylast"


def test_importing_the_package_loads_no_plugin() -> None:
    import subprocess
    import sys

    code = ("import sys, kgqa_validator, kgqa_validator.cli; "
            "print(sorted(m for m in sys.modules if m.startswith('kgqa_validator.builtin')"
            " or m in ('torch', 'sentence_transformers', 'rdflib', 'pyoxigraph')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.strip() == "[]"
