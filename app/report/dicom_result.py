"""A result that goes back to PACS: a DICOM Secondary Capture image of one view.

The picture is the X-ray with the heatmap overlay where there is one and the suspicious
regions outlined where the fracture map reaches rule-in (`view_picture`), with one burned-in
line below it: verdict, probability, model version and the notice. For a DICOM
source the object joins the source's patient and study (same StudyInstanceUID, a new series
and instance), so a PACS files it with the study; for a PNG or JPEG it opens a new study with
empty patient attributes (there are none to carry).
"""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

from app import __version__
from app.atomic import write_bytes_atomic
from app.diagnosis.manifest import ModelManifest
from app.diagnosis.outlines import outline_mask
from app.diagnosis.value import NOTICE, Diagnosis
from app.errors import ReportWriteError
from app.report.content import view_picture
from app.report.fonts import BOLD_FONT, printable
from app.words import verdict_line
from app.xray import XRay

PRODUCT = "bonefrac"
SERIES_DESCRIPTION = f"{PRODUCT} fracture decision support"
SERIES_NUMBER = 9901  # after the modality's own series in a PACS's list
MIN_WIDTH = 1024  # a narrow image is enlarged so the burned-in line stays legible
# Attributes carried from the source: Patient, General Study and Patient Study modules, and
# the character set their names are written in. Nothing else of the source is copied.
_PATIENT_AND_STUDY = (
    "SpecificCharacterSet",
    "PatientName",
    "PatientID",
    "IssuerOfPatientID",
    "PatientBirthDate",
    "PatientSex",
    "PatientAge",
    "PatientSize",
    "PatientWeight",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "StudyID",
    "AccessionNumber",
    "ReferringPhysicianName",
    "StudyDescription",
)
# Type 2 attributes of the Patient and General Study modules: present, empty when unknown (a
# PNG/JPEG source, or a DICOM source that lacks them).
_TYPE_2 = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "ReferringPhysicianName",
    "StudyID",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
)


def write_dicom_result(
    path: Path, xray: XRay, diagnosis: Diagnosis, manifest: ModelManifest, created: dt.datetime | None = None
) -> Path:
    """Write the Secondary Capture of one view at `path`, atomically. Raises ReportWriteError."""
    path = Path(path)
    if not path.parent.is_dir():
        raise ReportWriteError(f"{path.parent}: the folder does not exist")
    data = render_dicom_result(xray, diagnosis, manifest, created)
    try:
        write_bytes_atomic(path, data)
    except OSError as error:
        raise ReportWriteError(f"{path}: the DICOM result could not be written ({error.strerror})") from None
    return path


def render_dicom_result(
    xray: XRay, diagnosis: Diagnosis, manifest: ModelManifest, created: dt.datetime | None = None
) -> bytes:
    created = created or dt.datetime.now().astimezone()
    dataset = _identity(xray.dicom_header, created)
    if outline_mask(diagnosis, xray.width, xray.height) is not None:
        dataset.DerivationDescription = (
            "Fracture detection decision support: heatmap, suspicious-region outlines and result burned in"
        )
    _set_pixels(dataset, _picture(xray, diagnosis, manifest))
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def burned_in_line(diagnosis: Diagnosis, manifest: ModelManifest) -> str:
    notice = NOTICE.split(". ")[0]  # "Decision support, not a diagnosis"
    line = verdict_line(diagnosis.verdict, diagnosis.fracture_probability, diagnosis.unsupported_reason)
    return printable(f"{line} | model {manifest.version} | {notice}")


def _picture(xray: XRay, diagnosis: Diagnosis, manifest: ModelManifest) -> Image.Image:
    """The view's picture (overlay and outlines where there are) above a black band with the line."""
    image = view_picture(xray, diagnosis)
    if image.width < MIN_WIDTH:
        scale = MIN_WIDTH / image.width
        image = image.resize((MIN_WIDTH, max(1, round(image.height * scale))), Image.Resampling.LANCZOS)
    text = burned_in_line(diagnosis, manifest)
    size = max(12, image.width // 48)
    font = ImageFont.truetype(str(BOLD_FONT), size)
    while font.getlength(text) > image.width * 0.96 and size > 8:  # one line, shrunk to fit
        size -= 1
        font = ImageFont.truetype(str(BOLD_FONT), size)
    band = size * 2
    page = Image.new("RGB", (image.width, image.height + band), "black")
    page.paste(image, (0, 0))
    origin = (image.width * 0.02, image.height + band // 2)
    ImageDraw.Draw(page).text(origin, text, font=font, fill="white", anchor="lm")
    return page


def _identity(source: Dataset | None, created: dt.datetime) -> Dataset:
    """Patient, study, series, equipment and SOP attributes of the new object."""
    dataset = Dataset()
    if source is not None:
        for keyword in _PATIENT_AND_STUDY:
            if keyword in source:
                dataset[keyword] = source[keyword]
    if "StudyInstanceUID" not in dataset:  # a PNG/JPEG, or a DICOM without a study: a new study
        dataset.StudyInstanceUID = generate_uid()
        dataset.StudyDate, dataset.StudyTime = f"{created:%Y%m%d}", f"{created:%H%M%S}"
    for keyword in _TYPE_2:
        dataset.setdefault(keyword, "")
    dataset.SOPClassUID = SecondaryCaptureImageStorage
    dataset.SOPInstanceUID = generate_uid()
    dataset.SeriesInstanceUID = generate_uid()
    dataset.SeriesNumber = SERIES_NUMBER
    dataset.SeriesDescription = SERIES_DESCRIPTION
    dataset.Modality = "OT"
    # Type 2C (a paired body part needs it): the source's side when it says, else empty (unknown).
    dataset.Laterality = source.get("Laterality", "") if source is not None else ""
    dataset.ConversionType = "WSD"  # made on a workstation
    dataset.Manufacturer = PRODUCT
    dataset.SoftwareVersions = [__version__]
    dataset.InstanceNumber = 1
    dataset.PatientOrientation = ""
    dataset.ImageType = ["DERIVED", "SECONDARY"]
    dataset.DerivationDescription = "Fracture detection decision support: heatmap and result burned in"
    dataset.BurnedInAnnotation = "YES"
    date, time = f"{created:%Y%m%d}", f"{created:%H%M%S}"
    dataset.ContentDate = dataset.InstanceCreationDate = dataset.DateOfSecondaryCapture = date
    dataset.ContentTime = dataset.InstanceCreationTime = dataset.TimeOfSecondaryCapture = time
    if source is not None and "SOPInstanceUID" in source and "SOPClassUID" in source:
        reference = Dataset()
        reference.ReferencedSOPClassUID = source.SOPClassUID
        reference.ReferencedSOPInstanceUID = source.SOPInstanceUID
        dataset.SourceImageSequence = [reference]
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.MediaStorageSOPClassUID = dataset.SOPClassUID
    dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return dataset


def _set_pixels(dataset: Dataset, picture: Image.Image) -> None:
    pixels = np.asarray(picture, dtype=np.uint8)
    dataset.Rows, dataset.Columns = pixels.shape[:2]
    dataset.SamplesPerPixel = 3
    dataset.PhotometricInterpretation = "RGB"
    dataset.PlanarConfiguration = 0
    dataset.BitsAllocated = dataset.BitsStored = 8
    dataset.HighBit = 7
    dataset.PixelRepresentation = 0
    dataset.PixelData = pixels.tobytes()
