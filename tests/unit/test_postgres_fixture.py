"""Where PostgreSQL's server binaries are missing, the tests that need them fail saying how to
install them; they are never skipped."""

from __future__ import annotations

import pytest

from tests import postgres


def test_missing_server_binaries_fail_with_how_to_install_them(monkeypatch):
    monkeypatch.setattr(postgres.shutil, "which", lambda name: None)
    with pytest.raises(pytest.fail.Exception, match=r"apt-get install -y postgresql"):
        postgres.server_binaries()
