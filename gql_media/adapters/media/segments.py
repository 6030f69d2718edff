"""HLS segments made with PyAV: plain functions run inside media worker processes.

Every segment is made on its own, from the source, in any order (a seek far ahead makes only
its segment), and is decodable alone: MPEG-TS, starting with a keyframe, carrying its codec
headers; or, for the HEVC stream, an fMP4 fragment decodable after the stream's init segment
(``fmp4``), the video tagged ``hvc1``. Segments line up because every timestamp is the source's
own presentation time (moved to start at ``OUTPUT_OFFSET_S``): a frame belongs to the segment
whose window holds its time, so consecutive segments tile the clock with no gap and no overlap.
Audio is cut on a 48 kHz sample grid fixed by the segment's start, so its samples line up across
segments too.

- TRANSCODE: video decoded and encoded by libx264 (yuv420p, even size, at most ``max_height_px``
  high, the display rotation applied), audio by AAC (stereo, 48 kHz).
- REMUX: video packets copied (a segment must start on a keyframe: each nominal boundary is
  snapped to the first keyframe at or after it), audio copied when AAC, else encoded to AAC.
  Into fMP4 the HEVC video is re-tagged ``hvc1`` (its parameter sets go into the sample entry, as
  Safari needs; an ``hev1`` file's packets are copied as they are).

``OUTPUT_OFFSET_S`` keeps every decoding timestamp positive (B-frames decode before they show):
a muxer that saw a negative one would shift that segment alone and break the shared clock.
"""

from __future__ import annotations

import io
from fractions import Fraction
from typing import Any

import av

from gql_media.adapters.media.fmp4 import FMP4_OPTIONS, split_init
from gql_media.adapters.media.playback_probe import open_source, start_time_s
from gql_media.adapters.media.probe import codec_name
from gql_media.adapters.media.segment_streams import (
    AUDIO_RATE_HZ,
    OUTPUT_OFFSET_S,
    AudioCutter,
    VideoShaper,
    output_size,
)
from gql_media.core.playback import HEVC_COPY_TAG, PlaybackMethod, SegmentSpec, StreamVariant
from gql_media.core.ports import MediaError

__all__ = ["AUDIO_RATE_HZ", "OUTPUT_OFFSET_S", "make_init_segment", "make_segment"]

_TS_TIME_BASE = Fraction(1, 90_000)
# A frame's time may sit a hair before a boundary it belongs after (rounding of time bases).
_EPSILON_S = 1e-4


def _video_time_s(frame_or_packet_time: float | None, source_start_s: float) -> float | None:
    return None if frame_or_packet_time is None else frame_or_packet_time - source_start_s


def _seek(container: Any, stream: Any, time_s: float, source_start_s: float) -> None:
    """Put the demuxer at the keyframe at or before ``time_s`` (0 = the source's first frame)."""
    if time_s <= 0 or not stream.time_base:
        return
    target = int((time_s + source_start_s) / stream.time_base)
    container.seek(target, stream=stream, backward=True)


def _new_output(output: str | io.BytesIO, variant: StreamVariant = StreamVariant.MPEGTS) -> Any:
    if variant.fragmented_mp4:
        return av.open(output, "w", format="mp4", options=FMP4_OPTIONS)
    # mpegts chosen by name: the temp file's suffix is not ".ts".
    return av.open(output, "w", format="mpegts", options={"mpegts_copyts": "1"})


