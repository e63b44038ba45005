/**
 * A slide published by ingest from a DICOM original is a folder holding its
 * de-identified series (server/ingest/deidentify/dicom.ts), one instance per
 * level: exporting it copies those instances as they are, rather than
 * writing a second series with other UIDs.
 */
import { copyFile, mkdir, readdir } from 'node:fs/promises';
import path from 'node:path';
import type { ExportedInstance, ExportResult } from '../../wsi/dicom-writer/index.js';
import { readInstanceHeader } from '../../wsi/formats/dicom/dataset.js';
import { RandomAccessFile } from '../../wsi/tiff/file.js';

export async function copyPublishedSeries(folder: string, outDir: string): Promise<ExportResult> {
  await mkdir(outDir, { recursive: true });
  const names = (await readdir(folder)).filter((n) => !n.startsWith('.')).sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  const instances: ExportedInstance[] = [];
  let study = '';
  let series = '';
  for (const [level, name] of names.entries()) {
    const target = path.join(outDir, name);
    await copyFile(path.join(folder, name), target);
    const handle = await RandomAccessFile.open(target);
    try {
      const header = await readInstanceHeader(handle);
      const ds = header.dataSet!;
      const str = (tag: string) => ds.string(tag)?.trim() ?? '';
      study ||= str('x0020000d');
      series ||= str('x0020000e');
      instances.push({
        file: target,
        kind: 'volume',
        level,
        sopInstanceUid: str('x00080018'),
        transferSyntax: header.transferSyntax,
        photometric: str('x00280004'),
        frames: Number(str('x00280008') || '1'),
        bytes: handle.size,
        offsetTable: header.extendedOffsetTable ? 'extended' : 'basic',
      });
    } finally {
      await handle.close();
    }
  }
  return { studyInstanceUid: study, seriesInstanceUid: series, instances };
}
