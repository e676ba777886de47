// Random text for tokenizer tests (not a test file: ava runs only *.test.js).

// Random strings over pools of the characters the rules care about.
export function fuzzStrings(n: number, seed: number): string[] {
  let s = seed >>> 0;
  const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const pools = [
    'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789',
    ' \t\n\r\u00a0\u2028\u3000\u200b\ufeff\u0000\u0001\u007f\u0085\ufffd',
    '!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~¡¿«»—–…·„“',
    'éèêëÉÀçñÑöÖüÜßøÅœŒıİǅﬁ\u0301\u0308\u0327',
    'абвгдежзийклмнопрстуфхцчшщъьюяАБВГДЕЁЖЗИЙ',
    '日本語中文字符漢字豈한국어テキストのと',
    'ΣσςΑΩωΔ≠≤½²™©',
  ];
  const astral = ['😀', '🥰', '👍🏽', '\u{20000}', '\u{1D400}', '\u{F0000}', '\ud800', '\udc00'];
  const words = ['[MASK]', '[CLS]', '[SEP]', '[UNK]', '[PAD]', 'the', 'The', 'THE', 'tion', 'holin', 'България'];
  const out: string[] = [];
  for (let k = 0; k < n; k++) {
    let str = '';
    const len = Math.floor(rnd() * 60);
    for (let i = 0; i < len; i++) {
      const r = rnd();
      if (r < 0.08) str += astral[Math.floor(rnd() * astral.length)];
      else if (r < 0.16) str += words[Math.floor(rnd() * words.length)];
      else if (r < 0.18) str += 'x'.repeat(95 + Math.floor(rnd() * 10));
      else {
        const p = pools[Math.floor(rnd() * pools.length)];
        str += p[Math.floor(rnd() * p.length)];
      }
    }
    out.push(str);
  }
  return out;
}

