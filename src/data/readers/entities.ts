// HTML character references as they appear in wikitext (after XML unescaping). Covers numeric references and
// the named entities that actually occur in Wikipedia prose; unknown names are left as written.
const NAMED: Record<string, string> = {
  amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0', ensp: '\u2002', emsp: '\u2003', thinsp: '\u2009',
  zwj: '\u200d', zwnj: '\u200c', lrm: '\u200e', rlm: '\u200f', shy: '\u00ad', ndash: '\u2013', mdash: '\u2014',
  minus: '\u2212', hellip: '\u2026', lsquo: '\u2018', rsquo: '\u2019', sbquo: '\u201a', ldquo: '\u201c',
  rdquo: '\u201d', bdquo: '\u201e', laquo: '\u00ab', raquo: '\u00bb', lsaquo: '\u2039', rsaquo: '\u203a',
  bull: '\u2022', middot: '\u00b7', times: '\u00d7', divide: '\u00f7', plusmn: '\u00b1', deg: '\u00b0',
  prime: '\u2032', Prime: '\u2033', frac12: '\u00bd', frac14: '\u00bc', frac34: '\u00be', sup1: '\u00b9',
  sup2: '\u00b2', sup3: '\u00b3', micro: '\u00b5', para: '\u00b6', sect: '\u00a7', copy: '\u00a9', reg: '\u00ae',
  trade: '\u2122', euro: '\u20ac', pound: '\u00a3', yen: '\u00a5', cent: '\u00a2', dagger: '\u2020',
  Dagger: '\u2021', larr: '\u2190', rarr: '\u2192', uarr: '\u2191', darr: '\u2193', harr: '\u2194',
  rArr: '\u21d2', lArr: '\u21d0', hArr: '\u21d4', le: '\u2264', ge: '\u2265', ne: '\u2260', asymp: '\u2248',
  infin: '\u221e', sum: '\u2211', radic: '\u221a', alpha: '\u03b1', beta: '\u03b2', gamma: '\u03b3',
  delta: '\u03b4', epsilon: '\u03b5', lambda: '\u03bb', mu: '\u03bc', pi: '\u03c0', sigma: '\u03c3',
  omega: '\u03c9', Delta: '\u0394', Omega: '\u03a9', iexcl: '\u00a1', iquest: '\u00bf', ordm: '\u00ba',
  ordf: '\u00aa', acute: '\u00b4', uml: '\u00a8', cedil: '\u00b8', macr: '\u00af', not: '\u00ac', oline: '\u203e',
};

export function decodeEntities(s: string): string {
  if (s.indexOf('&') === -1) return s;
  return s.replace(/&(#[xX][0-9a-fA-F]{1,6}|#[0-9]{1,7}|[a-zA-Z][a-zA-Z0-9]{1,31});/g, (m, body: string) => {
    if (body[0] === '#') {
      const cp = body[1] === 'x' || body[1] === 'X' ? parseInt(body.slice(2), 16) : parseInt(body.slice(1), 10);
      if (cp > 0 && cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff)) return String.fromCodePoint(cp);
      return '\ufffd';
    }
    return NAMED[body] ?? m;
  });
}
