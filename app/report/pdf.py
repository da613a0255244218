"""Draw a `ReportContent` as a PDF with fpdf2 (embedded DejaVu fonts: any file name prints)."""

from __future__ import annotations

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from app.report.content import ReportContent
from app.report.fonts import BOLD_FONT, REGULAR_FONT

_IMAGE_MAX_HEIGHT_MM = 85.0
_GAP_MM = 6.0


def render_pdf(content: ReportContent) -> bytes:
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.set_title(content.title)
    pdf.set_creator("bonefrac")
    pdf.add_font("DejaVu", "", str(REGULAR_FONT))
    pdf.add_font("DejaVu", "B", str(BOLD_FONT))
    pdf.add_page()
    pdf.set_font("DejaVu", "B", 16)
    pdf.cell(0, 10, content.title, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("DejaVu", "B", 10)
    pdf.set_fill_color(255, 243, 205)
    pdf.multi_cell(0, 7, content.notice, border=1, fill=True, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(2)
    pdf.set_font("DejaVu", "", 9)
    for line in content.header_lines:
        pdf.multi_cell(0, 5, line, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    for section in content.sections:
        pdf.ln(3)
        pdf.set_font("DejaVu", "B", 12)
        pdf.multi_cell(0, 7, section.heading, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_font("DejaVu", "", 10)
        for line in section.lines:
            pdf.multi_cell(0, 5.5, line, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        if section.images:
            _draw_images(pdf, section.images)
    return bytes(pdf.output())


def _draw_images(pdf: FPDF, images: tuple) -> None:
    slot_width = (pdf.epw - _GAP_MM * (len(images) - 1)) / len(images)
    sizes = []
    for _, image in images:
        width = slot_width
        height = width * image.height / image.width
        if height > _IMAGE_MAX_HEIGHT_MM:
            height, width = _IMAGE_MAX_HEIGHT_MM, _IMAGE_MAX_HEIGHT_MM * image.width / image.height
        sizes.append((width, height))
    block_height = max(h for _, h in sizes) + 6
    if pdf.get_y() + block_height > pdf.h - pdf.b_margin:
        pdf.add_page()
    top = pdf.get_y() + 2
    pdf.set_font("DejaVu", "", 8)
    for index, ((caption, image), (width, height)) in enumerate(zip(images, sizes)):
        left = pdf.l_margin + index * (slot_width + _GAP_MM)
        pdf.image(image, x=left, y=top, w=width, h=height)
        pdf.set_xy(left, top + height + 0.5)
        pdf.cell(slot_width, 4, caption)
    pdf.set_xy(pdf.l_margin, top + block_height)
