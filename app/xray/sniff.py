"""Is this DICOM? Decided by the first bytes of a file, before any decoder is asked.

A DICOM file has a 128-byte preamble and "DICM". PACS exports and older archives also hold
raw datasets, without preamble or file meta; those start with a data element of group 0002
(file meta) or 0008 (identification), which a random binary file almost never does.
"""

from __future__ import annotations

import struct

HEAD_SIZE = 132  # what `is_dicom` needs to see
_MAGIC_OFFSET = 128
_FIRST_GROUPS = frozenset({0x0002, 0x0008})
_VRS = frozenset(
    b"AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN UR US UT UV".split()
)
_MAX_FIRST_ELEMENT = 0x0100  # groups 0002 and 0008 open with low element numbers
_MAX_FIRST_LENGTH = 1024  # the first element (a group length, a character set, an image type) is short


def is_dicom(head: bytes) -> bool:
    """Whether `head` (a file's first HEAD_SIZE bytes, or fewer) starts a DICOM file or dataset."""
    return head[_MAGIC_OFFSET : _MAGIC_OFFSET + 4] == b"DICM" or _starts_a_raw_dataset(head)


def _starts_a_raw_dataset(head: bytes) -> bool:
    if len(head) < 8:
        return False
    for order in ("<", ">"):  # little endian; explicit VR big endian (retired, still archived)
        group, element = struct.unpack(f"{order}HH", head[:4])
        if group not in _FIRST_GROUPS or element >= _MAX_FIRST_ELEMENT:
            continue
        if head[4:6] in _VRS:  # explicit VR
            return True
        (length,) = struct.unpack(f"{order}I", head[4:8])
        if order == "<" and length < _MAX_FIRST_LENGTH and length % 2 == 0:  # implicit VR little endian
            return True
    return False
