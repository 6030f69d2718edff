"""How a browser plays a video: the file as it is, its streams copied into HLS, or re-encoded.

Standard library only. ``decide`` is the decision table of issue 14; ``SourceStreams`` is what a
playback probe found in the file (more than the index keeps: bit depth, rotation, subtitle streams).

The table, first matching row wins:

1. the file is BROKEN (or cannot be read)                          -> UNPLAYABLE, its reason
2. no video stream                                                 -> UNPLAYABLE
3. the container and every stream play in browsers by default, or  -> DIRECT
   the client listed them in ``directCodecs``
4. the video is 8-bit 4:2:0 H.264 shown unrotated (it goes into    -> REMUX into MPEG-TS (video
   MPEG-TS as it is and every HLS player plays it)                    copied; audio copied when AAC,
                                                                      else to AAC)
5. the video is HEVC shown unrotated and the client plays HEVC     -> REMUX into fMP4, tagged hvc1
   (an MP4 tagged hev1, or HEVC in Matroska/MPEG-TS: Safari plays     (video copied, audio as in 4)
   HEVC in MP4 and in HLS only as hvc1, and in HLS only from fMP4)
6. transcoding is turned off                                       -> UNPLAYABLE
7. anything else                                                   -> TRANSCODE (H.264 + AAC)

An MP4's HEVC sample entry (its codec tag) matters: ``hvc1`` carries the parameter sets in the
header only, ``hev1`` may carry them in the stream too, and Safari plays only ``hvc1``. A client
that names its HEVC by RFC 6381 string (``hvc1.1.6.L93.B0``, as the web UI does) plays that tag
only; one that says ``hevc`` or ``h265`` plays both.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = [
    "HLS_MIME_TYPE",
    "Decision",
    "PlaybackMethod",
    "SegmentSpec",
    "SourceStreams",
    "StreamVariant",
    "SubtitleStream",
    "client_codec_names",
    "client_hevc_tags",
    "decide",
    "hevc_copy_blocker",
]

HLS_MIME_TYPE = "application/vnd.apple.mpegurl"


class PlaybackMethod(enum.StrEnum):
    DIRECT = "DIRECT"
    REMUX = "REMUX"
    TRANSCODE = "TRANSCODE"
    UNPLAYABLE = "UNPLAYABLE"


class StreamVariant(enum.StrEnum):
    """Which HLS stream of a video a REMUX or TRANSCODE plays: each has URLs and segments of its own.

    MPEGTS: H.264 (copied or transcoded) and AAC in MPEG-TS segments; what every HLS player plays.
    HEVC: the HEVC video copied into fMP4 (CMAF: an init segment and ``.m4s`` segments) tagged
    ``hvc1``, the only way Safari plays HEVC over HLS.
    """

    MPEGTS = "ts"
    HEVC = "hevc"

    @property
    def segment_suffix(self) -> str:
        """The file suffix of its media segments."""
        return ".m4s" if self is StreamVariant.HEVC else ".ts"

    @property
    def fragmented_mp4(self) -> bool:
        """Whether its segments are fMP4 (they need an init segment, ``EXT-X-MAP``)."""
        return self is StreamVariant.HEVC


@dataclass(frozen=True, slots=True)
class SubtitleStream:
    """An embedded subtitle stream: ``index`` is the stream's index in the file."""

    index: int
    codec: str
    language: str | None = None
    title: str | None = None

    @property
    def is_text(self) -> bool:
        """Text subtitles can become WebVTT; bitmap ones (DVD, Blu-ray) cannot."""
        return self.codec in TEXT_SUBTITLE_CODECS


TEXT_SUBTITLE_CODECS = frozenset({"subrip", "srt", "ass", "ssa", "mov_text", "webvtt", "text"})


