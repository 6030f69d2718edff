"""gql_media: a GraphQL server for a local video library."""

__version__ = "0.1.0"
__all__ = ["__version__"]
