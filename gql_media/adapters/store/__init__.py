"""The only package that speaks SQL: the index, sync jobs, media fields and API reads."""

from __future__ import annotations

from gql_media.adapters.store.db import Db
from gql_media.adapters.store.index import IndexStore
from gql_media.adapters.store.jobs import SqlJobStore
from gql_media.adapters.store.migrate import migrate

__all__ = ["Db", "IndexStore", "SqlJobStore", "migrate"]
