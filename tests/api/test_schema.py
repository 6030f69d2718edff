"""The committed schema.graphql is the live schema, and holds the public API's names."""

from __future__ import annotations

from pathlib import Path

from graphql import build_schema

from gql_media.api.schema import export_sdl

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schema.graphql"

# The outline's names (a few per type): renaming or dropping one breaks clients.
REQUIRED_FIELDS = {
    "Query": {"node", "roots", "folder", "videos", "watcher", "syncJobs", "currentSync"},
    "Mutation": {"syncLibrary", "cancelSync", "startWatcher", "stopWatcher", "regenerateThumbnail", "mergeHls"},
    "Subscription": {"syncProgress", "libraryChanged", "watcherStatus"},
    "Folder": {
        "id", "name", "path", "rootPath", "parent", "folders", "videos", "entries", "descendants",
        "videoCount", "totalSize", "modifiedAt",
    },
    "Video": {
        "id", "name", "path", "rootPath", "folder", "size", "modifiedAt", "createdAt", "durationSeconds", "width",
        "height", "videoCodec", "audioCodec", "container", "status", "error", "thumbnailUrl", "streamUrl",
    },
    "TreeEntryEdge": {"cursor", "node", "parentId"},
    "VideoConnection": {"edges", "pageInfo", "totalCount"},
    "SyncProgress": {"sequence", "jobId", "state", "phase", "done", "total", "elapsedSeconds"},
    "LibraryChange": {"sequence", "kind", "id", "path", "oldPath", "rootPath", "entry", "jobId"},
    "MergeResult": {"playlistPath", "outputPath", "ok", "sourceDeleted", "error"},
}  # fmt: skip
REQUIRED_ENUMS = {
    "VideoStatus": {"PENDING", "READY", "BROKEN"},
    "ChangeKind": {"ADDED", "UPDATED", "REMOVED", "MOVED", "RESYNC"},
    "SyncPhase": {"SCANNING", "DIFFING", "WRITING", "PROBING", "THUMBNAILS", "MERGING", "DONE"},
    "VideoOrderField": {"NAME", "MODIFIED_AT", "SIZE", "DURATION"},
}


def test_committed_schema_is_the_live_schema() -> None:
    assert SCHEMA_FILE.read_text() == export_sdl(), "schema.graphql is stale: run `make schema`"


def test_schema_keeps_the_public_names() -> None:
    schema = build_schema(export_sdl())
    for type_name, fields in REQUIRED_FIELDS.items():
        graphql_type = schema.get_type(type_name)
        assert graphql_type is not None, type_name
        assert fields <= set(graphql_type.fields), (type_name, fields - set(graphql_type.fields))  # type: ignore[union-attr]
    for enum_name, values in REQUIRED_ENUMS.items():
        assert values <= set(schema.get_type(enum_name).values), enum_name  # type: ignore[union-attr]
    assert {t.name for t in schema.get_type("TreeEntry").types} == {"Folder", "Video"}  # type: ignore[union-attr]
    assert schema.get_type("Long") is not None and schema.get_type("DateTime") is not None
    assert {"Folder", "Video", "SyncJob"} <= {t.name for t in schema.get_possible_types(schema.get_type("Node"))}  # type: ignore[arg-type]
