/** TIFF tag numbers used by the reader (TIFF 6.0, the TIFF Technical Notes, and Adobe's JPEG-in-TIFF). */
export const Tag = {
  NewSubfileType: 254,
  ImageWidth: 256,
  ImageLength: 257,
  BitsPerSample: 258,
  Compression: 259,
  Photometric: 262,
  DocumentName: 269,
  ImageDescription: 270,
  Make: 271,
  Model: 272,
  StripOffsets: 273,
  SamplesPerPixel: 277,
  RowsPerStrip: 278,
  StripByteCounts: 279,
  XResolution: 282,
  YResolution: 283,
  PlanarConfig: 284,
  ResolutionUnit: 296,
  Software: 305,
  DateTime: 306,
  Artist: 315,
  HostComputer: 316,
  Predictor: 317,
  TileWidth: 322,
  TileLength: 323,
  TileOffsets: 324,
  TileByteCounts: 325,
  SubIFDs: 330,
  ExtraSamples: 338,
  SampleFormat: 339,
  JPEGTables: 347,
  YCbCrSubSampling: 530,
  ReferenceBlackWhite: 532,
  Copyright: 33432,
  ICCProfile: 34675,
} as const;

export const Compression = {
  None: 1,
  LZW: 5,
  OldJPEG: 6,
  JPEG: 7,
  Deflate: 8,
  PackBits: 32773,
  AdobeDeflate: 32946,
  /** Aperio JPEG 2000, YCbCr components. */
  AperioJP2kYCbCr: 33003,
  /** Aperio JPEG 2000, RGB components. */
  AperioJP2kRGB: 33005,
  Zstd: 50000,
  WebP: 50001,
} as const;

export const Photometric = { MinIsWhite: 0, MinIsBlack: 1, RGB: 2, Palette: 3, YCbCr: 6 } as const;

/** Field types: size in bytes of one value. */
export const TYPE_SIZE: Record<number, number> = {
  1: 1, // BYTE
  2: 1, // ASCII
  3: 2, // SHORT
  4: 4, // LONG
  5: 8, // RATIONAL
  6: 1, // SBYTE
  7: 1, // UNDEFINED
  8: 2, // SSHORT
  9: 4, // SLONG
  10: 8, // SRATIONAL
  11: 4, // FLOAT
  12: 8, // DOUBLE
  13: 4, // IFD
  16: 8, // LONG8 (BigTIFF)
  17: 8, // SLONG8
  18: 8, // IFD8
};
