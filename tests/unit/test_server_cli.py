"""``vcf-server``: its help texts list every variable ``Settings`` reads, and each subcommand runs its entry point."""

from __future__ import annotations

import pytest

from server import main as server
from worker.settings import Settings


def _help(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as exit_:
        server.main([*argv, "--help"])
    assert exit_.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("argv", [(), ("dev",), ("worker",), ("api",)])
def test_help_lists_every_settings_variable(capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]) -> None:
    text = _help(capsys, *argv)
    names = [field.validation_alias for field in Settings.model_fields.values()]
    assert len(names) == len(set(names)) > 10
    for name in names:
        assert isinstance(name, str)
        assert f"  {name} " in text, f"{name} missing from vcf-server {' '.join(argv)} --help"
    assert "VCF_LOG_LEVEL" in text and "VCF_SEEDS_DIR" in text


def test_each_subcommand_delegates_to_its_entry_point(monkeypatch: pytest.MonkeyPatch) -> None:
    import api.main
    import worker.dev
    import worker.main

    ran = []
    for module, name in ((worker.dev, "dev"), (worker.main, "worker"), (api.main, "api")):
        monkeypatch.setattr(module, "main", lambda name=name: ran.append(name))
    for name in ("dev", "worker", "api"):
        server.main([name])
    assert ran == ["dev", "worker", "api"]


def test_no_subcommand_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        server.main([])
    assert exit_.value.code == 2
