"""Errors a client may see, and the rule that masks every other one."""

from __future__ import annotations

from graphql import GraphQLError

from gql_media.core.ports import StoreUnavailable


class ApiError(Exception):
    """A refusal or a bad argument, told to the client as is (with a machine-readable ``code``)."""

    def __init__(self, message: str, code: str = "BAD_REQUEST") -> None:
        super().__init__(message)
        self.extensions = {"code": code}


def should_mask_error(error: GraphQLError) -> bool:
    """Mask unexpected exceptions (they may hold host paths); keep ours and GraphQL's own."""
    original = error.original_error
    return not (original is None or isinstance(original, ApiError | GraphQLError | StoreUnavailable))
