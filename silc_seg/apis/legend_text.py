"""Legend text in any script: class names drawn with installed fonts that have their glyphs.

OpenCV's ``putText`` draws only ASCII (its Hershey fonts), so CJK and emoji class names came out
as ``????``. Here each character is drawn with the first installed font that has it (fontconfig's
``fc-list :charset=...``; preferred: the default sans-serif font, Noto Sans CJK, DejaVu Sans).
Without such a font (Debian: ``apt-get install fonts-noto-cjk``, docs/install.md) the text is
drawn with the default font, and one warning names the characters it lacks.
"""
import functools
import shutil
import subprocess
import warnings
from typing import List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# Preferred among the fonts that have a character: upright, regular, sans-serif.
_AVOID = ('Bold', 'Italic', 'Oblique', 'Serif', 'Mono', 'Condensed', 'Light', 'Black', 'Thin')
_warned: set = set()


def _fontconfig(*args: str) -> List[str]:
    if shutil.which(args[0]) is None:
        return []
    try:
        output = subprocess.run(args, capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip().rstrip(':').strip() for line in output.splitlines() if line.strip()]


@functools.lru_cache(maxsize=None)
def default_font_file() -> Optional[str]:
    """The file of fontconfig's default sans-serif font, or None."""
    found = _fontconfig('fc-match', '-f', '%{file}\n', 'sans-serif')
    return found[0] if found else None


def _usable(path: str) -> bool:
    try:
        ImageFont.truetype(path, 16)  # colour bitmap fonts (Noto Color Emoji) have one size
    except OSError:
        return False
    return True


@functools.lru_cache(maxsize=None)
def font_file_for(char: str) -> Optional[str]:
    """An installed scalable font that has a glyph for ``char``, or None."""
    files = _fontconfig('fc-list', f':charset={ord(char):x}', 'file')
    files = sorted(
        files, key=lambda path: (sum(word in path for word in _AVOID), 'CJK' not in path, path))
    default = default_font_file()
    if default in files:
        files.insert(0, default)
    return next((path for path in files if _usable(path)), None)


@functools.lru_cache(maxsize=None)
def _font(path: Optional[str], size: int) -> ImageFont.ImageFont:
    if path is None:
        return ImageFont.load_default(size)
    return ImageFont.truetype(path, size)


def text_runs(text: str) -> List[Tuple[str, Optional[str]]]:
    """``text`` split into runs drawn with one font each: ``[(run, font file), ...]``. ASCII
    takes the default font; characters no installed font has are warned about once."""
    default = default_font_file()
    runs: List[Tuple[str, Optional[str]]] = []
    missing = []
    for char in text:
        path = default if ord(char) < 128 or char.isspace() else font_file_for(char)
        if path is None:
            missing.append(char)
            path = default
        if runs and runs[-1][1] == path:
            runs[-1] = (runs[-1][0] + char, path)
        else:
            runs.append((char, path))
    new = sorted(set(missing) - _warned)
    if new:
        _warned.update(new)
        warnings.warn(f'no installed font has the characters {"".join(new)!r} (legend of '
                      f'{text!r}): they are drawn as boxes. Install fonts that have them, '
                      'e.g. apt-get install fonts-noto-cjk fonts-noto-color-emoji '
                      '(docs/install.md)')
    return runs


def text_width(text: str, size: int) -> int:
    """Width in pixels of ``text`` drawn by :func:`draw_text` at ``size``."""
    return int(sum(_font(path, size).getlength(run) for run, path in text_runs(text)))


def draw_text(image: np.ndarray,
              texts: Sequence[Tuple[str, Tuple[int, int]]],
              size: int,
              color: Tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
    """Draw each ``(text, (left, top))`` onto an RGB ``uint8`` image.

    Returns:
        np.ndarray: a new image with the text.
    """
    canvas = Image.fromarray(np.ascontiguousarray(image))
    draw = ImageDraw.Draw(canvas)
    for text, (left, top) in texts:
        x = float(left)
        for run, path in text_runs(text):
            font = _font(path, size)
            draw.text((x, top), run, fill=tuple(color), font=font)
            x += font.getlength(run)
    return np.asarray(canvas).copy()
