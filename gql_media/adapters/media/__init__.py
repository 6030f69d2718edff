"""The media adapter on PyAV: probing, thumbnails and HLS merging in a pool of worker processes.

The only package importing ``av`` (and Pillow for images). Its modules:
- ``pool``: worker processes running a table of named operations (imports no ``av``);
- ``tool``: ``PyAvMediaTool``, the ``MediaTool`` port on that pool, and ``MEDIA_OPERATIONS``;
- ``probe``, ``thumbnail``, ``remux`` (HLS merge): the operations, run inside a worker;
  ``hls_reader`` reads a download's track as one stream, ``decrypt`` its AES-128 segments
  (the one module importing ``cryptography``);
- ``placeholder``: the image shown for a video without a thumbnail (drawn by a worker).

Importing this package imports neither ``av`` nor Pillow: the operations import them when they
first run, in a worker; the server's process never does (its imports are its start-up time).
"""

from gql_media.adapters.media.pool import Operation, OperationTable, WorkerCrashed, WorkerFailure, WorkerStarved
from gql_media.adapters.media.tool import MEDIA_OPERATIONS, PyAvMediaTool
from gql_media.core.thumbnails import thumbnail_suffix

__all__ = [
    "MEDIA_OPERATIONS",
    "Operation",
    "OperationTable",
    "PyAvMediaTool",
    "WorkerCrashed",
    "WorkerFailure",
    "WorkerStarved",
    "thumbnail_suffix",
]
