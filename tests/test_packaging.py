"""What the wheel ships: the three packages, and no test double or test code."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_wheel_ships_the_product_and_no_test_double(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True,
    )
    (wheel,) = tmp_path.glob("evobot-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/")[0] for name in names if "/" in name}
    assert {"engine", "adapters", "bot"} <= top_level
    assert not top_level & {"doubles", "tests", "bench", "scripts"}
    assert not [n for n in names if Path(n).stem.startswith("double")]
    assert "adapters/slack/manifest.yml" in names  # shipped data the README points to
