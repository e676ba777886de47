// Tokenizer configuration and its on-disk forms (HF tokenizer_config.json / tokenizer.json fields).
export interface TokenizerConfig {
  doLowerCase: boolean;
  /** null: follow doLowerCase (HF semantics). */
  stripAccents: boolean | null;
  tokenizeChineseChars: boolean;
  maxInputCharsPerWord: number;
  unkToken: string;
  clsToken: string;
  sepToken: string;
  padToken: string;
  maskToken: string;
}

export const DEFAULT_TOKENIZER_CONFIG: Readonly<TokenizerConfig> = Object.freeze({
  doLowerCase: true,
  stripAccents: null,
  tokenizeChineseChars: true,
  maxInputCharsPerWord: 100,
  unkToken: '[UNK]',
  clsToken: '[CLS]',
  sepToken: '[SEP]',
  padToken: '[PAD]',
  maskToken: '[MASK]',
});

export function resolveConfig(opts: Partial<TokenizerConfig> | undefined, where: string): TokenizerConfig {
  const c: TokenizerConfig = { ...DEFAULT_TOKENIZER_CONFIG };
  if (opts) {
    for (const [k, v] of Object.entries(opts)) {
      if (v === undefined) continue;
      if (!(k in c)) throw new Error(`${where}: unknown tokenizer option '${k}'`);
      (c as unknown as Record<string, unknown>)[k] = v;
    }
  }
  const bool = (k: keyof TokenizerConfig) => {
    if (typeof c[k] !== 'boolean') throw new Error(`${where}: '${k}' must be a boolean, got ${JSON.stringify(c[k])}`);
  };
  bool('doLowerCase');
  bool('tokenizeChineseChars');
  if (c.stripAccents !== null && typeof c.stripAccents !== 'boolean')
    throw new Error(`${where}: 'stripAccents' must be a boolean or null, got ${JSON.stringify(c.stripAccents)}`);
  if (!Number.isInteger(c.maxInputCharsPerWord) || c.maxInputCharsPerWord < 1)
    throw new Error(`${where}: 'maxInputCharsPerWord' must be a positive integer, got ${JSON.stringify(c.maxInputCharsPerWord)}`);
  for (const k of ['unkToken', 'clsToken', 'sepToken', 'padToken', 'maskToken'] as const) {
    if (typeof c[k] !== 'string' || c[k].length === 0) throw new Error(`${where}: '${k}' must be a non-empty string`);
  }
  return c;
}

/** HF stores special tokens either as a string or as a serialized AddedToken {content: ...}. */
function specialTokenField(v: unknown, file: string, key: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v;
  if (typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
  throw new Error(`${file}: field '${key}' must be a string or {"content": string}, got ${JSON.stringify(v)}`);
}

/** Reads the fields we use from a parsed tokenizer_config.json; absent fields are left out. */
export function configFromHfJson(j: unknown, file: string): Partial<TokenizerConfig> {
  if (typeof j !== 'object' || j === null || Array.isArray(j)) throw new Error(`${file}: expected a JSON object`);
  const o = j as Record<string, unknown>;
  const out: Partial<TokenizerConfig> = {};
  const b = (key: string): boolean | undefined => {
    const v = o[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'boolean') throw new Error(`${file}: field '${key}' must be a boolean, got ${JSON.stringify(v)}`);
    return v;
  };
  if (b('do_basic_tokenize') === false) throw new Error(`${file}: field 'do_basic_tokenize' is false, which is not supported (WordPiece without the BERT basic tokenizer)`);
  if (Array.isArray(o.never_split) && o.never_split.length > 0)
    throw new Error(`${file}: field 'never_split' is not supported (only the special tokens are kept whole)`);
  const lc = b('do_lower_case');
  if (lc !== undefined) out.doLowerCase = lc;
  if ('strip_accents' in o) {
    const v = o.strip_accents;
    if (v !== null && typeof v !== 'boolean') throw new Error(`${file}: field 'strip_accents' must be a boolean or null, got ${JSON.stringify(v)}`);
    out.stripAccents = v as boolean | null;
  }
  const cjk = b('tokenize_chinese_chars');
  if (cjk !== undefined) out.tokenizeChineseChars = cjk;
  if (o.max_input_chars_per_word !== undefined) {
    const v = o.max_input_chars_per_word;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1)
      throw new Error(`${file}: field 'max_input_chars_per_word' must be a positive integer, got ${JSON.stringify(v)}`);
    out.maxInputCharsPerWord = v;
  }
  const map: [string, keyof TokenizerConfig][] = [
    ['unk_token', 'unkToken'],
    ['cls_token', 'clsToken'],
    ['sep_token', 'sepToken'],
    ['pad_token', 'padToken'],
    ['mask_token', 'maskToken'],
  ];
  for (const [hf, ours] of map) {
    const v = specialTokenField(o[hf], file, hf);
    if (v !== undefined) (out as Record<string, unknown>)[ours] = v;
  }
  return out;
}

export function configToHfJson(c: TokenizerConfig): Record<string, unknown> {
  return {
    tokenizer_class: 'BertTokenizer',
    do_lower_case: c.doLowerCase,
    strip_accents: c.stripAccents,
    tokenize_chinese_chars: c.tokenizeChineseChars,
    max_input_chars_per_word: c.maxInputCharsPerWord,
    do_basic_tokenize: true,
    unk_token: c.unkToken,
    sep_token: c.sepToken,
    pad_token: c.padToken,
    cls_token: c.clsToken,
    mask_token: c.maskToken,
  };
}
