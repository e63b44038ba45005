"""Reference decoding of DICOM frames with pydicom (Debian's python3-pydicom) for the DICOM tests.

Usage: pydicom_oracle.py FILE OUTDIR FRAMES_JSON
FRAMES_JSON: a list of 0-based frame indices.
Prints one JSON object (the instance's geometry and one raw RGB file per frame, written to OUTDIR).

Frames are decoded by pydicom's own pixel handlers (numpy for native pixel data, Pillow for JPEG and
JPEG 2000), then made RGB by the rules the slide engine follows: YBR_FULL and YBR_FULL_422 through
pydicom's convert_color_space, greyscale repeated into R, G and B (MONOCHROME1 inverted, 16-bit
samples scaled from Bits Stored to 8 bits).
"""
import json
import os
import sys

import numpy as np
import pydicom
from pydicom.pixel_data_handlers.util import convert_color_space

path, outdir, frames = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
ds = pydicom.dcmread(path)
array = ds.pixel_array
count = int(getattr(ds, "NumberOfFrames", 1) or 1)
if count == 1:
    array = array[np.newaxis, ...]
photometric = ds.PhotometricInterpretation
result = {
    "transferSyntax": str(ds.file_meta.TransferSyntaxUID),
    "photometric": photometric,
    "frames": count,
    "rows": int(ds.Rows),
    "columns": int(ds.Columns),
    "totalColumns": int(getattr(ds, "TotalPixelMatrixColumns", ds.Columns)),
    "totalRows": int(getattr(ds, "TotalPixelMatrixRows", ds.Rows)),
    "files": [],
}
for index in frames:
    frame = array[index]
    if photometric.startswith("MONOCHROME"):
        if ds.BitsAllocated == 16:
            top = 2 ** int(ds.BitsStored) - 1
            frame = np.rint((frame.astype(np.float64) * 255) / top)
        frame = frame.astype(np.uint8)
        if photometric == "MONOCHROME1":
            frame = 255 - frame
        frame = np.stack([frame] * 3, axis=-1)
    elif photometric in ("YBR_FULL", "YBR_FULL_422"):
        frame = convert_color_space(frame, photometric, "RGB")
    name = os.path.join(outdir, "frame_%d.rgb" % index)
    with open(name, "wb") as f:
        f.write(np.ascontiguousarray(frame, dtype=np.uint8).tobytes())
    result["files"].append(name)
print(json.dumps(result))
