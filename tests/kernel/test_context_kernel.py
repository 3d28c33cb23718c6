"""{Err} and a frame's variables in a real kernel."""

from __future__ import annotations

from typing import Any

import pytest

from chatmagic.testing import FakeEndpoint


@pytest.mark.kernel
def test_err_and_a_frame_in_a_kernel(endpoint: FakeEndpoint, clean_env: Any) -> None:
    from kernel import run_cells

    pytest.importorskip("pandas")
    run_cells(["%load_ext chatmagic",
               "import pandas as pd\n"
               "df = pd.DataFrame({'n': range(1000), 'w': [i * 0.5 for i in range(1000)]})",
               "1/0",
               "[][1]",
               "%%chat -m echo\nwhy? {Err[3]}",
               "%%chat -m echo\nand {Err} with {df}"],
              env={"OPENAI_BASE_URL": endpoint.base_url})
    first, second = [r.body["messages"][-1]["content"] for r in endpoint.chat_requests]
    assert "Cell In[3] raised ZeroDivisionError: division by zero" in first
    assert "1/0" in first and "IndexError" not in first and "\x1b[" not in first
    assert "Cell In[4] raised IndexError" in second and "\x1b[" not in second
    assert "DataFrame: 1,000 rows × 2 columns" in second
    assert "n (int64), w (float64)" in second and len(second) < 4000
