"""Real DICOM files, written with pydicom from real X-ray pixels, for the tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid


def write_dicom(
    path: Path,
    pixels: np.ndarray | None,
    photometric: str = "MONOCHROME2",
    bits: int = 16,
    signed: bool = False,
    transfer_syntax=ExplicitVRLittleEndian,
    pixel_bytes: bytes | None = None,
    **attributes,
) -> Path:
    """`pixels`: (rows, columns) or (frames, rows, columns). Extra keyword arguments become
    DICOM attributes (e.g. RescaleSlope=2, WindowCenter=..., BodyPartExamined="HAND")."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = transfer_syntax
    dataset = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    dataset.Modality = "DX"
    dataset.PatientName = "Doe^Jane"
    dataset.PatientID = "123456"
    dataset.SOPClassUID = SecondaryCaptureImageStorage
    dataset.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    if pixels is not None:
        shape = pixels.shape
        if len(shape) == 3:
            dataset.NumberOfFrames = shape[0]
        dataset.Rows, dataset.Columns = shape[-2], shape[-1]
        dataset.SamplesPerPixel = 1
        dataset.PhotometricInterpretation = photometric
        dataset.BitsAllocated = bits
        dataset.BitsStored = bits
        dataset.HighBit = bits - 1
        dataset.PixelRepresentation = 1 if signed else 0
        dtype = {(8, False): np.uint8, (16, False): np.uint16, (16, True): np.int16}[(bits, signed)]
        dataset.PixelData = pixel_bytes if pixel_bytes is not None else pixels.astype(dtype).tobytes()
        if pixel_bytes is not None:
            dataset["PixelData"].is_undefined_length = True
    for name, value in attributes.items():
        setattr(dataset, name, value)
    dataset.save_as(path, enforce_file_format=True)
    return path
