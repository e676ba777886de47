// BERT WordPiece tokenizer, id-for-id identical to Hugging Face's BertTokenizerFast (the `tokenizers`
// BertNormalizer + BertPreTokenizer + WordPiece pipeline), with [start, end) UTF-16 offsets into the
// original text.
//
// Speed comes from (1) a char-code scan with a 128-entry class table for ASCII, (2) a word -> pieces cache
// probed with a hash computed during the scan (so the common case allocates no substring and never runs
// WordPiece), (3) reusable output buffers.
// Non-ASCII words take a slower path that normalizes per code point (cached) and tracks where every
// normalized code unit came from.
//
// Where the Python ("slow") BertTokenizer and the Rust ("fast") one disagree we follow the fast one, which is
// what AutoTokenizer loads and what the tests compare against: unassigned code points (Cn) are kept, not
// deleted; lowercasing is per character (a final 'Σ' becomes 'σ', not 'ς'); accents are stripped before
// lowercasing; and character classes come from the Rust crate's Unicode tables (unicode-tables.ts).
// Literal special tokens in the text ("[MASK]", "[SEP]", ...) become their ids, as HF's added tokens do.
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { charClass, normalizeChar, BMP_CLASS, C_CJK, C_DROP, C_PUNCT, C_SPACE } from './unicode.js';
import { type TokenizerConfig, resolveConfig, configFromHfJson, configToHfJson } from './config.js';
import { nativeOptional } from '../../native.js';

// ASCII kinds
const A_WORD = 0, A_SPACE = 1, A_PUNCT = 2, A_DROP = 3;
const ASCII_KIND = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  const k = BMP_CLASS[c];
  ASCII_KIND[c] = k & C_DROP ? A_DROP : k & C_SPACE ? A_SPACE : k & C_PUNCT ? A_PUNCT : A_WORD;
}

// ASCII case folding for cache keys (uncased: A-Z -> a-z) and the identity (cased)
const ASCII_LOWER = new Uint8Array(128);
const ASCII_SAME = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  ASCII_SAME[c] = c;
  ASCII_LOWER[c] = c >= 65 && c <= 90 ? c + 32 : c;
}

// Kinds of a non-ASCII code point after cleaning + normalization (depends on the config).
const K_DROP = 0, K_SPACE = 1, K_CJK = 2, K_WORD = 3, K_MIXED = 4;
// Fast-path classes of a non-ASCII BMP unit: a word char normalizing to one code unit, a space, a char
// that is a word by itself (punctuation, CJK), or anything else (general path).
const S_WORD = 1, S_SPACE = 2, S_ALONE = 3, S_COMPLEX = 4;
interface CharEntry {
  kind: number;
  /** normalized text (K_WORD: appended to the current word; K_CJK: the whole word; K_MIXED: split per char) */
  norm: string;
}

const FNV_PRIME = 16777619;
const FNV_BASIS = -2128831035; // 2166136261 as int32

/** word -> pieces cache: open addressing over char-code hashes, so a hit costs no substring or string
 * hashing; pieces of all words live in one Int32Array pool as (id, end) pairs. Cleared when full. */
class WordCache {
  static readonly MAX_ENTRIES = 1 << 18;
  private mask = (1 << 12) - 1;
  private slots = new Int32Array(1 << 12); // entry + 1, 0 = empty; grows to keep load <= 1/4
  private keys: string[] = [];
  private hashes = new Int32Array(1024);
  off = new Int32Array(1024);
  cnt = new Int32Array(1024);
  pool = new Int32Array(1 << 16);
  private poolLen = 0;
  private count = 0;

  private newEntry(key: string, h: number): number {
    const idx = this.count++;
    if (idx === this.hashes.length) {
      const cap = idx * 2;
      this.hashes = grow32(this.hashes, cap);
      this.off = grow32(this.off, cap);
      this.cnt = grow32(this.cnt, cap);
    }
    this.keys[idx] = key;
    this.hashes[idx] = h;
    if (this.count * 4 > this.slots.length) {
      // rehash into twice the slots
      this.slots = new Int32Array(this.slots.length * 2);
      this.mask = this.slots.length - 1;
      for (let e = 0; e < this.count; e++) this.place(e);
    } else this.place(idx);
    return idx;
  }

  private place(e: number): void {
    let slot = this.hashes[e] & this.mask;
    while (this.slots[slot] !== 0) slot = (slot + 1) & this.mask;
    this.slots[slot] = e + 1;
  }

  /** entry index of the word fold(text[s, e)) (ASCII only) or -1 */
  findFolded(text: string, s: number, e: number, h: number, fold: Uint8Array): number {
    const len = e - s;
    for (let slot = h & this.mask; ; slot = (slot + 1) & this.mask) {
      const v = this.slots[slot];
      if (v === 0) return -1;
      const idx = v - 1;
      if (this.hashes[idx] !== h) continue;
      const key = this.keys[idx];
      if (key.length !== len) continue;
      let k = 0;
      while (k < len && key.charCodeAt(k) === fold[text.charCodeAt(s + k)]) k++;
      if (k === len) return idx;
    }
  }

  /** entry index of the word text[s, e) or -1 */
  findText(text: string, s: number, e: number, h: number): number {
    const len = e - s;
    for (let slot = h & this.mask; ; slot = (slot + 1) & this.mask) {
      const v = this.slots[slot];
      if (v === 0) return -1;
      const idx = v - 1;
      if (this.hashes[idx] !== h) continue;
      const key = this.keys[idx];
      if (key.length !== len) continue;
      let k = 0;
      while (k < len && key.charCodeAt(k) === text.charCodeAt(s + k)) k++;
      if (k === len) return idx;
    }
  }

  findStr(word: string, h: number): number {
    for (let slot = h & this.mask; ; slot = (slot + 1) & this.mask) {
      const v = this.slots[slot];
      if (v === 0) return -1;
      const idx = v - 1;
      if (this.hashes[idx] === h && this.keys[idx] === word) return idx;
    }
  }

