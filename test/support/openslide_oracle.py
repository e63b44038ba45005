"""Reference reads with OpenSlide (Debian's python3-openslide) for the cross-check tests.

Usage: openslide_oracle.py SLIDE OUTDIR REQUESTS_JSON
REQUESTS_JSON: {"tiles": [[level, col, row], ...], "regions": [[level, x0, y0, w, h], ...],
                "associated": [name, ...]}
  (region x0/y0 are level-0 coordinates, as read_region takes them).
Prints one JSON object; pixels are written to OUTDIR as raw RGB files.
"""
import json
import os
import sys

import openslide
from openslide.deepzoom import DeepZoomGenerator

path, outdir, requests = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
slide = openslide.OpenSlide(path)
dz = DeepZoomGenerator(slide, 254, 1, False)
result = {
    "vendor": openslide.OpenSlide.detect_format(path),
    "properties": dict(slide.properties),
    "levels": [[w, h, d] for (w, h), d in zip(slide.level_dimensions, slide.level_downsamples)],
    "associated": {name: list(image.size) for name, image in slide.associated_images.items()},
    "dz": {"dims": [list(d) for d in dz.level_dimensions], "tiles": [list(t) for t in dz.level_tiles]},
    "tiles": [],
    "regions": [],
    "associatedPixels": [],
}
for level, col, row in requests.get("tiles", []):
    image = dz.get_tile(level, (col, row)).convert("RGB")
    name = os.path.join(outdir, "tile_%d_%d_%d.rgb" % (level, col, row))
    with open(name, "wb") as f:
        f.write(image.tobytes())
    result["tiles"].append({"request": [level, col, row], "size": list(image.size), "file": name})
for level, x, y, w, h in requests.get("regions", []):
    image = slide.read_region((x, y), level, (w, h)).convert("RGB")
    name = os.path.join(outdir, "region_%d_%d_%d.rgb" % (level, x, y))
    with open(name, "wb") as f:
        f.write(image.tobytes())
    result["regions"].append({"request": [level, x, y, w, h], "file": name})
for name in requests.get("associated", []):
    image = slide.associated_images[name].convert("RGB")
    file = os.path.join(outdir, "associated_%s.rgb" % name)
    with open(file, "wb") as f:
        f.write(image.tobytes())
    result["associatedPixels"].append({"name": name, "size": list(image.size), "file": file})
print(json.dumps(result))