def _transcode_segment(
    container: Any,
    start_s: float,
    end_s: float | None,
    output_path: str,
    max_height_px: int,
    preset: str,
    rotation_deg: int,
) -> dict[str, Any]:
    video = container.streams.video[0]
    audio = container.streams.audio[0] if container.streams.audio else None
    video.thread_type = "AUTO"
    source_start_s = start_time_s(container)
    sar = video.sample_aspect_ratio
    size = output_size(video.codec_context.width, video.codec_context.height, sar, rotation_deg, max_height_px)
    shaper = VideoShaper(video, rotation_deg, size)
    rate = video.average_rate or video.guessed_rate or Fraction(25)
    frames_out = 0
    with _new_output(output_path) as output:
        encoder: Any = output.add_stream("libx264", rate=rate)
        encoder.width, encoder.height = size
        encoder.pix_fmt = "yuv420p"
        encoder.time_base = _TS_TIME_BASE
        encoder.codec_context.time_base = _TS_TIME_BASE
        # The segment is one closed GOP run: its first frame is an IDR, no scene cut reaches back.
        # No B-frames: decoding order is showing order, so decoding timestamps run on across
        # segments made apart (B-frames shift them back by a delay x264 picks per segment).
        options = {"preset": preset, "crf": "23", "x264-params": "keyint=600:min-keyint=600:bframes=0"}
        encoder.codec_context.options = options
        cutter = None
        if audio is not None:
            first = round(start_s * AUDIO_RATE_HZ)
            last = round(end_s * AUDIO_RATE_HZ) if end_s is not None else None
            cutter = AudioCutter(output, first, last, source_start_s)
        _seek(container, video, start_s, source_start_s)
        video_done = False
        streams = [video] + ([audio] if audio is not None else [])
        for packet in container.demux(*streams):
            if packet.stream is video:
                if video_done:
                    if cutter is None or cutter.done:
                        break
                    continue
                for frame in _decode(packet):
                    time_s = _video_time_s(frame.time, source_start_s)
                    if time_s is None or time_s < start_s - _EPSILON_S:
                        continue
                    if end_s is not None and time_s >= end_s - _EPSILON_S:
                        video_done = True
                        break
                    for shaped in shaper.shape(frame):
                        shaped.pts = round((time_s + OUTPUT_OFFSET_S) / _TS_TIME_BASE)
                        shaped.time_base = _TS_TIME_BASE
                        output.mux(encoder.encode(shaped))
                        frames_out += 1
            elif cutter is not None:
                for frame in _decode(packet):
                    cutter.add(frame)
                if video_done and cutter.done:
                    break
        output.mux(encoder.encode(None))
        if cutter is not None:
            cutter.finish()
    if frames_out == 0:
        raise MediaError("no video frame falls in this segment")
    return {
        "video_frames": frames_out,
        "audio_samples": cutter.written if cutter else 0,
        "width": size[0],
        "height": size[1],
    }


def _decode(packet: Any) -> list[Any]:
    try:
        return list(packet.decode())
    except av.InvalidDataError:
        return []  # one damaged packet (a truncated file's last one) loses its frames, not the segment


def _keyframe_time_s(packet: Any, source_start_s: float) -> float | None:
    if packet.pts is None or not packet.time_base:
        return None
    return float(packet.pts * packet.time_base) - source_start_s