  insert(key: string, h: number, pieces: Int32Array): number {
    if (this.count >= WordCache.MAX_ENTRIES) this.clear();
    if (this.poolLen + pieces.length > this.pool.length) this.pool = grow32(this.pool, Math.max(this.pool.length * 2, this.poolLen + pieces.length));
    this.pool.set(pieces, this.poolLen);
    const idx = this.newEntry(key, h);
    this.off[idx] = this.poolLen;
    this.cnt[idx] = pieces.length >> 1;
    this.poolLen += pieces.length;
    return idx;
  }

  clear(): void {
    this.slots.fill(0);
    this.keys = [];
    this.count = 0;
    this.poolLen = 0;
  }
}

/** Exact string -> id over char-code hashes: WordPiece probes substrings of a word without slicing. */
class TokenTable {
  private readonly mask: number;
  private readonly slots: Int32Array; // entry + 1
  private readonly keys: string[] = [];
  private readonly ids: number[] = [];
  private readonly hashes: number[] = [];

  constructor(entries: [string, number][]) {
    let cap = 1024;
    while (cap < entries.length * 4) cap *= 2;
    this.mask = cap - 1;
    this.slots = new Int32Array(cap);
    for (const [k, id] of entries) {
      const h = hashString(k);
      const found = this.find(k, 0, k.length, h);
      if (found >= 0) {
        // duplicate token: the later id wins (HF load_vocab)
        const e = this.keys.indexOf(k);
        this.ids[e] = id;
        continue;
      }
      const e = this.keys.length;
      this.keys.push(k);
      this.ids.push(id);
      this.hashes.push(h);
      let slot = h & this.mask;
      while (this.slots[slot] !== 0) slot = (slot + 1) & this.mask;
      this.slots[slot] = e + 1;
    }
  }

  /** id of s[from, to) given its hash, or -1 */
  find(s: string, from: number, to: number, h: number): number {
    const len = to - from;
    for (let slot = h & this.mask; ; slot = (slot + 1) & this.mask) {
      const v = this.slots[slot];
      if (v === 0) return -1;
      const e = v - 1;
      if (this.hashes[e] !== h) continue;
      const key = this.keys[e];
      if (key.length !== len) continue;
      let k = 0;
      while (k < len && key.charCodeAt(k) === s.charCodeAt(from + k)) k++;
      if (k === len) return this.ids[e];
    }
  }
}

function grow32(a: Int32Array, cap: number): Int32Array<ArrayBuffer> {
  const b = new Int32Array(cap);
  b.set(a);
  return b;
}

function hashString(s: string): number {
  let h = FNV_BASIS;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), FNV_PRIME);
  return h;
}

/** The native WordPiece entry points (native/wordpiece.cc). */
interface NativeWordPiece {
  wordpieceCreate(tokens: string, lengths: Int32Array, cfg: { lower: boolean; unkId: number; maxChars: number; asciiKind: Uint8Array; specials: string[]; specialIds: number[] }): object;
  wordpieceDefine(h: object, cps: Int32Array, kinds: Uint8Array, normOff: Int32Array, norm: Uint16Array, normCls: Uint8Array): void;
  wordpieceEncodeBatch(h: object, texts: string[], threads: number): NativeBatch;
  wordpieceEncodeBatchAsync(h: object, texts: string[], threads: number): Promise<NativeBatch>;
}
type NativeBatch = { ids: Int32Array<ArrayBuffer>; lens: Int32Array<ArrayBuffer>; missing: Int32Array };

let nativeAddon: NativeWordPiece | null | undefined;
/** The addon's WordPiece, or null: not built, or LINKBERT_NATIVE_TOKENIZER=0 (the TypeScript tokenizer does the work). */
function nativeWordPiece(): NativeWordPiece | null {
  if (nativeAddon === undefined) nativeAddon = nativeOptional<NativeWordPiece>('wordpieceEncodeBatch', 'LINKBERT_NATIVE_TOKENIZER');
  return nativeAddon;
}

/** Token ids of a batch of texts, back to back: text t is ids[start[t], start[t + 1]). */
export interface EncodedBatch {
  ids: Int32Array<ArrayBuffer>;
  start: Int32Array<ArrayBuffer>;
}

export class WordPieceTokenizer {
  readonly config: TokenizerConfig;
  readonly vocab: readonly string[];
  readonly vocabSize: number;
  readonly clsId: number;
  readonly sepId: number;
  readonly padId: number;
  readonly maskId: number;
  readonly unkId: number;
  /** vocab lines that repeated an earlier token (HF keeps the later id for lookups). */
  readonly duplicateTokens: number;

  private readonly tokMap: Map<string, number>;
  private readonly tokTable: TokenTable;
  private readonly contTable: TokenTable; // '##x' stored as 'x'
  private prefixHash = new Int32Array(128);
  private wpOut = new Int32Array(256);
  private readonly maxTokLen: number;
  private readonly maxContLen: number;
  private readonly lower: boolean;
  private readonly strip: boolean;
  private readonly cjk: boolean;
  private readonly wordStart: Uint8Array;
  private readonly specialIds: Set<number>;
  private readonly specials: { text: string; id: number }[]; // matched in raw text, longest first
  private readonly asciiIds: Int32Array; // id of each ASCII char as a one-char word (unk if absent)
  private readonly specialFirst = new Uint8Array(128); // ASCII punctuation that can start a special token
  private readonly bmpEntries: (CharEntry | undefined)[] = new Array(0x10000);
  private readonly astralEntries = new Map<number, CharEntry>();
  private readonly cache = new WordCache(); // normalized word -> pieces
  private readonly fold: Uint8Array; // ASCII normalization for cache lookups
  private readonly rawCache = new WordCache(); // raw non-ASCII "simple" word -> pieces
  private readonly simple = new Uint8Array(0x10000); // S_* class of each BMP unit, 0 = not yet known
  private readonly simpleNorm = new Uint16Array(0x10000); // S_WORD: its normalized code unit

