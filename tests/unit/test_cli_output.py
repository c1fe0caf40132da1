"""The CLI consoles print message text as it is."""

from __future__ import annotations

import pytest

from provisioner.cli import output


def test_emoji_codes_stay_text(capsys: pytest.CaptureFixture[str]) -> None:
    # A parse error names "<file>:100:", which rich would turn into an emoji by default.
    output.stdout().print("zone.db:100: unknown rdatatype")
    output.stderr().print("zone.db:100: unknown rdatatype")
    captured = capsys.readouterr()
    assert "zone.db:100: unknown rdatatype" in captured.out
    assert "zone.db:100: unknown rdatatype" in captured.err