@dataclass(frozen=True, slots=True)
class SourceStreams:
    """What a playback probe found in a file. Codec names are FFmpeg's (h264, hevc, mpeg4, aac, mp3...)."""

    container: str
    duration_s: float
    video_codec: str | None
    audio_codec: str | None = None
    width: int = 0
    height: int = 0
    bit_depth: int = 8
    chroma_420: bool = True
    rotation_deg: int = 0
    audio_channels: int = 0
    subtitles: tuple[SubtitleStream, ...] = field(default=())
    # Video keyframe times (0 = the first frame) from the container's index; empty when it has none (MPEG-TS).
    keyframes_s: tuple[float, ...] = field(default=())
    # The video's codec tag in its container (MP4: "hvc1", "hev1", "avc1"...); None where there is none (Matroska).
    video_tag: str | None = None


@dataclass(frozen=True, slots=True)
class SegmentSpec:
    """One HLS segment to make: ``[start_s, end_s)`` of ``path`` (0 = its first frame; ``end_s`` None:
    to its end) by ``method`` (REMUX or TRANSCODE) into ``output_path``; a transcode turns the picture
    upright by ``rotation_deg``, is at most ``max_height_px`` high and made with x264's ``preset``
    (the streaming service's ``PlaybackSettings``, which name its cache folder too). ``variant``
    says the segment's format (MPEG-TS, or fMP4 tagged hvc1); an fMP4 segment holds its fragment
    only (``moof`` + ``mdat``), and when ``init_path`` names the stream's init segment already
    made, its own header must equal it. It goes whole from the streaming service to a worker process."""

    path: str | bytes
    method: PlaybackMethod
    start_s: float
    end_s: float | None
    output_path: str
    rotation_deg: int = 0
    variant: StreamVariant = StreamVariant.MPEGTS
    init_path: str | None = None
    max_height_px: int = 1080
    preset: str = "veryfast"


@dataclass(frozen=True, slots=True)
class Decision:
    """The method, for anything but DIRECT the reason in a user's words, and for REMUX/TRANSCODE the HLS stream."""

    method: PlaybackMethod
    mime_type: str | None
    reason: str | None = None
    variant: StreamVariant | None = None


# Containers and the codecs every current browser plays in them (Chromium, Firefox, Safari).
_MP4_FAMILY = frozenset({"mp4", "mov", "m4v", "m4a", "3gp"})
_WEBM = frozenset({"webm"})
_DEFAULT_VIDEO = {"mp4": frozenset({"h264"}), "webm": frozenset({"vp8", "vp9", "av1"})}
_DEFAULT_AUDIO = {"mp4": frozenset({"aac", "mp3"}), "webm": frozenset({"opus", "vorbis"})}
_MIME_TYPES = {"matroska": "video/x-matroska", "mpegts": "video/mp2t", "avi": "video/x-msvideo", "flv": "video/x-flv"}
_ANY_DEFAULT_VIDEO = frozenset().union(*_DEFAULT_VIDEO.values())
_ANY_DEFAULT_AUDIO = frozenset().union(*_DEFAULT_AUDIO.values())

# Names users know, for reasons.
_DISPLAY_NAMES = {
    "h264": "H.264",
    "hevc": "HEVC",
    "mpeg4": "MPEG-4 Part 2",
    "msmpeg4v3": "MPEG-4 (DivX 3)",
    "mpeg2video": "MPEG-2",
    "mpeg1video": "MPEG-1",
    "vc1": "VC-1",
    "wmv3": "WMV",
    "wmv2": "WMV",
    "flv1": "Sorenson (Flash)",
    "vp8": "VP8",
    "vp9": "VP9",
    "av1": "AV1",
    "aac": "AAC",
    "mp3": "MP3",
    "ac3": "AC-3 (Dolby Digital)",
    "eac3": "E-AC-3 (Dolby Digital Plus)",
    "dts": "DTS",
    "truehd": "Dolby TrueHD",
    "opus": "Opus",
    "vorbis": "Vorbis",
    "flac": "FLAC",
    "wmav2": "WMA",
    "pcm_s16le": "PCM",
    "matroska": "Matroska (MKV)",
    "avi": "AVI",
    "mpegts": "MPEG-TS",
    "flv": "Flash video (FLV)",
    "asf": "Windows Media (ASF/WMV)",
    "mpeg": "MPEG program stream",
}