  private nativeHandle: object | null | undefined; // undefined: not created yet

  // output buffers, reused across calls
  private outIds = new Int32Array(1024);
  private outOff = new Int32Array(2048);
  private outWid = new Int32Array(1024);
  private n = 0;
  private wordIdx = 0;
  private fixedWord = -1; // encodeWords: every piece gets this word index
  private wantOffsets = false;
  private sink: string[] | null = null; // basicTokenize: collect normalized words instead of pieces
  // per normalized code unit of the current slow-path word: where it came from in the original text
  private nStart = new Int32Array(256);
  private nEnd = new Int32Array(256);
  private sw = ''; // the slow-path word being built

  private constructor(tokens: string[], config: TokenizerConfig, where: string) {
    this.config = Object.freeze({ ...config });
    this.vocab = Object.freeze(tokens.slice());
    this.vocabSize = tokens.length;
    this.tokMap = new Map();
    const cont: [string, number][] = [];
    let dups = 0, maxTok = 0, maxCont = 0;
    for (let id = 0; id < tokens.length; id++) {
      const t = tokens[id];
      if (typeof t !== 'string') throw new Error(`${where}: vocab entry ${id} is not a string`);
      if (this.tokMap.has(t)) dups++;
      this.tokMap.set(t, id); // later id wins, as in HF's load_vocab
      if (t.length > maxTok) maxTok = t.length;
      if (t.startsWith('##') && t.length > 2) {
        cont.push([t.slice(2), id]);
        if (t.length - 2 > maxCont) maxCont = t.length - 2;
      }
    }
    this.duplicateTokens = dups;
    this.tokTable = new TokenTable(tokens.map((t, id) => [t, id]));
    this.contTable = new TokenTable(cont);
    this.maxTokLen = maxTok;
    this.maxContLen = maxCont;
    const need = (tok: string, field: string): number => {
      const id = this.tokMap.get(tok);
      if (id === undefined) throw new Error(`${where}: ${field} '${tok}' is not in the vocabulary`);
      return id;
    };
    this.unkId = need(config.unkToken, 'unk token');
    this.clsId = need(config.clsToken, 'cls token');
    this.sepId = need(config.sepToken, 'sep token');
    this.padId = need(config.padToken, 'pad token');
    this.maskId = need(config.maskToken, 'mask token');
    this.lower = config.doLowerCase;
    this.strip = config.stripAccents === null ? config.doLowerCase : config.stripAccents;
    this.cjk = config.tokenizeChineseChars;
    this.fold = this.lower ? ASCII_LOWER : ASCII_SAME;
    this.wordStart = new Uint8Array(tokens.length);
    for (let id = 0; id < tokens.length; id++) this.wordStart[id] = tokens[id].startsWith('##') ? 0 : 1;
    const sp = [config.unkToken, config.clsToken, config.sepToken, config.padToken, config.maskToken];
    this.specialIds = new Set(sp.map((t) => this.tokMap.get(t)!));
    this.specials = [...new Set(sp)].sort((a, b) => b.length - a.length).map((t) => ({ text: t, id: this.tokMap.get(t)! }));
    // Special tokens are split out of raw text like HF's added tokens; we look for them where a
    // punctuation character starts them (all BERT-style tokens), not inside words.
    for (const t of this.specials) {
      const c0 = t.text.charCodeAt(0);
      if (c0 < 128 && ASCII_KIND[c0] === A_PUNCT) this.specialFirst[c0] = 1;
    }
    this.asciiIds = new Int32Array(128);
    for (let c = 0; c < 128; c++) this.asciiIds[c] = this.tokMap.get(String.fromCharCode(c)) ?? this.unkId;
  }

  // ---------------------------------------------------------------- loading / saving

  static fromVocab(tokens: string[], opts?: Partial<TokenizerConfig>): WordPieceTokenizer {
    return new WordPieceTokenizer(tokens, resolveConfig(opts, 'tokenizer options'), 'vocab');
  }

  static fromVocabFile(file: string, opts?: Partial<TokenizerConfig>): WordPieceTokenizer {
    const tokens = readVocabFile(file);
    return new WordPieceTokenizer(tokens, resolveConfig(opts, file), file);
  }

  static fromTokenizerJson(file: string): WordPieceTokenizer {
    const { tokens, config } = readTokenizerJson(file);
    return new WordPieceTokenizer(tokens, resolveConfig(config, file), file);
  }

  /** A directory as written by HF save_pretrained / our save(): tokenizer_config.json (optional) plus
   * vocab.txt or tokenizer.json. tokenizer_config.json settings win over tokenizer.json's normalizer, as in
   * BertTokenizerFast. */
  static fromDir(dir: string): WordPieceTokenizer {
    if (!fs.existsSync(dir)) throw new Error(`tokenizer directory ${dir} does not exist`);
    if (!fs.statSync(dir).isDirectory()) throw new Error(`${dir} is not a directory`);
    const cfgFile = path.join(dir, 'tokenizer_config.json');
    let cfg: Partial<TokenizerConfig> = {};
    if (fs.existsSync(cfgFile)) cfg = configFromHfJson(parseJsonFile(cfgFile), cfgFile);
    const vocabFile = path.join(dir, 'vocab.txt');
    const jsonFile = path.join(dir, 'tokenizer.json');
    if (fs.existsSync(jsonFile)) {
      const { tokens, config } = readTokenizerJson(jsonFile);
      return new WordPieceTokenizer(tokens, resolveConfig({ ...config, ...cfg }, jsonFile), jsonFile);
    }
    if (fs.existsSync(vocabFile)) {
      return new WordPieceTokenizer(readVocabFile(vocabFile), resolveConfig(cfg, fs.existsSync(cfgFile) ? cfgFile : vocabFile), vocabFile);
    }
    throw new Error(`${dir}: no tokenizer found (looked for ${vocabFile} and ${jsonFile})`);
  }

