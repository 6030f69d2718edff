"""The ``MediaTool`` on PyAV: probing, thumbnails and HLS merging in a pool of worker processes.

The only module importing ``av`` (and Pillow for images). Decoding never runs in the server's
process: a busy Python thread there starved a decode 20x (stack-facts), and a decoder that hangs
or crashes must not take the server with it. So each worker is a process on its own pipe; a
call that times out or whose worker dies gets the worker killed and replaced, and the call an
error. Workers are fresh interpreters (``python -c``, ~0.2 s to start) talking over two pipes:
never forks of a threaded server, and unlike multiprocessing's spawn they never re-import the
server's main module.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import errno
import logging
import os
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import av
from PIL import Image, ImageDraw, ImageStat

from gql_media.core.hls import HlsError, HlsPlaylist, free_output_path, temp_path_beside, write_marker
from gql_media.core.models import MediaInfo, VideoStatus
from gql_media.core.ports import MediaError

logger = logging.getLogger(__name__)

__all__ = ["PyAvMediaTool", "WorkerFailure", "ensure_placeholder", "serve_worker", "thumbnail_suffix"]

# A frame darker than this mean luma (0-255) is "near black": fade-ins, title cards.
_BLACK_MEAN_LUMA = 20.0
# Where to look for a thumbnail, as fractions of the duration: ~10% first, later if it is black.
_THUMBNAIL_FRACTIONS = (0.10, 0.25, 0.40, 0.60, 0.80, 0.02)
# Decoding from the keyframe before a position to the position itself costs at most this much.
_MAX_FRAMES_TO_TARGET = 300
# Slack for a merge beyond ``timeout_s``: the time to read the segments at a slow disk's pace.
_MERGE_BYTES_PER_S = 20_000_000
_MERGE_DURATION_TOLERANCE_S = 1.0
_READ_CHUNK_BYTES = 1 << 20

# Decoder names that differ from the codec's name.
_CODEC_NAMES = {"mp3float": "mp3", "libdav1d": "av1", "libopus": "opus", "libvorbis": "vorbis", "libvpx-vp9": "vp9"}


def thumbnail_suffix(image_format: str) -> str:
    """The file suffix of a thumbnail format ("jpeg" or "webp")."""
    return ".webp" if image_format.lower() == "webp" else ".jpg"


# --------------------------------------------------------------------------------------------
# Worker side: plain functions run inside a worker process.


class _Unreadable(Exception):
    """The file cannot be read at all (gone, no permission): not a property of its content."""


def _codec_name(stream: Any) -> str:
    name = str(stream.codec_context.name)
    name = _CODEC_NAMES.get(name, name)
    return name.removesuffix("_fixed")


def _container_name(container: Any, path: str) -> str:
    names = str(container.format.name).split(",")
    suffix = os.path.splitext(path)[1].lower().lstrip(".")
    if suffix in names:
        return suffix
    return "mp4" if "mp4" in names else names[0]


def _broken(reason: str) -> dict[str, Any]:
    return asdict(MediaInfo(status=VideoStatus.BROKEN, error=reason))


def _open_input(path: str | bytes) -> Any:
    """Open a file for reading; maps "cannot read it" to ``_Unreadable``."""
    try:
        return av.open(os.fsdecode(path), metadata_errors="ignore")
    except FileNotFoundError as error:
        raise _Unreadable("file not found") from error
    except PermissionError as error:
        raise _Unreadable("permission denied") from error
    except IsADirectoryError as error:
        raise _Unreadable("is a folder, not a file") from error


def _probe_file(path: str | bytes) -> dict[str, Any]:
    """Probe one file; returns ``MediaInfo`` fields (BROKEN with a reason when undecodable)."""
    try:
        st = os.stat(path)
    except FileNotFoundError as error:
        raise _Unreadable("file not found") from error
    except PermissionError as error:
        raise _Unreadable("permission denied") from error
    size = st.st_size
    # Only a regular file's size means anything (a FIFO is read like a stream, and may hang).
    if size == 0 and stat.S_ISREG(st.st_mode):
        return _broken("empty file")
    try:
        container = _open_input(path)
    except av.error.InvalidDataError:
        return _broken("not a video, or damaged/truncated: its format cannot be read")
    except av.FFmpegError as error:
        return _broken(f"cannot be opened: {error.strerror or error}")
    with container:
        if not container.streams.video:
            return _broken("no video stream (audio only)" if container.streams.audio else "no video stream")
        video = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        try:
            decoded = next(iter(container.decode(video)), None)
        except av.FFmpegError as error:
            return _broken(f"video cannot be decoded: {error.strerror or error}")
        if decoded is None:
            return _broken("video stream holds no decodable frame (truncated?)")
        duration_s = _duration_s(container, video)
        bitrate = int(container.bit_rate or 0) or (int(size * 8 / duration_s) if duration_s else None)
        width, height = int(video.codec_context.width), int(video.codec_context.height)
        if abs(int(decoded.rotation or 0)) in (90, 270):
            # A phone's portrait clip is stored landscape with a rotation: report what is shown.
            width, height = height, width
        info = MediaInfo(
            status=VideoStatus.READY,
            duration_s=duration_s,
            width=width,
            height=height,
            video_codec=_codec_name(video),
            audio_codec=_codec_name(audio) if audio is not None else None,
            container=_container_name(container, os.fsdecode(path)),
            bitrate=bitrate,
        )
    return asdict(info)


def _duration_s(container: Any, stream: Any) -> float | None:
    if container.duration:
        return float(container.duration) / av.time_base
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return None


def _luma(image: Image.Image) -> float:
    return float(ImageStat.Stat(image.convert("L").resize((16, 16))).mean[0])


def _frame_near(container: Any, stream: Any, target_s: float | None) -> Any:
    """The first frame at or after ``target_s`` (seconds on the file's clock), or the first frame."""
    if target_s is not None and stream.time_base:
        container.seek(int(target_s / stream.time_base), stream=stream, backward=True)
    last = None
    for count, frame in enumerate(container.decode(stream)):
        last = frame
        if target_s is None or frame.time is None or frame.time >= target_s or count >= _MAX_FRAMES_TO_TARGET:
            return frame
    return last


def _pick_frame_image(container: Any, stream: Any) -> Image.Image:
    """A frame around 10% of the duration that is not near black (else the brightest seen)."""
    duration_s = _duration_s(container, stream)
    # TS/HLS clocks start at ~1.4 s, not 0: positions are offsets from the start.
    start_s = float(container.start_time) / av.time_base if container.start_time is not None else 0.0
    targets: Sequence[float | None] = (
        [start_s + fraction * duration_s for fraction in _THUMBNAIL_FRACTIONS] if duration_s else [None]
    )
    best: tuple[float, Image.Image] | None = None
    for target_s in targets:
        try:
            frame = _frame_near(container, stream, target_s)
        except av.FFmpegError as error:
            logger.debug("no frame at %s s: %s", target_s, error)
            continue
        if frame is None:
            continue
        image: Image.Image = frame.to_image()
        if frame.rotation:
            # The display matrix's counter-clockwise angle; a phone's portrait clip shows upright.
            image = image.rotate(frame.rotation, expand=True)
        luma = _luma(image)
        if luma >= _BLACK_MEAN_LUMA:
            return image
        if best is None or luma > best[0]:
            best = (luma, image)
    if best is None:
        raise MediaError("no video frame could be decoded")
    return best[1]


def _save_atomically(image: Image.Image, output_path: str) -> None:
    """Write ``image`` to a temp file beside ``output_path``, then rename it over."""
    folder = os.path.dirname(output_path) or "."
    os.makedirs(folder, exist_ok=True)
    suffix = os.path.splitext(output_path)[1].lower()
    temp = temp_path_beside(folder, suffix)
    try:
        if suffix == ".webp":
            image.save(temp, format="WEBP", quality=80, method=4)
        else:
            image.convert("RGB").save(temp, format="JPEG", quality=85, optimize=True)
        os.replace(temp, output_path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def _make_thumbnail(path: str | bytes, output_path: str, width_px: int) -> None:
    try:
        container = _open_input(path)
    except av.FFmpegError as error:
        raise MediaError(f"cannot be opened: {error.strerror or error}") from error
    with container:
        if not container.streams.video:
            raise MediaError("no video stream")
        stream = container.streams.video[0]
        image = _pick_frame_image(container, stream)
    sar = stream.sample_aspect_ratio
    shown_width = image.width * (float(sar) if sar else 1.0)
    height_px = max(1, round(width_px * image.height / shown_width))
    _save_atomically(image.resize((width_px, height_px), Image.Resampling.BILINEAR), output_path)


class _ConcatReader:
    """The segments of a playlist as one byte stream (MPEG-TS and fMP4 concatenate byte-wise)."""

    def __init__(self, paths: Sequence[str]) -> None:
        self.paths = list(paths)
        self.boundaries: list[int] = []  # start offset of each segment in the stream
        self._index = -1
        self._handle: Any = None
        self._offset = 0

    def read(self, size: int = -1) -> bytes:
        size = _READ_CHUNK_BYTES if size is None or size < 0 else size
        while True:
            if self._handle is None:
                self._index += 1
                if self._index >= len(self.paths):
                    return b""
                self._handle = open(self.paths[self._index], "rb")  # noqa: SIM115 (closed at its end)
                self.boundaries.append(self._offset)
            data: bytes = self._handle.read(size)
            if data:
                self._offset += len(data)
                return data
            self._handle.close()
            self._handle = None

    def segment_of(self, position: int) -> int:
        """The index of the segment holding byte ``position`` of the stream."""
        return max(0, bisect.bisect_right(self.boundaries, position) - 1)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def _remux(playlist: HlsPlaylist, temp_path: str) -> tuple[int, int]:
    """Stream-copy the segments into an mp4 at ``temp_path``; returns (video streams, audio streams)."""
    paths = [*([playlist.init_path] if playlist.init_path else []), *playlist.segment_paths]
    reader = _ConcatReader(paths)
    first_segment = 1 if playlist.init_path else 0
    packets_per_segment = [0] * len(paths)
    try:
        source: Any
        with av.open(reader, format="mp4" if playlist.init_path else "mpegts") as source:
            inputs = [s for s in source.streams if s.type in ("video", "audio")]
            # Counted now: a stream must not be touched once its container is closed (segfault).
            video_streams = sum(1 for s in inputs if s.type == "video")
            audio_streams = len(inputs) - video_streams
            if not video_streams:
                raise MediaError("the segments hold no video stream")
            start_s = float(source.start_time) / av.time_base if source.start_time is not None else 0.0
            with av.open(temp_path, "w", format="mp4") as output:
                outputs = {s.index: output.add_stream_from_template(s) for s in inputs}
                shift = {s.index: int(start_s / s.time_base) for s in inputs}
                last_dts: dict[int, int] = {}
                for packet in source.demux(*inputs):
                    if packet.dts is None and packet.pts is None:
                        continue  # the demuxer's end-of-stream packets
                    if packet.pos is not None and packet.pos >= 0:
                        packets_per_segment[reader.segment_of(packet.pos)] += 1
                    _shift_packet(packet, shift, last_dts)
                    packet.stream = outputs[packet.stream.index]
                    output.mux(packet)
    finally:
        reader.close()
    empty = [i - first_segment for i, n in enumerate(packets_per_segment) if n == 0 and i >= first_segment]
    if empty:
        name = os.path.basename(playlist.segment_paths[empty[0]])
        raise MediaError(f"segment {name} is corrupt: no audio or video packet could be read from it")
    return video_streams, audio_streams


def _shift_packet(packet: Any, shift: dict[int, int], last_dts: dict[int, int]) -> None:
    """Start the stream's clock at zero; a clock that jumps back (a discontinuity) is moved on."""
    index = packet.stream.index
    if packet.dts is None:
        packet.dts = packet.pts
    if packet.pts is None:
        packet.pts = packet.dts
    dts = packet.dts - shift[index]
    previous = last_dts.get(index)
    if previous is not None and dts <= previous:
        step = packet.duration or 1
        shift[index] += previous + step - dts
        dts = previous + step
    packet.pts = packet.pts - shift[index]
    packet.dts = dts
    last_dts[index] = dts


def _fsync_path(path: str, directory: bool = False) -> None:
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        if directory:
            return  # some platforms cannot open a directory: its entry is durable soon enough
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not directory:
            raise
    finally:
        os.close(fd)


def _verify_merge(temp_path: str, video_streams: int, audio_streams: int, expected_s: float) -> None:
    """The merged file opens, has the source's streams, decodes, and lasts as long as the playlist."""
    with av.open(temp_path) as merged:
        if len(merged.streams.video) != video_streams or len(merged.streams.audio) != audio_streams:
            raise MediaError(
                f"merged file has {len(merged.streams.video)} video/{len(merged.streams.audio)} audio streams,"
                f" the segments {video_streams}/{audio_streams}"
            )
        duration_s = _duration_s(merged, merged.streams.video[0]) or 0.0
        if abs(duration_s - expected_s) > _MERGE_DURATION_TOLERANCE_S:
            raise MediaError(
                f"merged file lasts {duration_s:.1f} s but the playlist {expected_s:.1f} s (damaged segments?)"
            )
        if next(iter(merged.decode(merged.streams.video[0])), None) is None:
            raise MediaError("merged file holds no decodable video frame")


def _link_to_free_name(temp_path: str, playlist: HlsPlaylist) -> str:
    """Give the verified temp file a free final name; an existing file is never replaced."""
    for _ in range(100):
        final = free_output_path(playlist.folder, playlist.output_stem)
        try:
            os.link(temp_path, final)  # fails if ``final`` appeared meanwhile: no overwrite, ever
        except FileExistsError:
            continue
        except OSError as error:
            if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                raise
            # No hard links here (FAT, some network shares): check-then-rename, a tiny race.
            if os.path.lexists(final):
                continue
            os.rename(temp_path, final)
            return final
        os.unlink(temp_path)
        return final
    raise MediaError("no free name for the merged file")


def _merge_hls(playlist: HlsPlaylist, temp_path: str, pause_s: float = 0.0) -> str:
    """Remux, fsync, verify, then link to the final name and mark the source merged; returns the final path.

    ``pause_s`` (tests only) stalls after the remux, as a slow disk would: a kill lands mid-merge.
    """
    # O_EXCL: the temp name is ours alone.
    os.close(os.open(temp_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    try:
        try:
            video_streams, audio_streams = _remux(playlist, temp_path)
        except av.FFmpegError as error:
            if isinstance(error, OSError) and error.errno == errno.ENOSPC:
                raise
            reason = error.strerror or str(error)
            raise MediaError(f"the segments cannot be remuxed, damaged segments? ({reason})") from error
        if pause_s:
            time.sleep(pause_s)
        _fsync_path(temp_path)
        _verify_merge(temp_path, video_streams, audio_streams, playlist.duration_s)
        final = _link_to_free_name(temp_path, playlist)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_path)
        raise
    _fsync_path(os.path.dirname(final), directory=True)
    write_marker(playlist, final)
    return final


def _explain_os_error(error: OSError) -> str:
    if error.errno == errno.ENOSPC:
        return "disk full (no space left on device)"
    if error.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if error.errno == errno.EROFS:
        return "read-only file system"
    return error.strerror or str(error)


def _test_crash() -> None:
    """A test hook: the worker dies as a segfaulting decoder would."""
    os._exit(70)


def _test_sleep(seconds: float) -> None:
    """A test hook: a decode that hangs."""
    time.sleep(seconds)


_OPERATIONS: dict[str, Callable[..., Any]] = {
    "probe": _probe_file,
    "thumbnail": _make_thumbnail,
    "merge": _merge_hls,
    "test_crash": _test_crash,
    "test_sleep": _test_sleep,
}


def serve_worker(request_fd: int, reply_fd: int) -> None:
    """A worker process's loop: one request in, one reply out, until the pipe closes or ``None`` comes."""
    requests = Connection(request_fd, writable=False)
    replies = Connection(reply_fd, readable=False)
    # Background work: the server's process (queries, events) gets the CPU first. Measured in P9
    # (a sync with thumbnails): query p99 during it 7.9x idle -> 4.8x with the workers at nice 10.
    with contextlib.suppress(OSError):
        os.nice(WORKER_NICENESS)
    av.logging.set_level(av.logging.PANIC)  # FFmpeg's own chatter would flood the server's stderr
    while True:
        try:
            request = requests.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            return
        if request is None:
            return
        operation, args = request
        try:
            reply: tuple[str, Any] = ("ok", _OPERATIONS[operation](*args))
        except _Unreadable as error:
            reply = ("unreadable", str(error))
        except (MediaError, HlsError) as error:
            reply = ("error", str(error))
        except av.FFmpegError as error:
            reply = ("error", _explain_os_error(error) if isinstance(error, OSError) else str(error.strerror or error))
        except OSError as error:
            reply = ("error", _explain_os_error(error))
        except Exception as error:  # a bug or an odd file: the worker itself stays healthy
            reply = ("error", f"{type(error).__name__}: {error}")
        try:
            replies.send(reply)
        except (OSError, ValueError):
            return


# --------------------------------------------------------------------------------------------
# Server side: the pool.


class _WorkerLost(Exception):
    """The worker died or was killed before it answered."""


class WorkerFailure(MediaError):
    """The call timed out or its worker crashed (the worker was replaced)."""


class WorkerCrashed(WorkerFailure):
    """The worker died during the call (the worker was replaced)."""


WORKER_NICENESS = 10

# The worker is a fresh interpreter: no fork of a threaded server, no re-import of its main module.
_WORKER_CODE = (
    "import sys; from gql_media.adapters.media import serve_worker; serve_worker(int(sys.argv[1]), int(sys.argv[2]))"
)


class _Worker:
    """One worker process and its two pipes (requests in, replies out)."""

    def __init__(self) -> None:
        request_read, request_write = os.pipe()
        reply_read, reply_write = os.pipe()
        env = dict(os.environ)
        # The worker imports this package exactly as the server did (a checkout works uninstalled).
        env["PYTHONPATH"] = os.pathsep.join(path for path in sys.path if path)
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _WORKER_CODE, str(request_read), str(reply_write)],
                pass_fds=(request_read, reply_write),
                stdin=subprocess.DEVNULL,
                env=env,
                close_fds=True,
            )
        except BaseException:
            for fd in (request_read, request_write, reply_read, reply_write):
                os.close(fd)
            raise
        os.close(request_read)
        os.close(reply_write)
        self.requests = Connection(request_write, readable=False)
        self.replies = Connection(reply_read, writable=False)

    async def request(self, operation: str, args: tuple[Any, ...], timeout_s: float) -> tuple[str, Any]:
        loop = asyncio.get_running_loop()
        readable: asyncio.Future[None] = loop.create_future()
        fd = self.replies.fileno()

        def on_readable() -> None:
            if not readable.done():
                readable.set_result(None)

        try:
            # Requests are a few hundred bytes: the pipe takes them without blocking.
            self.requests.send((operation, args))
        except (OSError, ValueError) as error:
            raise _WorkerLost("the media worker is gone") from error
        loop.add_reader(fd, on_readable)
        try:
            async with asyncio.timeout(timeout_s):
                await readable
        finally:
            loop.remove_reader(fd)
        try:
            reply: tuple[str, Any] = self.replies.recv()
        except (EOFError, OSError) as error:
            code = self.process.poll()
            detail = f" (exit code {code})" if code is not None else ""
            raise _WorkerLost(f"the media worker crashed{detail}") from error
        return reply

    def stop(self, kill: bool) -> None:
        """Blocking: ask (or force) the process to end, and reap it."""
        if not kill:
            with contextlib.suppress(OSError, ValueError):
                self.requests.send(None)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(2.0)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5.0)
        self.requests.close()
        self.replies.close()


