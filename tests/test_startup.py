"""Start-up of the read commands: what `show`, `diff` and `request` do not import.

At small sizes a read command is mostly Python starting and importing
(issue 14: `show --json` must be 30x faster than `saved_model_cli show
--all`, ~0.085 s of CPU). Each module kept off the path here was measured
to cost milliseconds of every call; these tests keep it off.
"""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import FIXTURE_MODELS, REPO


def _modules_after(*args: str) -> set[str]:
    """The modules a whole `python -m smsurgery ARGS` process imported (it must succeed)."""
    code = (
        "import sys, runpy\n"
        f"sys.argv = ['smsurgery', *{list(args)!r}]\n"
        "try:\n    runpy.run_module('smsurgery', run_name='__main__')\n"
        "except SystemExit as stop:\n    assert stop.code in (None, 0, 1), stop.code\n"
        "sys.stderr.write('MODULES ' + ' '.join(sorted(sys.modules)) + '\\n')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = [text for text in proc.stderr.splitlines() if text.startswith("MODULES ")][-1]
    return set(line.split()[1:])


def test_local_reads_do_not_import_the_storage_package() -> None:
    model = str(FIXTURE_MODELS / "tf1_linear")
    for args in (("show", "--json", model), ("diff", model, model)):
        imported = _modules_after(*args)
        assert "smsurgery.core.model" in imported
        assert not {m for m in imported if m.startswith("smsurgery.storage")}, args


def test_the_cheap_url_check_knows_the_schemes_storage_reads() -> None:
    from smsurgery.core.layout import REMOTE_SCHEMES, is_remote_text
    from smsurgery.storage.url import SCHEMES, is_remote

    assert set(REMOTE_SCHEMES) == set(SCHEMES)
    for text in ("s3://b/m", "gs://b/m@3", "s3:/b", "s3", "models/s3://x", "file://x", "", "gs://"):
        assert is_remote_text(text) == is_remote(text), text