  save(dir: string): void {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'vocab.txt'), this.vocab.join('\n') + '\n');
    const c = this.config;
    const j = configToHfJson(c);
    if (c.maxInputCharsPerWord === 100) delete j.max_input_chars_per_word;
    fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(j, null, 2) + '\n');
    const sp = { unk_token: c.unkToken, sep_token: c.sepToken, pad_token: c.padToken, cls_token: c.clsToken, mask_token: c.maskToken };
    fs.writeFileSync(path.join(dir, 'special_tokens_map.json'), JSON.stringify(sp, null, 2) + '\n');
  }

  /** sha256 over the vocab and the settings that change ids; stable across runs and machines. */
  hash(): string {
    const h = crypto.createHash('sha256');
    const c = this.config;
    h.update(
      JSON.stringify({
        doLowerCase: c.doLowerCase,
        stripAccents: c.stripAccents,
        tokenizeChineseChars: c.tokenizeChineseChars,
        maxInputCharsPerWord: c.maxInputCharsPerWord,
        unkToken: c.unkToken,
        clsToken: c.clsToken,
        sepToken: c.sepToken,
        padToken: c.padToken,
        maskToken: c.maskToken,
      }),
    );
    h.update('\n');
    h.update(this.vocab.join('\n'));
    return h.digest('hex');
  }

  // ---------------------------------------------------------------- vocab queries

  tokenToId(tok: string): number | undefined {
    return this.tokMap.get(tok);
  }

  idToToken(id: number): string {
    const t = this.vocab[id];
    if (t === undefined) throw new RangeError(`token id ${id} out of range [0, ${this.vocabSize})`);
    return t;
  }

  isWordStart(id: number): boolean {
    return this.wordStart[id] === 1;
  }

  isSpecial(id: number): boolean {
    return this.specialIds.has(id);
  }

  decode(ids: ArrayLike<number>, opts?: { skipSpecial?: boolean }): string {
    const skip = opts?.skipSpecial ?? false;
    const parts: string[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (skip && this.specialIds.has(id)) continue;
      parts.push(this.idToToken(id));
    }
    return parts.join(' ').replace(/ ##/g, '');
  }

  // ---------------------------------------------------------------- encoding

  encode(text: string): Int32Array<ArrayBuffer> {
    this.run(text, false);
    const ids = this.outIds.slice(0, this.n);
    this.shrink();
    return ids;
  }

  encodeWithOffsets(text: string): { ids: Int32Array<ArrayBuffer>; offsets: Int32Array<ArrayBuffer>; wordIds: Int32Array<ArrayBuffer> } {
    this.run(text, true);
    const out = { ids: this.outIds.slice(0, this.n), offsets: this.outOff.slice(0, 2 * this.n), wordIds: this.outWid.slice(0, this.n) };
    this.shrink();
    return out;
  }

  /** Whether encodeBatch runs in the addon (native/wordpiece.cc) rather than in TypeScript. */
  get nativeBatch(): boolean {
    return this.native() !== null;
  }

  /**
   * Ids of many texts at once, back to back (the same ids as encode() on each). Runs in the addon on up to
   * `threads` threads when it is built (LINKBERT_NATIVE_TOKENIZER=0 turns that off), else in TypeScript.
   */
  encodeBatch(texts: string[], opts?: { threads?: number }): EncodedBatch {
    const threads = Math.max(1, Math.min(256, Math.floor(opts?.threads ?? 1)));
    const nat = this.native();
    if (!nat) {
      const parts = texts.map((s) => this.encode(s));
      return concatIds(parts);
    }
    return this.completeBatch(nat, texts, nat.addon.wordpieceEncodeBatch(nat.h, texts, threads), threads);
  }

  /** encodeBatch with the encoding off the JS thread (in the addon, on libuv's pool): JS goes on
   * meanwhile. One batch at a time per tokenizer. Without the addon, the TypeScript encodeBatch. */
  async encodeBatchAsync(texts: string[], opts?: { threads?: number }): Promise<EncodedBatch> {
    const threads = Math.max(1, Math.min(256, Math.floor(opts?.threads ?? 1)));
    const nat = this.native();
    if (!nat) return this.encodeBatch(texts, opts);
    return this.completeBatch(nat, texts, await nat.addon.wordpieceEncodeBatchAsync(nat.h, texts, threads), threads);
  }

  /** The batch result, after defining any code points the addon met for the first time and encoding
   * the texts that held them again. */
  private completeBatch(nat: { addon: NativeWordPiece; h: object }, texts: string[], r: NativeBatch, threads: number): EncodedBatch {
    if (r.missing.length === 0) return { ids: r.ids, start: lensToStarts(r.lens) };
    // code points the addon has not been told about: define them, encode those texts again
    this.defineNative(nat, r.missing);
    const again: number[] = [];
    for (let t = 0; t < texts.length; t++) if (r.lens[t] < 0) again.push(t);
    const r2 = this.encodeBatch(again.map((t) => texts[t]), { threads });
    const lens = r.lens;
    again.forEach((t, k) => (lens[t] = r2.start[k + 1] - r2.start[k]));
    const start = lensToStarts(lens);
    const ids = new Int32Array(start[texts.length]);
    let from = 0, k = 0;
    for (let t = 0; t < texts.length; t++) {
      const n = lens[t];
      if (k < again.length && again[k] === t) {
        ids.set(r2.ids.subarray(r2.start[k], r2.start[k + 1]), start[t]);
        k++;
      } else {
        ids.set(r.ids.subarray(from, from + n), start[t]);
        from += n;
      }
    }
    return { ids, start };
  }

  private native(): { addon: NativeWordPiece; h: object } | null {
    if (this.nativeHandle === null) return null;
    const addon = nativeWordPiece();
    if (!addon) {
      this.nativeHandle = null;
      return null;
    }
    if (this.nativeHandle !== undefined) return { addon, h: this.nativeHandle };
    const lengths = new Int32Array(this.vocab.length);
    for (let i = 0; i < lengths.length; i++) lengths[i] = this.vocab[i].length;
    this.nativeHandle = addon.wordpieceCreate(this.vocab.join(''), lengths, {
      lower: this.lower,
      unkId: this.unkId,
      maxChars: this.config.maxInputCharsPerWord,
      asciiKind: ASCII_KIND,
      specials: this.specials.map((s) => s.text),
      specialIds: this.specials.map((s) => s.id),
    });
    return { addon, h: this.nativeHandle };
  }

  /** Tells the addon what entry() says of each code point in `cps` (kind, normalized text, classes). */
  private defineNative(nat: { addon: NativeWordPiece; h: object }, cps: Int32Array): void {
    const kinds = new Uint8Array(cps.length);
    const normOff = new Int32Array(cps.length + 1);
    const units: number[] = [];
    const cls: number[] = [];
    cps.forEach((cp, k) => {
      const e = this.entry(cp, String.fromCodePoint(cp));
      kinds[k] = e.kind;
      for (let q = 0; q < e.norm.length; ) {
        const ncp = e.norm.codePointAt(q)!;
        const c = charClass(ncp);
        cls.push(e.kind !== K_MIXED ? 0 : c & C_SPACE ? 1 : c & C_PUNCT ? 2 : 0);
        units.push(e.norm.charCodeAt(q));
        if (ncp > 0xffff) {
          cls.push(3); // low surrogate: goes with the unit before
          units.push(e.norm.charCodeAt(q + 1));
        }
        q += ncp > 0xffff ? 2 : 1;
      }
      normOff[k + 1] = units.length;
    });
    nat.addon.wordpieceDefine(nat.h, cps, kinds, normOff, Uint16Array.from(units), Uint8Array.from(cls));
  }

  /** Don't keep a huge output buffer alive after one huge input. */
  private shrink(): void {
    if (this.outIds.length > 1 << 20) {
      this.outIds = new Int32Array(1024);
      this.outWid = new Int32Array(1024);
      this.outOff = new Int32Array(2048);
    }
  }

  /** Pre-split words (NER): each word is tokenized on its own (it may still split at punctuation);
   * wordIndex[i] is the index in `words` of the word piece i came from. Words that normalize to nothing
   * (e.g. only control characters) produce no pieces. */
  encodeWords(words: string[]): { ids: Int32Array<ArrayBuffer>; wordIndex: Int32Array<ArrayBuffer> } {
    this.n = 0;
    this.wantOffsets = false;
    try {
      for (let w = 0; w < words.length; w++) {
        this.fixedWord = w;
        this.scan(words[w]);
      }
    } finally {
      this.fixedWord = -1;
    }
    const out = { ids: this.outIds.slice(0, this.n), wordIndex: this.outWid.slice(0, this.n) };
    this.shrink();
    return out;
  }

  /** The basic tokenizer alone: the normalized words (clean, CJK split, lowercase/strip accents, split on
   * whitespace and punctuation) that WordPiece would see. Special tokens come out as themselves. */
  basicTokenize(text: string): string[] {
    const out: string[] = [];
    this.sink = out;
    try {
      this.run(text, false);
    } finally {
      this.sink = null;
    }
    return out;
  }

  /** Number of pieces `text` becomes (no special tokens), without copying ids out. */
  countTokens(text: string): number {
    this.run(text, false);
    return this.n;
  }

  private run(text: string, offsets: boolean): void {
    this.n = 0;
    this.wordIdx = 0;
    this.wantOffsets = offsets;
    this.scan(text);
  }

  private grow(): void {
    const cap = this.outIds.length * 2;
    const ids = new Int32Array(cap);
    ids.set(this.outIds);
    this.outIds = ids;
    const wid = new Int32Array(cap);
    wid.set(this.outWid);
    this.outWid = wid;
    const off = new Int32Array(2 * cap);
    off.set(this.outOff);
    this.outOff = off;
  }

  private emit(id: number, start: number, end: number, word: number): void {
    const k = this.n;
    if (k === this.outIds.length) this.grow();
    this.outIds[k] = id;
    this.outWid[k] = this.fixedWord >= 0 ? this.fixedWord : word;
    if (this.wantOffsets) {
      this.outOff[2 * k] = start;
      this.outOff[2 * k + 1] = end;
    }
    this.n = k + 1;
  }

  private scan(text: string): void {
    const n = text.length;
    let i = 0;
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c < 128) {
        const k = ASCII_KIND[c];
        if (k === A_WORD) {
          let j = i + 1;
          let d = 32;
          const fold = this.fold;
          let h = Math.imul(FNV_BASIS ^ fold[c], FNV_PRIME);
          while (j < n) {
            d = text.charCodeAt(j);
            if (d >= 128 || ASCII_KIND[d] !== A_WORD) break;
            h = Math.imul(h ^ fold[d], FNV_PRIME);
            j++;
          }
          // A pure-ASCII word ends at ASCII space/punct or the end; anything else (non-ASCII, control
          // chars that clean_text deletes inside the word) goes through the general path.
          if (j === n || (d < 128 && ASCII_KIND[d] !== A_DROP)) {
            this.asciiWord(text, i, j, h);
            i = j;
          } else {
            const r = this.fastWord(text, i);
            i = r >= 0 ? r : this.slowWord(text, i);
          }
        } else if (k === A_PUNCT) {
          if (this.specialFirst[c] === 1) {
            const sp = this.matchSpecial(text, i);
            if (sp >= 0) {
              const len = this.specials[sp].text.length;
              if (this.sink) this.sink.push(this.specials[sp].text);
              else this.emit(this.specials[sp].id, i, i + len, this.wordIdx++);
              i += len;
              continue;
            }
          }
          if (this.sink) this.sink.push(text[i]);
          else this.emit(this.asciiIds[c], i, i + 1, this.wordIdx++);
          i++;
        } else {
          i++; // space or a control char between words
        }
      } else {
        const r = this.fastWord(text, i);
        i = r >= 0 ? r : this.slowWord(text, i);
      }
    }
  }

  private matchSpecial(text: string, i: number): number {
    const sp = this.specials;
    for (let s = 0; s < sp.length; s++) if (text.startsWith(sp[s].text, i)) return s;
    return -1;
  }

  /** A word of ASCII word characters only: normalization is at most ASCII lowercasing. */
  private asciiWord(text: string, s: number, e: number, h: number): void {
    if (this.sink) {
      const key = text.slice(s, e);
      this.sink.push(this.lower ? key.toLowerCase() : key);
      return;
    }
    // keyed by the normalized word, so 'The' and 'the' share one entry
    const cache = this.cache;
    let idx = cache.findFolded(text, s, e, h, this.fold);
    if (idx < 0) {
      const raw = text.slice(s, e);
      const key = this.lower ? raw.toLowerCase() : raw;
      idx = cache.insert(key, h, this.wordPiece(key, e - s));
    }
    this.emitCached(cache, idx, s);
  }

  /** Emits a cached word whose normalized code units map 1:1 onto text[s, ...). */
  private emitCached(cache: WordCache, idx: number, s: number): void {
    const w = this.wordIdx++;
    const pool = cache.pool;
    let p = cache.off[idx];
    const stop = p + 2 * cache.cnt[idx];
    if (this.fixedWord < 0 && this.n + (stop - p) / 2 <= this.outIds.length) {
      // hot path: no buffer growth, no per-piece call
      const ids = this.outIds, wid = this.outWid;
      let k = this.n;
      if (this.wantOffsets) {
        const off = this.outOff;
        let prev = s;
        for (; p < stop; p += 2) {
          const end = s + pool[p + 1];
          ids[k] = pool[p];
          wid[k] = w;
          off[2 * k] = prev;
          off[2 * k + 1] = end;
          prev = end;
          k++;
        }
      } else {
        for (; p < stop; p += 2) {
          ids[k] = pool[p];
          wid[k++] = w;
        }
      }
      this.n = k;
      return;
    }
    let prev = 0;
    for (; p < stop; p += 2) {
      const end = pool[p + 1];
      this.emit(pool[p], s + prev, s + end, w);
      prev = end;
    }
  }

  /** Words of ASCII word characters and "simple" BMP characters (one code unit in, one word code unit
   * out, e.g. Cyrillic, accented Latin) are cached by their raw text like ASCII words. Returns where the
   * scan continues, or -1 when the general path must handle the word. */
  private fastWord(text: string, i: number): number {
    const n = text.length;
    const simple = this.simple;
    let h = FNV_BASIS;
    let j = i;
    let d = 0;
    let f = 0;
    while (j < n) {
      d = text.charCodeAt(j);
      if (d < 128) {
        if (ASCII_KIND[d] !== A_WORD) break;
      } else {
        f = simple[d];
        if (f === 0) f = this.classifySimple(d);
        if (f !== S_WORD) break;
      }
      h = Math.imul(h ^ d, FNV_PRIME);
      j++;
    }
    if (j === i) {
      if (f === S_SPACE) return i + 1;
      if (f === S_ALONE) {
        // non-ASCII punctuation or a CJK character: a word of its own
        this.sw = '';
        this.swPush(this.bmpEntries[d]!.norm, i, i + 1);
        this.swFlush();
        return i + 1;
      }
      return -1;
    }
    // the word must end here: at the end, ASCII space/punctuation, or a non-ASCII space/standalone char
    if (j < n && (d < 128 ? ASCII_KIND[d] === A_DROP : f !== S_SPACE && f !== S_ALONE)) return -1;
    if (this.sink) {
      this.sink.push(this.simpleNormalize(text, i, j));
      return j;
    }
    const cache = this.rawCache;
    let idx = cache.findText(text, i, j, h);
    if (idx < 0) {
      const norm = this.simpleNormalize(text, i, j);
      const nh = hashString(norm);
      // share pieces with the normalized spelling (e.g. 'България' -> 'българия')
      let ni = this.cache.findStr(norm, nh);
      if (ni < 0) ni = this.cache.insert(norm, nh, this.wordPiece(norm, j - i));
      const a = this.cache.off[ni], b = a + 2 * this.cache.cnt[ni];
      idx = cache.insert(text.slice(i, j), h, this.cache.pool.subarray(a, b));
    }
    this.emitCached(cache, idx, i);
    return j;
  }

  private simpleNormalize(text: string, i: number, j: number): string {
    let out = '';
    for (let k = i; k < j; k++) {
      const c = text.charCodeAt(k);
      out += String.fromCharCode(c < 128 ? (this.lower && c >= 65 && c <= 90 ? c + 32 : c) : this.simpleNorm[c]);
    }
    return out;
  }

  private classifySimple(c: number): number {
    let f = S_COMPLEX;
    if (c < 0xd800 || c > 0xdfff) {
      const e = this.entry(c, String.fromCharCode(c));
      if (e.kind === K_WORD && e.norm.length === 1) {
        f = S_WORD;
        this.simpleNorm[c] = e.norm.charCodeAt(0);
      } else if (e.kind === K_SPACE) f = S_SPACE;
      else if (e.kind === K_CJK && e.norm.length === 1) f = S_ALONE;
      else if (e.kind === K_MIXED && e.norm.length === 1 && charClass(e.norm.charCodeAt(0)) & C_PUNCT) f = S_ALONE;
    }
    this.simple[c] = f;
    return f;
  }

  private entry(cp: number, ch: string): CharEntry {
    let e = cp < 0x10000 ? this.bmpEntries[cp] : this.astralEntries.get(cp);
    if (e !== undefined) return e;
    const cls = charClass(cp);
    if (cls & C_DROP) e = { kind: K_DROP, norm: '' };
    else if (cls & C_SPACE) e = { kind: K_SPACE, norm: '' };
    else if (this.cjk && cls & C_CJK) e = { kind: K_CJK, norm: normalizeChar(ch, this.lower, this.strip) };
    else {
      const norm = normalizeChar(ch, this.lower, this.strip);
      let mixed = false;
      for (let q = 0; q < norm.length; ) {
        const ncp = norm.codePointAt(q)!;
        if (charClass(ncp) & (C_PUNCT | C_SPACE)) mixed = true;
        q += ncp > 0xffff ? 2 : 1;
      }
      e = { kind: mixed ? K_MIXED : K_WORD, norm };
    }
    if (cp < 0x10000) this.bmpEntries[cp] = e;
    else this.astralEntries.set(cp, e);
    return e;
  }

  /** General path: builds one normalized word starting at i (also emitting any punctuation/CJK words met
   * on the way) and returns where the main scan continues. */
  private swPush(s: string, from: number, to: number): void {
    const base = this.sw.length;
    if (base + s.length > this.nStart.length) {
      const cap = Math.max(2 * this.nStart.length, base + s.length);
      this.nStart = grow32(this.nStart, cap);
      this.nEnd = grow32(this.nEnd, cap);
    }
    for (let q = 0; q < s.length; q++) {
      this.nStart[base + q] = from;
      this.nEnd[base + q] = to;
    }
    this.sw += s;
  }

  private swFlush(): void {
    if (this.sw.length > 0) {
      const word = this.sw;
      this.sw = '';
      this.normWord(word);
    }
  }

  private slowWord(text: string, i: number): number {
    const n = text.length;
    this.sw = '';
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c < 128) {
        const k = ASCII_KIND[c];
        if (k === A_WORD) {
          this.swPush(this.lower && c >= 65 && c <= 90 ? String.fromCharCode(c + 32) : text[i], i, i + 1);
          i++;
          continue;
        }
        if (k === A_DROP) {
          i++;
          continue;
        }
        break; // ASCII space or punctuation: the main scan handles it
      }
      let cp = c, w = 1;
      if (c >= 0xd800 && c <= 0xdbff && i + 1 < n) {
        const d = text.charCodeAt(i + 1);
        if (d >= 0xdc00 && d <= 0xdfff) {
          cp = ((c - 0xd800) << 10) + (d - 0xdc00) + 0x10000;
          w = 2;
        }
      }
      const e = this.entry(cp, w === 1 ? text[i] : text.slice(i, i + 2));
      const kind = e.kind;
      if (kind === K_WORD) {
        if (e.norm.length > 0) this.swPush(e.norm, i, i + w);
      } else if (kind === K_DROP) {
        // deleted by clean_text; the word goes on
      } else if (kind === K_SPACE) {
        i += w;
        break;
      } else if (kind === K_CJK) {
        this.swFlush();
        if (e.norm.length > 0) {
          this.swPush(e.norm, i, i + w);
          this.swFlush();
        }
      } else {
        // normalization produced punctuation/space (e.g. NFD of '≠' is '=' + a dropped mark)
        const s = e.norm;
        for (let q = 0; q < s.length; ) {
          const ncp = s.codePointAt(q)!;
          const nw = ncp > 0xffff ? 2 : 1;
          const cls = charClass(ncp);
          if (cls & C_SPACE) this.swFlush();
          else if (cls & C_PUNCT) {
            this.swFlush();
            this.swPush(s.slice(q, q + nw), i, i + w);
            this.swFlush();
          } else this.swPush(s.slice(q, q + nw), i, i + w);
          q += nw;
        }
      }
      i += w;
    }
    this.swFlush();
    return i;
  }

  /** Emits the pieces of a normalized word built by slowWord (nStart/nEnd hold its origins). */
  private normWord(word: string): void {
    if (this.sink) {
      this.sink.push(word);
      return;
    }
    const h = hashString(word);
    let idx = this.cache.findStr(word, h);
    if (idx < 0) idx = this.cache.insert(word, h, this.wordPiece(word, codePointLength(word)));
    const w = this.wordIdx++;
    const pool = this.cache.pool;
    let prev = 0;
    for (let p = this.cache.off[idx], stop = p + 2 * this.cache.cnt[idx]; p < stop; p += 2) {
      const end = pool[p + 1];
      this.emit(pool[p], this.nStart[prev], this.nEnd[end - 1], w);
      prev = end;
    }
  }

  /** Greedy longest-match-first WordPiece over a normalized word: [id, end, id, end, ...] with piece ends
   * in UTF-16 units of `word`. A word longer than maxInputCharsPerWord code points, or with any
   * unmatched remainder, becomes one [UNK]. */
  private wordPiece(word: string, chars: number): Int32Array {
    const len = word.length;
    if (chars > this.config.maxInputCharsPerWord) return Int32Array.of(this.unkId, len);
    if (this.prefixHash.length <= len) this.prefixHash = new Int32Array(2 * len + 1);
    if (this.wpOut.length < 2 * len) this.wpOut = new Int32Array(4 * len);
    const out = this.wpOut;
    let no = 0;
    const ph = this.prefixHash;
    let start = 0;
    while (start < len) {
      const table = start === 0 ? this.tokTable : this.contTable;
      const maxEnd = Math.min(len, start + (start === 0 ? this.maxTokLen : this.maxContLen));
      // ph[k] = hash of word[start, k)
      let h = FNV_BASIS;
      for (let k = start; k < maxEnd; k++) {
        h = Math.imul(h ^ word.charCodeAt(k), FNV_PRIME);
        ph[k + 1] = h;
      }
      let end = maxEnd;
      let id = -1;
      while (end > start) {
        // never cut a surrogate pair
        const cu = word.charCodeAt(end - 1);
        if (end < len && cu >= 0xd800 && cu <= 0xdbff) {
          end--;
          continue;
        }
        id = table.find(word, start, end, ph[end]);
        if (id >= 0) break;
        end--;
      }
      if (id < 0) return Int32Array.of(this.unkId, len);
      out[no++] = id;
      out[no++] = end;
      start = end;
    }
    return out.subarray(0, no); // copied into the cache pool by the caller
  }
}

