"""The sandbox contract for the data libraries: numpy, pandas and matplotlib work, and the
walls stand with them loaded. Every implementation must pass these (see
conftest.IMPLEMENTATIONS); the E2B stand-in runs them with this interpreter's libraries."""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest

from engine.sandbox import Sandbox

pytestmark = pytest.mark.asyncio

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SALES = b"region,units,price\nnorth,3,2.5\nsouth,1,10\nnorth,2,2.5\neast,4,1\n"
TIMEOUT_S = 30  # loading the libraries takes a second or two on a busy machine


async def test_pandas_reads_an_input_csv_and_groups_it(sandbox: Sandbox) -> None:
    code = (
        "import pandas as pd\n"
        "df = pd.read_csv('sales.csv')\n"
        "df['revenue'] = df.units * df.price\n"
        "result = df.groupby('region')['revenue'].sum().to_dict()\n"
    )
    result = await sandbox.run(code, files={"sales.csv": SALES}, timeout_s=TIMEOUT_S)
    assert result.error is None, result.stderr
    assert result.value == {"east": 4.0, "north": 12.5, "south": 10.0}


async def test_a_matplotlib_chart_saved_in_out_comes_back_as_png(sandbox: Sandbox) -> None:
    code = (
        "import matplotlib.pyplot as plt\n"
        "fig, ax = plt.subplots()\n"
        "ax.bar(['north', 'south'], [12.5, 10])\n"
        "ax.set_title('Revenue')\n"
        "fig.savefig('out/chart.png')\n"
        "result = plt.get_backend()\n"
    )
    result = await sandbox.run(code, timeout_s=TIMEOUT_S)
    assert result.error is None, result.stderr
    assert result.value.lower() == "agg"
    [chart] = result.files
    assert (chart.name, chart.media_type) == ("chart.png", "image/png")
    assert chart.data.startswith(PNG_SIGNATURE)


async def test_pandas_plots_through_matplotlib_without_importing_it(sandbox: Sandbox) -> None:
    code = (
        "import pandas as pd\n"
        "df = pd.read_csv('sales.csv')\n"
        "ax = df.groupby('region')['units'].sum().plot.bar()\n"
        "ax.figure.savefig('out/units.svg')\n"
    )
    result = await sandbox.run(code, files={"sales.csv": SALES}, timeout_s=TIMEOUT_S)
    assert result.error is None, result.stderr
    assert [(f.name, f.media_type) for f in result.files] == [("units.svg", "image/svg+xml")]
    assert b"<svg" in result.files[0].data


async def test_numpy_computes(sandbox: Sandbox) -> None:
    code = (
        "import numpy as np\n"
        "a = np.arange(12, dtype=float).reshape(3, 4)\n"
        "result = [float(a.sum()), np.linalg.matrix_rank(a).item(), a.mean(axis=0).tolist()]\n"
    )
    result = await sandbox.run(code, timeout_s=TIMEOUT_S)
    assert result.error is None, result.stderr
    assert result.value == [66.0, 2, [4.0, 5.0, 6.0, 7.0]]


@pytest.mark.parametrize(
    "code",
    [
        "pd.read_csv('http://example.com/data.csv')",
        "pd.io.common.urlopen('http://example.com/data.csv')",
        "import random\nrandom._os.system('true')",
        "import matplotlib\nmatplotlib.subprocess.run(['true'])",
        # the ctypes numpy loaded before the walls went up: its calls are refused
        "np._core._internal.ctypes.CDLL(None)",
        "pd.read_csv('/etc/passwd')",
    ],
    ids=["read_csv-url", "urlopen", "os.system", "subprocess", "ctypes", "read-outside"],
)
async def test_the_walls_stand_with_the_data_libraries_loaded(
    sandbox: Sandbox, code: str
) -> None:
    result = await sandbox.run("import numpy as np\nimport pandas as pd\n" + code,
                               timeout_s=TIMEOUT_S)
    assert result.error is not None
    assert "not allowed" in result.error, result.error


async def test_numpy_finds_ctypes_unavailable(sandbox: Sandbox) -> None:
    code = "import numpy as np\nnp.ctypeslib.load_library('libc.so.6', '/lib')"
    result = await sandbox.run(code, timeout_s=TIMEOUT_S)
    assert result.error == "ImportError: ctypes is not available."


async def test_pandas_cannot_write_outside_the_sandbox_directory(sandbox: Sandbox) -> None:
    path = f"/tmp/evobot-escape-{uuid.uuid4().hex}.csv"
    code = f"import pandas as pd\npd.DataFrame({{'a': [1]}}).to_csv({path!r})"
    result = await sandbox.run(code, timeout_s=TIMEOUT_S)
    assert result.error is not None
    assert result.error.startswith("PermissionError: writing outside the sandbox directory")
    assert not await asyncio.to_thread(os.path.exists, path)


@pytest.mark.parametrize("module", ["PIL", "unittest", "dateutil", "matplotlib_inline"])
async def test_what_the_libraries_use_cannot_be_imported_by_name(
    sandbox: Sandbox, module: str
) -> None:
    result = await sandbox.run(f"import pandas\nimport {module}", timeout_s=TIMEOUT_S)
    assert result.error == f"ImportError: module {module!r} is not allowed"


@pytest.mark.parametrize(
    "code",
    [
        "block = np.ones(8 * 1024 ** 3, dtype=np.uint8)",
        "blocks = []\nwhile True:\n    blocks.append(np.ones(16 * 1024 * 1024, dtype=np.uint8))",
    ],
    ids=["one-block", "growing"],
)
async def test_a_numpy_memory_bomb_is_contained(sandbox: Sandbox, code: str) -> None:
    result = await sandbox.run("import numpy as np\n" + code, memory_mb=128, timeout_s=TIMEOUT_S)
    assert result.error == "memory limit exceeded"
    assert (await sandbox.run("result = 'alive'")).value == "alive"


async def test_a_stdlib_only_run_does_not_load_the_data_libraries(sandbox: Sandbox) -> None:
    code = "import random\nresult = sorted({'numpy', 'pandas'} & set(random._os.sys.modules))"
    result = await sandbox.run(code)
    assert result.error is None, result.stderr
    assert result.value == []
