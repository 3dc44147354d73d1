"""Query parameters of a paged list, bounded so no value reaches the database out of range."""

from __future__ import annotations

from typing import Annotated

from litestar.params import QueryParameter

#: The largest ``offset`` a list accepts: past any real list, and inside PostgreSQL's bigint.
MAX_OFFSET = 1_000_000_000

Offset = Annotated[int, QueryParameter(name="offset", ge=0, le=MAX_OFFSET)]
