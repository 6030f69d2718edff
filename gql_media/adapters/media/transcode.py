"""Playback's worker pool: ``SegmentWorkers`` on PyAV, in worker processes of its own.

Transcoding has a pool apart from the index's probes and thumbnails (``PyAvMediaTool``): a
minute of transcoding never holds up a thumbnail, and a sync's thumbnails never hold up a
viewer's next segment. Each replica opens its own (followers too): a viewer is served by the
replica it talks to. Workers start with the first call, so a server nobody watches spends nothing.
"""

from __future__ import annotations

import types

from gql_media.adapters.media.pool import OperationTable, WorkerPool
from gql_media.adapters.media.tool import setup_media_worker
from gql_media.core.playback import SegmentSpec, SourceStreams, SubtitleStream
from gql_media.core.ports import MediaError

__all__ = ["TRANSCODE_OPERATIONS", "PyAvSegmentWorkers"]


# The operations import PyAV when they first run, i.e. in a worker only (see ``tool``).


def probe_streams_operation(path: str | bytes) -> dict[str, object]:
    """The "probe_streams" operation: ``SourceStreams`` fields of one file."""
    from gql_media.adapters.media.playback_probe import probe_streams
    from gql_media.adapters.media.probe import av_errors

    with av_errors():
        return probe_streams(path)


def segment_operation(spec: SegmentSpec) -> dict[str, object]:
    """The "segment" operation: one MPEG-TS segment or fMP4 fragment (see ``segments.make_segment``)."""
    from gql_media.adapters.media.probe import av_errors
    from gql_media.adapters.media.segments import make_segment

    with av_errors():
        return make_segment(spec)


def init_segment_operation(spec: SegmentSpec) -> dict[str, object]:
    """The "init_segment" operation: the init segment of an fMP4 stream (see ``segments.make_init_segment``)."""
    from gql_media.adapters.media.probe import av_errors
    from gql_media.adapters.media.segments import make_init_segment

    with av_errors():
        return make_init_segment(spec)


def subtitle_operation(path: str | bytes, stream_index: int, output_path: str) -> int:
    """The "subtitle" operation: an embedded text subtitle stream as WebVTT."""
    from gql_media.adapters.media.playback_probe import make_subtitle_vtt
    from gql_media.adapters.media.probe import av_errors

    with av_errors():
        return make_subtitle_vtt(path, stream_index, output_path)


TRANSCODE_OPERATIONS: OperationTable = types.MappingProxyType(
    {
        "probe_streams": probe_streams_operation,
        "segment": segment_operation,
        "init_segment": init_segment_operation,
        "subtitle": subtitle_operation,
    }
)


def _streams_from(value: object) -> SourceStreams:
    if not isinstance(value, dict):
        raise MediaError("the playback probe returned nothing")
    subtitles = tuple(SubtitleStream(**item) for item in value.get("subtitles", ()))
    return SourceStreams(**{**value, "subtitles": subtitles})


class PyAvSegmentWorkers(WorkerPool):
    """Implements ``core.streaming.SegmentWorkers`` in ``workers`` processes of its own.

    Args:
        workers: processes: segments made at once (settings.transcode_workers, the service's slots) plus
            one, so that probes and subtitles never wait behind segments.
        timeout_s: the longest one segment may take (settings.media_timeout_s).
        operations: what the workers run; ``TRANSCODE_OPERATIONS`` unless a test adds its own.
    """

    def __init__(
        self,
        workers: int = 1,
        timeout_s: float = 60.0,
        operations: OperationTable | None = None,
    ) -> None:
        table = TRANSCODE_OPERATIONS if operations is None else operations
        super().__init__(table, workers, timeout_s, setup=setup_media_worker)

    async def _run(self, operation: str, *args: object) -> object:
        kind, value = await self.call(operation, *args)
        if kind != "ok":
            raise MediaError(str(value))
        return value

    async def probe_streams(self, path: str | bytes) -> SourceStreams:
        return _streams_from(await self._run("probe_streams", path))

    async def make_segment(self, spec: SegmentSpec) -> None:
        await self._run("segment", spec)

    async def make_init_segment(self, spec: SegmentSpec) -> None:
        await self._run("init_segment", spec)

    async def make_subtitle(self, path: str | bytes, stream_index: int, output_path: str) -> None:
        await self._run("subtitle", path, stream_index, output_path)
