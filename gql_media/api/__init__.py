"""The GraphQL and HTTP transport: translates requests to the services, holds no business rules."""

from __future__ import annotations

from gql_media.api.http import routes
from gql_media.api.schema import create_schema, export_sdl

__all__ = ["create_schema", "export_sdl", "routes"]
