"""Draw a `ReportContent` as a PDF with fpdf2 (embedded DejaVu fonts: any file name prints).

Every page carries the notice at its top and "Page n of N" at its foot; a section (a view's
heading, text and images) is never split across pages when it fits on one; text is
left-aligned (fpdf2's default justification stretches the gaps between words).
"""

from __future__ import annotations

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from app.report.content import ReportContent, ReportSection
from app.report.fonts import BOLD_FONT, REGULAR_FONT

_IMAGE_MAX_HEIGHT_MM = 85.0
_GAP_MM = 6.0
_CAPTION_MM = 6.0  # room below a one-line caption
_CAPTION_LINE_MM = 3.5
_HEADING_MM, _LINE_MM = 7.0, 5.5


class _ReportPDF(FPDF):
    def __init__(self, notice: str) -> None:
        super().__init__(format="A4")
        self.notice = notice

    def header(self) -> None:
        self.set_font("DejaVu", "B", 10)
        self.set_fill_color(255, 243, 205)
        self.multi_cell(0, 7, self.notice, border=1, fill=True, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.ln(3)

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("DejaVu", "", 8)
        self.cell(0, 6, f"Page {self.page_no()} of {{nb}}", align="C")


def render_pdf(content: ReportContent) -> bytes:
    pdf = _ReportPDF(content.notice)
    pdf.set_auto_page_break(auto=True, margin=18)
    pdf.set_title(content.title)
    pdf.set_creator("bonefrac")
    pdf.add_font("DejaVu", "", str(REGULAR_FONT))
    pdf.add_font("DejaVu", "B", str(BOLD_FONT))
    pdf.add_page()
    pdf.set_font("DejaVu", "B", 16)
    pdf.cell(0, 10, content.title, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("DejaVu", "", 9)
    for line in content.header_lines:
        pdf.multi_cell(0, 5, line, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    for section in content.sections:
        pdf.ln(3)
        if pdf.get_y() + _section_height(pdf, section) > pdf.page_break_trigger:
            pdf.add_page()  # keep the view together: heading, text and images on one page
        _draw_section(pdf, section)
    return bytes(pdf.output())


def _text_height(pdf: FPDF, text: str, line_height: float) -> float:
    lines = pdf.multi_cell(0, line_height, text, align="L", dry_run=True, output="LINES")
    return len(lines) * line_height


def _section_height(pdf: FPDF, section: ReportSection) -> float:
    pdf.set_font("DejaVu", "B", 12)
    height = _text_height(pdf, section.heading, _HEADING_MM)
    pdf.set_font("DejaVu", "", 10)
    height += sum(_text_height(pdf, line, _LINE_MM) for line in section.lines)
    if section.images:
        height += max(h for _, h in _image_sizes(pdf, section.images)) + _caption_height(pdf, section.images) + 2
    return height


def _draw_section(pdf: FPDF, section: ReportSection) -> None:
    pdf.set_font("DejaVu", "B", 12)
    pdf.multi_cell(0, _HEADING_MM, section.heading, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("DejaVu", "", 10)
    for line in section.lines:
        pdf.multi_cell(0, _LINE_MM, line, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    if section.images:
        _draw_images(pdf, section.images)


def _slot_width(pdf: FPDF, count: int) -> float:
    return (pdf.epw - _GAP_MM * (count - 1)) / count


def _image_sizes(pdf: FPDF, images: tuple) -> list[tuple[float, float]]:
    slot_width = _slot_width(pdf, len(images))
    sizes = []
    for _, image in images:
        width = slot_width
        height = width * image.height / image.width
        if height > _IMAGE_MAX_HEIGHT_MM:
            height, width = _IMAGE_MAX_HEIGHT_MM, _IMAGE_MAX_HEIGHT_MM * image.width / image.height
        sizes.append((width, height))
    return sizes


def _caption_height(pdf: FPDF, images: tuple) -> float:
    """Captions wrap within their image's slot (a long one would run into its neighbour)."""
    pdf.set_font("DejaVu", "", 8)
    slot_width = _slot_width(pdf, len(images))
    lines = max(len(pdf.multi_cell(slot_width, _CAPTION_LINE_MM, c, dry_run=True, output="LINES")) for c, _ in images)
    return max(_CAPTION_MM, lines * _CAPTION_LINE_MM + 2)


def _draw_images(pdf: FPDF, images: tuple) -> None:
    slot_width = _slot_width(pdf, len(images))
    sizes = _image_sizes(pdf, images)
    block_height = max(h for _, h in sizes) + _caption_height(pdf, images)
    if pdf.get_y() + block_height + 2 > pdf.page_break_trigger:
        pdf.add_page()  # only for a section taller than a page
    top = pdf.get_y() + 2
    pdf.set_font("DejaVu", "", 8)
    for index, ((caption, image), (width, height)) in enumerate(zip(images, sizes)):
        left = pdf.l_margin + index * (slot_width + _GAP_MM)
        pdf.image(image, x=left, y=top, w=width, h=height)
        pdf.set_xy(left, top + height + 0.5)
        pdf.multi_cell(slot_width, _CAPTION_LINE_MM, caption, align="L")
    pdf.set_xy(pdf.l_margin, top + block_height)
