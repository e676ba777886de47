// Character classes for the BERT basic tokenizer, matching Hugging Face's BertNormalizer/BertPreTokenizer.
// The class tables come from the `tokenizers` binding itself (unicode-tables.ts, generated), because its
// Rust Unicode data is older than Node's ICU and `\p{..}` would disagree on a few hundred code points.
import { DROP_RANGES, SPACE_RANGES, PUNCT_RANGES, MN_RANGES } from './unicode-tables.js';

export const C_DROP = 1; // removed by clean_text
export const C_SPACE = 2; // becomes a word boundary
export const C_PUNCT = 4; // its own word
export const C_MN = 8; // dropped by strip_accents
export const C_CJK = 16; // isolated by handle_chinese_chars

const CJK_RANGES = [
  0x4e00, 0x9fff, 0x3400, 0x4dbf, 0x20000, 0x2a6df, 0x2a700, 0x2b73f, 0x2b740, 0x2b81f, 0x2b820, 0x2ceaf, 0xf900, 0xfaff,
  0x2f800, 0x2fa1f,
];

const TABLES: [readonly number[], number][] = [
  [DROP_RANGES, C_DROP],
  [SPACE_RANGES, C_SPACE],
  [PUNCT_RANGES, C_PUNCT],
  [MN_RANGES, C_MN],
  [CJK_RANGES, C_CJK],
];

/** Class bits for every BMP code unit (surrogates are classed C_DROP; pairs are handled by the caller). */
export const BMP_CLASS: Uint8Array = (() => {
  const t = new Uint8Array(0x10000);
  for (const [ranges, bit] of TABLES) {
    for (let r = 0; r < ranges.length; r += 2) {
      const a = ranges[r], b = Math.min(ranges[r + 1], 0xffff);
      for (let cp = a; cp <= b; cp++) t[cp] |= bit;
    }
  }
  return t;
})();

function inRanges(ranges: readonly number[], cp: number): boolean {
  let lo = 0, hi = ranges.length / 2 - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (cp < ranges[2 * mid]) hi = mid - 1;
    else if (cp > ranges[2 * mid + 1]) lo = mid + 1;
    else return true;
  }
  return false;
}

// Ranges are sorted by construction except CJK_RANGES; keep a sorted copy for the binary search.
const CJK_SORTED = (() => {
  const pairs: [number, number][] = [];
  for (let i = 0; i < CJK_RANGES.length; i += 2) pairs.push([CJK_RANGES[i], CJK_RANGES[i + 1]]);
  pairs.sort((a, b) => a[0] - b[0]);
  return pairs.flat();
})();

export function charClass(cp: number): number {
  if (cp < 0x10000) return BMP_CLASS[cp];
  let k = 0;
  if (inRanges(DROP_RANGES, cp)) k |= C_DROP;
  if (inRanges(SPACE_RANGES, cp)) k |= C_SPACE;
  if (inRanges(PUNCT_RANGES, cp)) k |= C_PUNCT;
  if (inRanges(MN_RANGES, cp)) k |= C_MN;
  if (inRanges(CJK_SORTED, cp)) k |= C_CJK;
  return k;
}

/** What the normalizer turns one (non-dropped, non-space) code point into, as in BertNormalizer:
 * strip_accents = NFD then drop Mn; lowercase = per-char full lowercase (no final-sigma context, like Rust). */
export function normalizeChar(ch: string, lower: boolean, strip: boolean): string {
  let s = ch;
  if (strip) {
    const d = ch.normalize('NFD');
    let out = '';
    for (let i = 0; i < d.length; ) {
      const cp = d.codePointAt(i)!;
      const w = cp > 0xffff ? 2 : 1;
      if ((charClass(cp) & C_MN) === 0) out += d.slice(i, i + w);
      i += w;
    }
    s = out;
  }
  if (lower && s.length > 0) {
    let out = '';
    for (let i = 0; i < s.length; ) {
      const cp = s.codePointAt(i)!;
      const w = cp > 0xffff ? 2 : 1;
      out += s.slice(i, i + w).toLowerCase();
      i += w;
    }
    s = out;
  }
  return s;
}
