"""A client of a running gql_media server, over its GraphQL API only (never its database).

``gql-media sync``, ``watch`` and ``status`` are built on it (``gql_media.client.commands``).
"""

from __future__ import annotations

from gql_media.client.connection import ClientError, GraphQLClient, ServerAddress

__all__ = ["ClientError", "GraphQLClient", "ServerAddress"]
