"""Reading a built site's files back in tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class SiteFiles:
    """Mixed into a test's record of a built site: ``out`` is the site's folder."""

    out: Path

    def json(self, rel: str) -> Any:
        return json.loads((self.out / rel).read_text())

    def html(self, rel: str) -> str:
        return (self.out / rel).read_text()
