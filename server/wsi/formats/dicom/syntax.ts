/** VL Whole Slide Microscopy Image Storage. */
export const WSI_SOP_CLASS = '1.2.840.10008.5.1.4.1.1.77.1.6';

/** How a transfer syntax's frames are stored and decoded. */
export type FrameCoding = 'native' | 'jpeg' | 'jpeg2000' | 'jpeg-ls';

export interface TransferSyntax {
  uid: string;
  name: string;
  coding: FrameCoding;
  /** Explicit VR (every little-endian syntax but Implicit VR Little Endian). */
  explicit: boolean;
}

/** The transfer syntaxes the reader decodes (PS3.5 §10, Annex A). */
const SYNTAXES: TransferSyntax[] = [
  { uid: '1.2.840.10008.1.2', name: 'Implicit VR Little Endian', coding: 'native', explicit: false },
  { uid: '1.2.840.10008.1.2.1', name: 'Explicit VR Little Endian', coding: 'native', explicit: true },
  { uid: '1.2.840.10008.1.2.4.50', name: 'JPEG Baseline (Process 1)', coding: 'jpeg', explicit: true },
  { uid: '1.2.840.10008.1.2.4.80', name: 'JPEG-LS Lossless', coding: 'jpeg-ls', explicit: true },
  { uid: '1.2.840.10008.1.2.4.81', name: 'JPEG-LS Near-Lossless', coding: 'jpeg-ls', explicit: true },
  { uid: '1.2.840.10008.1.2.4.90', name: 'JPEG 2000 Lossless', coding: 'jpeg2000', explicit: true },
  { uid: '1.2.840.10008.1.2.4.91', name: 'JPEG 2000', coding: 'jpeg2000', explicit: true },
];

/** Names of syntaxes the reader recognises but does not decode, for the refusal's message. */
const KNOWN_UNSUPPORTED: Record<string, string> = {
  '1.2.840.10008.1.2.1.99': 'Deflated Explicit VR Little Endian',
  '1.2.840.10008.1.2.2': 'Explicit VR Big Endian',
  '1.2.840.10008.1.2.4.51': 'JPEG Extended (Process 2 & 4)',
  '1.2.840.10008.1.2.4.57': 'JPEG Lossless (Process 14)',
  '1.2.840.10008.1.2.4.70': 'JPEG Lossless (Process 14, Selection Value 1)',
  '1.2.840.10008.1.2.4.201': 'High-Throughput JPEG 2000 Lossless',
  '1.2.840.10008.1.2.4.202': 'High-Throughput JPEG 2000 with RPCL Lossless',
  '1.2.840.10008.1.2.4.203': 'High-Throughput JPEG 2000',
  '1.2.840.10008.1.2.5': 'RLE Lossless',
};

export function transferSyntax(uid: string): TransferSyntax | undefined {
  return SYNTAXES.find((s) => s.uid === uid);
}

/** "1.2.840.10008.1.2.5 (RLE Lossless)", or the bare UID for one the reader does not know. */
export function describeSyntax(uid: string): string {
  const name = transferSyntax(uid)?.name ?? KNOWN_UNSUPPORTED[uid];
  return name ? `${uid} (${name})` : uid;
}
