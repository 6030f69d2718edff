"""The image served for a video without a thumbnail (BROKEN, failed, not made yet)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

from gql_media.adapters.media.thumbnail import save_image_atomically
from gql_media.core.thumbnails import placeholder_path

__all__ = ["ensure_placeholder"]


def ensure_placeholder(thumbnails_dir: Path, width_px: int = 320, image_format: str = "jpeg") -> Path:
    """The placeholder image at this width and format; drawn once, then found.

    Blocking but cheap (a few ms, once): call it at start-up.
    """
    path = Path(placeholder_path(str(thumbnails_dir), width_px, image_format))
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
    save_image_atomically(image, str(path))
    return path