class _RemuxWindow:
    """Copies the video between two snapped keyframes, and the audio of the same span.

    The window ``[cut_start_s, cut_end_s)`` is known only as its keyframes are met, so audio
    met before its start is known waits in ``pending``.
    """

    def __init__(
        self,
        output: Any,
        video: Any,
        audio: Any | None,
        start_s: float,
        end_s: float | None,
        video_tag: str | None = None,
    ) -> None:
        self.output = output
        self.video = video
        self.video_out = output.add_stream_from_template(video)
        if video_tag is not None:
            self.video_out.codec_context.codec_tag = video_tag
        self.start_s, self.end_s = start_s, end_s
        self.source_start_s = start_time_s(video.container)
        self.copy_audio = audio is not None and codec_name(audio) == "aac"
        self.audio_out = output.add_stream_from_template(audio) if self.copy_audio else None
        self.has_audio = audio is not None
        # Audio that is no AAC is encoded; its stream is added now, before the first packet
        # writes the headers (an fMP4 init lists every stream). Its first sample is the cut's.
        self.cutter: AudioCutter | None = None
        if audio is not None and not self.copy_audio:
            self.cutter = AudioCutter(output, round(max(0.0, start_s) * AUDIO_RATE_HZ), None, self.source_start_s)
        self.cut_start_s: float | None = 0.0 if start_s <= 0 else None
        self.cut_end_s: float | None = None
        self.pending: list[Any] = []
        self.undated: list[Any] = []  # video packets without a decoding time yet
        self.video_packets = 0
        self.audio_passed_end = False

    def take(self, packet: Any) -> bool:
        """Copy or hold one demuxed packet; True once the window is complete."""
        if packet.stream is self.video:
            self._take_video(packet)
        else:
            self.pending.append(packet)
            self._flush_audio()
        return self.cut_end_s is not None and (not self.has_audio or self.audio_passed_end)

    def _take_video(self, packet: Any) -> None:
        if self.cut_end_s is not None:
            return
        time_s = _keyframe_time_s(packet, self.source_start_s)
        if packet.is_keyframe and time_s is not None:
            if self.cut_start_s is None and time_s >= self.start_s - _EPSILON_S:
                self.cut_start_s = time_s
            elif self.end_s is not None and self._any_video and time_s >= self.end_s - _EPSILON_S:
                self.cut_end_s = time_s
                self._flush_audio()
                return
        if self.cut_start_s is None:
            return
        if packet.dts is None and packet.duration:
            self.undated.append(packet)
            return
        if self.undated and packet.dts is not None:
            # Matroska keeps no decoding times: FFmpeg guesses them once it has read a few packets,
            # so the first ones of a copy (from the start or after a seek) have none. They are
            # counted back from the first guessed one, a frame each: decoding times keep rising
            # (the mp4 muxer refuses them otherwise) and run on across segments made apart.
            dts = packet.dts
            for held in reversed(self.undated):
                dts -= held.duration
                held.dts = dts
        self._mux_video(packet)

    def _mux_video(self, packet: Any) -> None:
        for held in self.undated:
            self._mux_one_video(held)
        self.undated.clear()
        if packet is not None:
            self._mux_one_video(packet)

    def _mux_one_video(self, packet: Any) -> None:
        _shift_to_output(packet, self.source_start_s)
        packet.stream = self.video_out
        self.output.mux(packet)
        self.video_packets += 1

    @property
    def _any_video(self) -> bool:
        return bool(self.video_packets or self.undated)

    def headers_only(self) -> None:
        """Write the headers of every output stream and no sample: an fMP4 init segment."""
        self.output.start_encoding()

    def _flush_audio(self) -> None:
        if self.cut_start_s is None:
            return
        if self.cutter is not None:
            self.cutter.first = round(self.cut_start_s * AUDIO_RATE_HZ)
        if self.cutter is not None and self.cut_end_s is not None:
            self.cutter.last = round(self.cut_end_s * AUDIO_RATE_HZ)
        for packet in self.pending:
            time_s = _keyframe_time_s(packet, self.source_start_s)
            if time_s is None:
                continue
            if self.cut_end_s is not None and time_s >= self.cut_end_s - _EPSILON_S:
                self.audio_passed_end = True
            elif self.audio_out is not None:
                if time_s >= self.cut_start_s - _EPSILON_S:
                    _shift_to_output(packet, self.source_start_s)
                    packet.stream = self.audio_out
                    self.output.mux(packet)
            elif self.cutter is not None:
                for frame in _decode(packet):
                    self.cutter.add(frame)
        self.pending.clear()

    def finish(self) -> None:
        self._mux_video(None)  # never dated: shown as decoded (no B-frames)
        self._flush_audio()
        if self.cutter is not None:
            self.cutter.finish()


def _remux_segment(
    container: Any, start_s: float, end_s: float | None, output: str | io.BytesIO, variant: StreamVariant
) -> dict[str, Any]:
    """Copy the video from the first keyframe at/after ``start_s`` to the first at/after ``end_s``."""
    video = container.streams.video[0]
    audio = container.streams.audio[0] if container.streams.audio else None
    tag = HEVC_COPY_TAG if variant is StreamVariant.HEVC else None
    with _new_output(output, variant) as muxer:
        window = _RemuxWindow(muxer, video, audio, start_s, end_s, video_tag=tag)
        _seek(container, video, start_s, window.source_start_s)
        for packet in container.demux(*[s for s in (video, audio) if s is not None]):
            if (packet.dts is not None or packet.pts is not None) and window.take(packet):
                break
        window.finish()
    if window.video_packets == 0:
        raise MediaError("no video keyframe starts in this segment")
    return {"video_packets": window.video_packets, "start_s": window.cut_start_s, "end_s": window.cut_end_s}


