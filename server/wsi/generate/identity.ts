/** Fake identifying values for a generated slide, from its seed: what de-identification must remove. */
import { mulberry32 } from './tissue.js';

const SURNAMES = ['KIM', 'LEE', 'PARK', 'CHOI', 'JUNG', 'KANG', 'CHO', 'YOON', 'JANG', 'LIM', 'HAN', 'OH', 'SEO', 'SHIN', 'KWON', 'HWANG', 'AHN', 'SONG'];
const GIVEN = ['MINJI', 'JIHOON', 'SEOYEON', 'DONGHYUN', 'HAEUN', 'JUNHO', 'YUNA', 'SUNGMIN', 'EUNJI', 'TAEYANG', 'SOYEON', 'HYUNWOO', 'JIWON', 'MINSEO'];

export interface Identity {
  patientName: string;
  barcode: string;
  /** Aperio key → value, in the order they are written. */
  fields: Record<string, string>;
  labelText: string[];
}

export function identity(seed: number): Identity {
  const rand = mulberry32(seed ^ 0x1d872b41);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rand() * list.length)]!;
  const digits = (n: number) => Array.from({ length: n }, () => Math.floor(rand() * 10)).join('');
  const pad = (n: number) => String(n).padStart(2, '0');
  const hex = (n: number) => Array.from({ length: n }, () => Math.floor(rand() * 16).toString(16)).join('');
  const surname = pick(SURNAMES);
  const given = pick(GIVEN);
  const year = 15 + Math.floor(rand() * 10);
  const date = `${pad(1 + Math.floor(rand() * 12))}/${pad(1 + Math.floor(rand() * 28))}/${pad(year)}`;
  const time = `${pad(7 + Math.floor(rand() * 12))}:${pad(Math.floor(rand() * 60))}:${pad(Math.floor(rand() * 60))}`;
  const barcode = `S${pad(year)}-${digits(5)}`;
  const fields: Record<string, string> = {
    'ScanScope ID': `SS${1000 + Math.floor(rand() * 9000)}`,
    Filename: `${surname}_${given}`,
    Date: date,
    Time: time,
    'Time Zone': 'GMT+09:00',
    User: `${hex(8)}-${hex(4)}-4${hex(3)}-${'89ab'[Math.floor(rand() * 4)]}${hex(3)}-${hex(12)}`,
    Barcode: barcode,
    ImageID: String(100000 + Math.floor(rand() * 900000)),
  };
  return { patientName: `${surname} ${given}`, barcode, fields, labelText: [barcode, `${surname} ${given}`, date] };
}