def _stop_all(workers: Sequence[_Worker]) -> None:
    for worker in workers:
        worker.stop(kill=False)


def _start_workers(count: int) -> list[_Worker]:
    return [_Worker() for _ in range(count)]


class PyAvMediaTool:
    """Implements ``ports.MediaTool`` with PyAV in ``workers`` processes; every call times out.

    Args:
        workers: processes (and calls running at once); settings.media_workers.
        timeout_s: the longest one probe or thumbnail may take; settings.media_timeout_s. A merge
            gets that plus the time to read its segments at 20 MB/s.

    Use ``async with PyAvMediaTool(...) as tool`` or ``await tool.start()`` / ``await tool.aclose()``.
    """

    def __init__(self, workers: int = 1, timeout_s: float = 60.0) -> None:
        self._size = max(1, workers)
        self.timeout_s = timeout_s
        self._idle: asyncio.Queue[_Worker] | None = None
        self._all: set[_Worker] = set()
        self._start_lock = asyncio.Lock()
        self._closed = False
        # Workers replaced after a timeout or a crash: the pool's health, for logs and tests.
        self.replaced_workers = 0
        self._merge_pause_s = 0.0  # tests: make a merge slow enough to be killed midway

    @property
    def workers(self) -> int:
        return self._size

    async def start(self) -> None:
        """Start the worker processes (the first call does it too)."""
        async with self._start_lock:
            if self._idle is not None:
                return
            if self._closed:
                raise MediaError("the media tool is closed")
            started = await asyncio.to_thread(_start_workers, self._size)
            idle: asyncio.Queue[_Worker] = asyncio.Queue()
            for worker in started:
                self._all.add(worker)
                idle.put_nowait(worker)
            self._idle = idle
            logger.info("media workers started: %d", self._size)

    async def __aenter__(self) -> PyAvMediaTool:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop every worker (a worker busy with a call is killed)."""
        self._closed = True
        workers, self._all = list(self._all), set()
        self._idle = None
        if workers:
            await asyncio.to_thread(_stop_all, workers)

    async def call(self, operation: str, *args: Any, timeout_s: float | None = None) -> tuple[str, Any]:
        """Run one worker operation; returns its (kind, value) reply. Raises ``MediaError`` on timeout/crash."""
        if self._idle is None:
            await self.start()
        idle = self._idle
        assert idle is not None
        limit_s = self.timeout_s if timeout_s is None else timeout_s
        worker = await idle.get()
        if worker.process.poll() is not None:
            # Died while idle (killed by the OOM killer or by hand): not the next file's fault.
            worker = await asyncio.shield(self._replace(worker))
        try:
            return await worker.request(operation, args, limit_s)
        except TimeoutError:
            worker = await self._replace(worker)
            raise WorkerFailure(f"timed out after {limit_s:g} s (the media worker was stopped)") from None
        except _WorkerLost as error:
            worker = await self._replace(worker)
            raise WorkerCrashed(str(error)) from None
        except BaseException:
            # Cancelled mid-call: the worker's late reply would answer the next call. Replace it.
            worker = await asyncio.shield(self._replace(worker))
            raise
        finally:
            if not self._closed:
                idle.put_nowait(worker)

    async def _replace(self, worker: _Worker) -> _Worker:
        self.replaced_workers += 1
        self._all.discard(worker)
        logger.warning("replacing media worker pid %s", worker.process.pid)

        def restart() -> _Worker:
            worker.stop(kill=True)
            return _Worker()

        fresh = await asyncio.to_thread(restart)
        self._all.add(fresh)
        return fresh

    async def probe(self, path: str | bytes) -> MediaInfo:
        try:
            try:
                kind, value = await self.call("probe", path)
            except WorkerCrashed:
                # Once more on a fresh worker: a killed worker is not a broken file; a file that
                # crashes the decoder crashes it again.
                kind, value = await self.call("probe", path)
        except WorkerFailure as error:
            # A file that hangs or crashes the decoder would do it again: it is broken for us.
            return MediaInfo(status=VideoStatus.BROKEN, error=f"probe failed: {error}")
        if kind == "ok":
            return MediaInfo(**value)
        if kind == "unreadable":
            raise MediaError(str(value))
        return MediaInfo(status=VideoStatus.BROKEN, error=str(value))

    async def make_thumbnail(self, path: str | bytes, output_path: str, width_px: int) -> None:
        kind, value = await self.call("thumbnail", path, output_path, width_px)
        if kind != "ok":
            raise MediaError(str(value))

    async def merge_hls(self, playlist: HlsPlaylist) -> str:
        temp_path = temp_path_beside(os.path.dirname(playlist.folder.rstrip(os.sep)))
        timeout_s = self.timeout_s + playlist.total_bytes / _MERGE_BYTES_PER_S
        try:
            kind, value = await self.call("merge", playlist, temp_path, self._merge_pause_s, timeout_s=timeout_s)
        finally:
            # The worker removes it on failure, but not when it was killed mid-merge.
            await asyncio.to_thread(_remove_if_present, temp_path)
        if kind != "ok":
            raise MediaError(str(value))
        return str(value)


def _remove_if_present(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def ensure_placeholder(thumbnails_dir: Path, width_px: int = 320, image_format: str = "jpeg") -> Path:
    """The image served for a video without a thumbnail (BROKEN, failed, not made yet); made once.

    Blocking but cheap (a few ms, once): call it at start-up.
    """
    path = thumbnails_dir / f"placeholder-{width_px}{thumbnail_suffix(image_format)}"
    if path.exists():
        return path
    height_px = max(1, width_px * 9 // 16)
    image = Image.new("RGB", (width_px, height_px), (38, 40, 46))
    draw = ImageDraw.Draw(image)
    # A film frame with a play mark: "a video is here", without claiming a picture of it.
    cx, cy, r = width_px // 2, height_px // 2, max(4, height_px // 6)
    draw.rounded_rectangle(
        [cx - 2 * r, cy - int(1.4 * r), cx + 2 * r, cy + int(1.4 * r)], radius=max(2, r // 3), outline=(110, 114, 124)
    )
    draw.polygon(
        [(cx - r // 2, cy - r // 1.5), (cx - r // 2, cy + r // 1.5), (cx + r // 1.2, cy)], fill=(110, 114, 124)
    )
    _save_atomically(image, str(path))
    return path