def _check_hevc(container: Any) -> None:
    if not container.streams.video:
        raise MediaError("the file has no video stream")
    if codec_name(container.streams.video[0]) != "hevc":
        raise MediaError("the HEVC stream copies HEVC video only")


def _write_fragment(spec: SegmentSpec, made: bytes) -> None:
    """Write the fragment of a made fMP4 to ``spec.output_path``; its init must be the stream's."""
    try:
        init, fragment = split_init(made)
    except ValueError as error:
        raise MediaError(f"the fMP4 segment is malformed: {error}") from None
    if not fragment:
        raise MediaError("the fMP4 segment holds no fragment")
    if spec.init_path is not None:
        try:
            with open(spec.init_path, "rb") as handle:
                stream_init = handle.read()
        except FileNotFoundError:
            stream_init = init  # evicted meanwhile: it is made again from the same streams
        if stream_init != init:
            # Never serve a fragment its player would read with other headers.
            raise MediaError("the segment's headers differ from the stream's init segment")
    with open(spec.output_path, "wb") as handle:
        handle.write(fragment)


def make_init_segment(spec: SegmentSpec) -> dict[str, Any]:
    """Write the init segment (``ftyp`` + ``moov``) of the fMP4 stream ``spec.variant`` of
    ``spec.path`` to ``spec.output_path``: the headers every one of its segments starts with."""
    if not spec.variant.fragmented_mp4 or spec.method is not PlaybackMethod.REMUX:
        raise MediaError(f"the {spec.variant} stream has no init segment")
    buffer = io.BytesIO()
    with open_source(spec.path) as container:
        _check_hevc(container)
        audio = container.streams.audio[0] if container.streams.audio else None
        with _new_output(buffer, spec.variant) as muxer:
            window = _RemuxWindow(muxer, container.streams.video[0], audio, 0.0, None, video_tag=HEVC_COPY_TAG)
            window.headers_only()
    init, fragment = split_init(buffer.getvalue())
    if fragment:
        raise MediaError("the init segment holds samples")
    with open(spec.output_path, "wb") as handle:
        handle.write(init)
    return {"bytes": len(init)}


def _shift_to_output(packet: Any, source_start_s: float) -> None:
    """Move a copied packet onto the output clock (source start -> ``OUTPUT_OFFSET_S``)."""
    shift = round((OUTPUT_OFFSET_S - source_start_s) / packet.time_base)
    if packet.dts is None:
        packet.dts = packet.pts
    if packet.pts is None:
        packet.pts = packet.dts
    packet.pts += shift
    packet.dts += shift


def make_segment(spec: SegmentSpec) -> dict[str, Any]:
    """Make the HLS segment ``spec`` says: REMUX copies the video, TRANSCODE makes libx264 + AAC
    (at most ``spec.max_height_px`` high, with x264's ``spec.preset``). ``spec.output_path`` is where the
    MPEG-TS, or the fMP4 fragment, goes (the caller renames it into the cache when whole)."""
    with open_source(spec.path) as container:
        if not container.streams.video:
            raise MediaError("the file has no video stream")
        if spec.variant.fragmented_mp4:
            if spec.method is not PlaybackMethod.REMUX:
                raise MediaError(f"the {spec.variant} stream is a copy, never a transcode")
            _check_hevc(container)
            buffer = io.BytesIO()
            made = _remux_segment(container, spec.start_s, spec.end_s, buffer, spec.variant)
            _write_fragment(spec, buffer.getvalue())
            return made
        if spec.method == PlaybackMethod.REMUX:
            return _remux_segment(container, spec.start_s, spec.end_s, spec.output_path, spec.variant)
        return _transcode_segment(
            container,
            spec.start_s,
            spec.end_s,
            spec.output_path,
            spec.max_height_px,
            spec.preset,
            spec.rotation_deg % 360,
        )
