"""Subtitles for the browser: sidecar files found by the video's stem, and everything turned into WebVTT.

Standard library only. A sidecar is a ``.srt`` or ``.vtt`` file in the video's folder named
``<stem>.srt`` or ``<stem>.<tags>.srt`` (``movie.en.srt``, ``movie.pt-BR.forced.srt``). They are
found from the video's current name at request time, so a video renamed together with its
subtitles keeps them, and the scanner never takes them for videos (they are not video files).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "SIDECAR_EXTENSIONS",
    "Cue",
    "SubtitleTrack",
    "ass_text",
    "cues_to_vtt",
    "decode_subtitle_bytes",
    "sidecar_subtitles",
    "srt_to_vtt",
]

SIDECAR_EXTENSIONS = (".srt", ".vtt")
_LANGUAGE = re.compile(r"^[a-z]{2,3}([-_][A-Za-z]{2,4})?$")
_SRT_TIMING = re.compile(r"(\d{1,2}:\d{2}:\d{2}),(\d{1,3})")
_ASS_OVERRIDE = re.compile(r"\{[^}]*\}")


@dataclass(frozen=True, slots=True)
class SubtitleTrack:
    """A subtitle track of a video. ``key`` names it in its URL: ``f:`` and the file name of a sidecar
    in the video's folder ("f:movie.en.srt"), ``s:`` and the index of a stream of the video ("s:2")."""

    key: str
    language: str | None
    label: str


@dataclass(frozen=True, slots=True)
class Cue:
    """One subtitle shown from ``start_s`` to ``end_s`` (seconds of the video's clock)."""

    start_s: float
    end_s: float
    text: str


def _stem(name: str) -> str:
    dot = name.rfind(".")
    return name[:dot] if dot > 0 else name


def sidecar_subtitles(video_name: str, sibling_names: Iterable[str]) -> list[SubtitleTrack]:
    """The sidecar subtitles of ``video_name`` among the names in its folder, by name."""
    stem = _stem(video_name)
    found: list[SubtitleTrack] = []
    for name in sibling_names:
        lowered = name.lower()
        extension = next((ext for ext in SIDECAR_EXTENSIONS if lowered.endswith(ext)), None)
        if extension is None or not name.startswith(stem):
            continue
        middle = name[len(stem) : len(name) - len(extension)]
        if middle and not middle.startswith("."):
            continue  # "movie2.srt" belongs to "movie2", not to "movie"
        tags = [tag for tag in middle.split(".") if tag]
        language = next((tag for tag in tags if _LANGUAGE.match(tag)), None)
        label = " ".join(tags) if tags else "Subtitles"
        found.append(SubtitleTrack(key=f"f:{name}", language=language, label=label))
    return sorted(found, key=lambda track: track.key)


def decode_subtitle_bytes(data: bytes) -> str:
    """Subtitle files come in UTF-8 (with or without BOM), UTF-16 or an old 8-bit code page."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def srt_to_vtt(text: str) -> str:
    """SubRip (or WebVTT, returned as it is) to WebVTT."""
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    if text.startswith("WEBVTT"):
        return text if text.endswith("\n") else text + "\n"
    lines = []
    for line in text.split("\n"):
        if "-->" in line:
            line = _SRT_TIMING.sub(lambda m: f"{m.group(1)}.{m.group(2).ljust(3, '0')}", line)
        lines.append(line)
    return "WEBVTT\n\n" + "\n".join(lines).strip("\n") + "\n"


def _timestamp(seconds: float) -> str:
    millis = max(0, round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def ass_text(dialogue: str) -> str:
    """The shown text of an ASS/SSA ``Dialogue`` event (or of its text field alone)."""
    if dialogue.startswith("Dialogue:"):
        dialogue = dialogue.split(",", 9)[-1]
    elif dialogue.count(",") >= 8 and dialogue.split(",", 1)[0].strip().isdigit():
        # FFmpeg's packet form: ReadOrder,Layer,Style,Name,MarginL,MarginR,MarginV,Effect,Text
        dialogue = dialogue.split(",", 8)[-1]
    text = _ASS_OVERRIDE.sub("", dialogue)
    return text.replace("\\N", "\n").replace("\\n", "\n").replace("\\h", " ").strip()


def cues_to_vtt(cues: Sequence[Cue]) -> str:
    """WebVTT holding ``cues`` in time order (empty cues are left out)."""
    parts = ["WEBVTT", ""]
    for cue in sorted(cues, key=lambda c: (c.start_s, c.end_s)):
        text = cue.text.strip().replace("-->", "->")
        if not text:
            continue
        text = "\n".join(line for line in text.split("\n") if line.strip())
        parts.append(f"{_timestamp(cue.start_s)} --> {_timestamp(max(cue.end_s, cue.start_s + 0.001))}")
        parts.append(text)
        parts.append("")
    return "\n".join(parts) + "\n"