# RFC 6381 codec prefixes (as in MediaSource.isTypeSupported) -> FFmpeg's codec names.
_RFC6381_PREFIXES = (
    ("avc1.6e", "h264-10bit"),
    ("avc3.6e", "h264-10bit"),
    ("avc1", "h264"),
    ("avc3", "h264"),
    ("hev1", "hevc"),
    ("hvc1", "hevc"),
    ("vp09", "vp9"),
    ("vp08", "vp8"),
    ("av01", "av1"),
    ("mp4a.40", "aac"),
    ("mp4a.69", "mp3"),
    ("mp4a.6b", "mp3"),
    ("ac-3", "ac3"),
    ("ec-3", "eac3"),
    ("dtsc", "dts"),
    ("fLaC", "flac"),
)
# Other names a client may send for the same thing.
_ALIASES = {
    "h265": "hevc",
    "x265": "hevc",
    "avc": "h264",
    "x264": "h264",
    "vp09": "vp9",
    "mkv": "matroska",
    "x-matroska": "matroska",
    "video/x-matroska": "matroska",
    "quicktime": "mov",
    "ts": "mpegts",
    "mp2t": "mpegts",
    "video/mp2t": "mpegts",
}


def display_name(codec: str) -> str:
    """A codec or container as users know it ("hevc" -> "HEVC")."""
    return _DISPLAY_NAMES.get(codec, codec.upper() if len(codec) <= 5 else codec)


def client_codec_names(direct_codecs: Iterable[str] | None) -> frozenset[str]:
    """Normalise what a client says it plays: our names, FFmpeg names or RFC 6381 strings."""
    names: set[str] = set()
    for raw in direct_codecs or ():
        text = raw.strip()
        lowered = text.lower()
        if not lowered:
            continue
        for prefix, name in _RFC6381_PREFIXES:
            if lowered.startswith(prefix.lower()):
                names.add(name)
                break
        else:
            names.add(_ALIASES.get(lowered, lowered))
    if "h264-10bit" in names:
        names.add("h264")
    return frozenset(names)


# The HEVC sample entries of MP4 (ISO/IEC 14496-15): what ``client_hevc_tags`` tells apart.
_HEVC_TAGS = frozenset({"hvc1", "hev1"})
# The sample entry an HEVC copy is written with: the one every browser that plays HEVC plays.
HEVC_COPY_TAG = "hvc1"


def client_hevc_tags(direct_codecs: Iterable[str] | None) -> frozenset[str]:
    """The HEVC sample entries a client plays: the ones it names by RFC 6381 string; both for "hevc"/"h265"."""
    tags: set[str] = set()
    for raw in direct_codecs or ():
        lowered = raw.strip().lower()
        tag = lowered[:4]
        if tag in _HEVC_TAGS and lowered[4:5] in ("", "."):
            tags.add(tag)
        elif _ALIASES.get(lowered, lowered) == "hevc":
            tags |= _HEVC_TAGS
    return frozenset(tags)


def _family(container: str) -> str | None:
    if container in _MP4_FAMILY:
        return "mp4"
    if container in _WEBM:
        return "webm"
    return None


def _video_is_plain_h264(streams: SourceStreams) -> bool:
    return streams.video_codec == "h264" and streams.bit_depth <= 8 and streams.chroma_420


def hevc_copy_blocker(streams: SourceStreams) -> str | None:
    """Why the video cannot be copied into the HEVC stream (``StreamVariant.HEVC``); None when it can."""
    if streams.video_codec != "hevc":
        return f"{display_name(streams.video_codec or 'no')} video is not HEVC"
    if streams.rotation_deg % 360:
        # The copy would show a phone clip sideways: only a transcode turns the picture.
        return "the HEVC video is shown rotated"
    return None