function lensToStarts(lens: Int32Array): Int32Array<ArrayBuffer> {
  const start = new Int32Array(lens.length + 1);
  for (let t = 0; t < lens.length; t++) start[t + 1] = start[t] + lens[t];
  return start;
}

/** Id arrays back to back, as an EncodedBatch. */
export function concatIds(parts: Int32Array[]): EncodedBatch {
  const start = new Int32Array(parts.length + 1);
  parts.forEach((p, t) => (start[t + 1] = start[t] + p.length));
  const ids = new Int32Array(start[parts.length]);
  parts.forEach((p, t) => ids.set(p, start[t]));
  return { ids, start };
}

function codePointLength(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n--;
        i++;
      }
    }
  }
  return n;
}

function parseJsonFile(file: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`cannot read ${file}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${file}: invalid JSON: ${(e as Error).message}`);
  }
}

/** vocab.txt: one token per line, id = line number (HF load_vocab); CRLF tolerated. */
export function readVocabFile(file: string): string[] {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT') throw new Error(`vocab file ${file} does not exist`);
    if (err.code === 'EISDIR') throw new Error(`vocab file ${file} is a directory (use fromDir)`);
    throw new Error(`cannot read vocab file ${file}: ${err.message}`);
  }
  if (buf.length === 0) throw new Error(`vocab file ${file} is empty`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(buf);
  } catch {
    // name the first bad line
    let line = 1, start = 0;
    for (let i = 0; i <= buf.length; i++) {
      if (i === buf.length || buf[i] === 0x0a) {
        try {
          new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(start, i));
        } catch {
          throw new Error(`${file}:${line}: token is not valid UTF-8`);
        }
        line++;
        start = i + 1;
      }
    }
    throw new Error(`${file}: not valid UTF-8`);
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  for (let i = 0; i < lines.length; i++) if (lines[i].endsWith('\r')) lines[i] = lines[i].slice(0, -1);
  return lines;
}

