"""A DICOM file as pydicom reads it (Debian's python3-pydicom), for the DICOMweb tests.

Usage: dicom_json_oracle.py FILE FRAMES_JSON
FRAMES_JSON: a list of 0-based frame indices.
Prints one JSON object: the transfer syntax, the number of frames, the data set as pydicom's own
DICOM JSON (binary values as the BulkDataURI "bulk:<keyword path>"; Pixel Data and the offset tables
left out), the ICC profiles of the optical paths (base64), and the frames asked for as stored, each the
bytes of its fragments (base64), found through pydicom's reading of the encapsulated Pixel Data.
"""
import base64
import json
import sys

import pydicom
from pydicom.encaps import generate_pixel_data_frame

path, frames = sys.argv[1], json.loads(sys.argv[2])
ds = pydicom.dcmread(path)
count = int(getattr(ds, "NumberOfFrames", 1) or 1)
stored = list(generate_pixel_data_frame(ds.PixelData, count)) if frames else []

for keyword in ("PixelData", "ExtendedOffsetTable", "ExtendedOffsetTableLengths"):
    if keyword in ds:
        delattr(ds, keyword)

result = {
    "transferSyntax": str(ds.file_meta.TransferSyntaxUID),
    "frames": count,
    "json": ds.to_json_dict(bulk_data_threshold=0, bulk_data_element_handler=lambda element: "bulk"),
    "icc": [base64.b64encode(p.ICCProfile).decode() for p in getattr(ds, "OpticalPathSequence", []) if "ICCProfile" in p],
    "stored": [base64.b64encode(stored[i]).decode() for i in frames],
}
print(json.dumps(result))