def _direct_blocker(streams: SourceStreams, client: frozenset[str], hevc_tags: frozenset[str]) -> str | None:
    """Why the file cannot be played as it is; None when it can."""
    family = _family(streams.container)
    if family is None and streams.container not in client:
        return f"the {display_name(streams.container)} container is not playable in browsers"
    # A container the client plays itself (e.g. "matroska") takes any codec browsers play by default.
    default_video = _DEFAULT_VIDEO[family] if family else _ANY_DEFAULT_VIDEO
    default_audio = _DEFAULT_AUDIO[family] if family else _ANY_DEFAULT_AUDIO
    video = streams.video_codec or ""
    video_ok = video in default_video or video in client
    if not video_ok:
        return f"{display_name(video)} video is not playable in this browser"
    if video == "h264" and not (streams.bit_depth <= 8 or "h264-10bit" in client):
        return f"{streams.bit_depth}-bit H.264 video is not playable in this browser"
    if video == "h264" and not streams.chroma_420 and "h264-10bit" not in client:
        return "H.264 video with full colour resolution (4:2:2/4:4:4) is not playable in this browser"
    tag = streams.video_tag
    if video == "hevc" and family == "mp4" and tag and tag not in hevc_tags:
        return f"HEVC video tagged {tag} is not playable in this browser"
    audio = streams.audio_codec
    if audio and not (audio in default_audio or audio in client):
        return f"{display_name(audio)} audio is not playable in this browser"
    return None


def decide(
    streams: SourceStreams | None,
    *,
    broken_reason: str | None = None,
    direct_codecs: Iterable[str] | None = None,
    transcode_enabled: bool = True,
) -> Decision:
    """The playback method for a file (see the module's table).

    Args:
        streams: the playback probe's result; None when the file could not be probed.
        broken_reason: set when the index says the file is BROKEN (or the probe failed): why.
        direct_codecs: what the client says it plays itself (``Video.playback(directCodecs:)``).
        transcode_enabled: settings.transcode.
    """
    if broken_reason is not None or streams is None:
        return Decision(PlaybackMethod.UNPLAYABLE, None, broken_reason or "the file cannot be read")
    if not streams.video_codec:
        return Decision(PlaybackMethod.UNPLAYABLE, None, "the file has no video stream")
    client = client_codec_names(direct_codecs)
    hevc_tags = client_hevc_tags(direct_codecs)
    blocker = _direct_blocker(streams, client, hevc_tags)
    if blocker is None:
        family = _family(streams.container)
        mime_type = f"video/{family}" if family else _MIME_TYPES.get(streams.container, f"video/{streams.container}")
        return Decision(PlaybackMethod.DIRECT, mime_type)
    variant = None
    if _video_is_plain_h264(streams) and streams.rotation_deg % 360 == 0:
        variant = StreamVariant.MPEGTS
    elif HEVC_COPY_TAG in hevc_tags and hevc_copy_blocker(streams) is None:
        variant = StreamVariant.HEVC
    if variant is not None:
        audio = streams.audio_codec
        into = f"HLS (fMP4, the video tagged {HEVC_COPY_TAG})" if variant is StreamVariant.HEVC else "HLS"
        if audio and audio != "aac":
            blocker += f"; its streams are copied into {into}, the {display_name(audio)} audio converted to AAC"
        else:
            blocker += f"; its streams are copied into {into} without re-encoding"
        return Decision(PlaybackMethod.REMUX, HLS_MIME_TYPE, blocker, variant)
    if not transcode_enabled:
        return Decision(PlaybackMethod.UNPLAYABLE, None, f"{blocker}, and transcoding is turned off on this server")
    return Decision(PlaybackMethod.TRANSCODE, HLS_MIME_TYPE, f"transcoding: {blocker}", StreamVariant.MPEGTS)
