"""Draw a `ReportContent` as one PNG page (A4 proportions at 150 dpi, longer if needed)."""

from __future__ import annotations

import io
import re

from PIL import Image, ImageDraw, ImageFont

from app.report.content import ReportContent
from app.report.fonts import BOLD_FONT, REGULAR_FONT

PAGE_WIDTH = 1240
PAGE_MIN_HEIGHT = 1754
MARGIN = 70
IMAGE_MAX_HEIGHT = 500


def _wrap(text: str, font: ImageFont.FreeTypeFont, width: int) -> list[str]:
    lines, current = [], ""
    for word in (chunk for whole in text.split() for chunk in _split_long(whole, font, width)):
        trial = f"{current} {word}".strip()
        if font.getlength(trial) <= width or not current:
            current = trial
        else:
            lines.append(current)
            current = word
    return lines + ([current] if current else [])


def _split_long(word: str, font: ImageFont.FreeTypeFont, width: int) -> list[str]:
    """A word wider than the line (a long file name, say) in pieces that fit; a code point
    written as <U+624B> is never cut."""
    if font.getlength(word) <= width:
        return [word]
    chunks, current = [], ""
    for piece in re.findall(r"<U\+[0-9A-F]+>|.", word):
        if current and font.getlength(current + piece) > width:
            chunks.append(current)
            current = piece
        else:
            current += piece
    return [*chunks, current]


def render_png(content: ReportContent) -> bytes:
    # Lay out twice: once to measure the height, once on a page of exactly that height.
    height = max(PAGE_MIN_HEIGHT, _layout(content, Image.new("RGB", (PAGE_WIDTH, 1), "white")) + MARGIN)
    page = Image.new("RGB", (PAGE_WIDTH, height), "white")
    _layout(content, page)
    buffer = io.BytesIO()
    page.save(buffer, format="PNG")
    return buffer.getvalue()


def _layout(content: ReportContent, page: Image.Image) -> int:
    """Draw the content onto `page` (drawing past its bottom is clipped); return the end y."""
    title_font = ImageFont.truetype(str(BOLD_FONT), 34)
    heading_font = ImageFont.truetype(str(BOLD_FONT), 24)
    body_font = ImageFont.truetype(str(REGULAR_FONT), 20)
    small_font = ImageFont.truetype(str(REGULAR_FONT), 17)
    text_width = PAGE_WIDTH - 2 * MARGIN
    draw = ImageDraw.Draw(page)
    y = MARGIN

    def text(line: str, font: ImageFont.FreeTypeFont, spacing: int = 8) -> None:
        nonlocal y
        for wrapped in _wrap(line, font, text_width):
            draw.text((MARGIN, y), wrapped, font=font, fill="black")
            y += font.size + spacing

    text(content.title, title_font, 16)
    notice_lines = _wrap(content.notice, heading_font, text_width - 24)
    box_height = len(notice_lines) * 32 + 20
    draw.rectangle((MARGIN, y, PAGE_WIDTH - MARGIN, y + box_height), fill=(255, 243, 205), outline="black")
    for index, line in enumerate(notice_lines):
        draw.text((MARGIN + 12, y + 10 + index * 32), line, font=heading_font, fill="black")
    y += box_height + 16
    for line in content.header_lines:
        text(line, small_font, 6)
    for section in content.sections:
        y += 18
        text(section.heading, heading_font, 10)
        for line in section.lines:
            text(line, body_font)
        if section.images:
            slot = (text_width - 20 * (len(section.images) - 1)) // len(section.images)
            tallest, caption_lines = 0, 1
            for index, (caption, image) in enumerate(section.images):
                scale = min(slot / image.width, IMAGE_MAX_HEIGHT / image.height)
                shown = image.resize((max(1, int(image.width * scale)), max(1, int(image.height * scale))))
                left = MARGIN + index * (slot + 20)
                page.paste(shown, (left, y + 8))
                wrapped = _wrap(caption, small_font, slot)  # within its slot, clear of its neighbour
                for number, line in enumerate(wrapped):
                    draw.text((left, y + 14 + shown.height + number * 22), line, font=small_font, fill="black")
                tallest, caption_lines = max(tallest, shown.height), max(caption_lines, len(wrapped))
            y += tallest + 28 + 22 * caption_lines
    return y