/** HF tokenizers JSON with a WordPiece model (and a BertNormalizer, or none). */
export function readTokenizerJson(file: string): { tokens: string[]; config: Partial<TokenizerConfig> } {
  const j = parseJsonFile(file) as Record<string, unknown>;
  if (typeof j !== 'object' || j === null) throw new Error(`${file}: expected a JSON object`);
  const model = j.model as Record<string, unknown> | undefined;
  if (!model || typeof model !== 'object') throw new Error(`${file}: missing field 'model'`);
  if (model.type !== undefined && model.type !== 'WordPiece')
    throw new Error(`${file}: field 'model.type' is ${JSON.stringify(model.type)}, only WordPiece is supported`);
  const vocab = model.vocab;
  if (!vocab || typeof vocab !== 'object' || Array.isArray(vocab)) throw new Error(`${file}: field 'model.vocab' must be an object token -> id`);
  const prefix = model.continuing_subword_prefix ?? '##';
  if (prefix !== '##') throw new Error(`${file}: field 'model.continuing_subword_prefix' is ${JSON.stringify(prefix)}, only '##' is supported`);
  const tokens: string[] = [];
  for (const [tok, id] of Object.entries(vocab as Record<string, unknown>)) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) throw new Error(`${file}: field 'model.vocab["${tok}"]' must be a non-negative integer id, got ${JSON.stringify(id)}`);
    if (tokens[id] !== undefined) throw new Error(`${file}: field 'model.vocab': id ${id} is used by both ${JSON.stringify(tokens[id])} and ${JSON.stringify(tok)}`);
    tokens[id] = tok;
  }
  // added tokens may extend the vocab (HF puts them at ids >= model vocab size)
  if (Array.isArray(j.added_tokens)) {
    j.added_tokens.forEach((a: unknown, k: number) => {
      const at = a as { id?: unknown; content?: unknown };
      if (typeof at?.id !== 'number' || typeof at.content !== 'string') throw new Error(`${file}: field 'added_tokens[${k}]' needs a numeric 'id' and a string 'content'`);
      if (tokens[at.id] === undefined) tokens[at.id] = at.content;
      else if (tokens[at.id] !== at.content) throw new Error(`${file}: field 'added_tokens[${k}]': id ${at.id} is ${JSON.stringify(tokens[at.id])} in model.vocab but ${JSON.stringify(at.content)} here`);
    });
  }
  for (let id = 0; id < tokens.length; id++) if (tokens[id] === undefined) throw new Error(`${file}: field 'model.vocab': no token has id ${id} (ids must be 0..${tokens.length - 1})`);
  const config: Partial<TokenizerConfig> = {};
  if (typeof model.unk_token === 'string') config.unkToken = model.unk_token;
  if (typeof model.max_input_chars_per_word === 'number') config.maxInputCharsPerWord = model.max_input_chars_per_word;
  const norm = j.normalizer as Record<string, unknown> | null | undefined;
  if (norm) {
    if (norm.type !== 'BertNormalizer') throw new Error(`${file}: field 'normalizer.type' is ${JSON.stringify(norm.type)}, only BertNormalizer is supported`);
    if (norm.clean_text === false) throw new Error(`${file}: field 'normalizer.clean_text' is false, which is not supported`);
    if (typeof norm.lowercase === 'boolean') config.doLowerCase = norm.lowercase;
    if (norm.strip_accents === null || typeof norm.strip_accents === 'boolean') config.stripAccents = norm.strip_accents as boolean | null;
    if (typeof norm.handle_chinese_chars === 'boolean') config.tokenizeChineseChars = norm.handle_chinese_chars;
  } else {
    throw new Error(`${file}: field 'normalizer' is missing; only BertNormalizer is supported`);
  }
  const pre = j.pre_tokenizer as Record<string, unknown> | null | undefined;
  if (pre && pre.type !== 'BertPreTokenizer') throw new Error(`${file}: field 'pre_tokenizer.type' is ${JSON.stringify(pre.type)}, only BertPreTokenizer is supported`);
  if (!pre) throw new Error(`${file}: field 'pre_tokenizer' is missing; only BertPreTokenizer is supported`);
  return { tokens, config };
}
