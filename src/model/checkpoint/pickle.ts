// A restricted pickle virtual machine: enough of protocols 0-5 for state dicts. It never imports or
// runs anything; every GLOBAL is resolved through the caller's allowlist (`findClass`) and anything
// else is refused with the class name and the byte offset of the opcode.

/** Python tuple (kept distinct from list so callers can tell them apart). */
export class PyTuple {
  constructor(readonly items: unknown[]) {}
}

/** A resolved GLOBAL: something REDUCE / NEWOBJ can call. */
export interface PyCallable {
  readonly pyName: string;
  call(args: unknown[], offset: number): unknown;
}

export function pyCallable(pyName: string, call: (args: unknown[], offset: number) => unknown): PyCallable {
  return { pyName, call };
}

function isCallable(v: unknown): v is PyCallable {
  return typeof v === 'object' && v !== null && typeof (v as PyCallable).call === 'function' && typeof (v as PyCallable).pyName === 'string';
}

/** Attributes set by BUILD on a dict (e.g. a state_dict's `_metadata`). */
export const pyAttributes = new WeakMap<object, Map<unknown, unknown>>();

export class PickleError extends Error {
  constructor(
    readonly source: string,
    readonly offset: number,
    detail: string,
  ) {
    super(`${source} at byte offset ${offset}: ${detail}`);
    this.name = 'PickleError';
  }
}

export interface UnpicklerOptions {
  /** Name used in errors, e.g. "model.bin: archive/data.pkl". */
  source: string;
  findClass(module: string, name: string, offset: number): PyCallable | undefined;
  persistentLoad?(pid: unknown, offset: number): unknown;
}

const MARK = Symbol('mark');

export function unpickle(data: Uint8Array, opts: UnpicklerOptions): unknown {
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const latin1 = new TextDecoder('latin1');
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  let stack: unknown[] = [];
  const metastack: unknown[][] = [];
  const memo = new Map<number, unknown>();
  let pos = 0;
  let op = 0; // offset of the current opcode, for errors

  const fail = (detail: string): never => {
    throw new PickleError(opts.source, op, detail);
  };
  const need = (n: number): void => {
    if (pos + n > data.length) fail(`truncated pickle: need ${n} more bytes at offset ${pos}, have ${data.length - pos}`);
  };
  const u8 = (): number => {
    need(1);
    return data[pos++];
  };
  const u16 = (): number => {
    need(2);
    const v = dv.getUint16(pos, true);
    pos += 2;
    return v;
  };
  const u32 = (): number => {
    need(4);
    const v = dv.getUint32(pos, true);
    pos += 4;
    return v;
  };
  const u64 = (): number => {
    need(8);
    const v = dv.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(`length ${v} is too large`);
    return Number(v);
  };
  const bytes = (n: number): Uint8Array => {
    need(n);
    const b = data.subarray(pos, pos + n);
    pos += n;
    return b;
  };
  const line = (): string => {
    const end = data.indexOf(0x0a, pos);
    if (end < 0) fail('truncated pickle: missing newline');
    const s = latin1.decode(data.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const str = (b: Uint8Array): string => {
    try {
      return utf8.decode(b);
    } catch {
      return fail('invalid UTF-8 in string');
    }
  };
  const pop = (): unknown => {
    if (stack.length === 0) fail('stack underflow');
    return stack.pop();
  };
  const top = (): unknown => {
    if (stack.length === 0) fail('stack underflow');
    return stack[stack.length - 1];
  };
  const popMark = (): unknown[] => {
    const items = stack;
    const prev = metastack.pop();
    if (prev === undefined) fail('MARK expected but not found');
    stack = prev!;
    return items;
  };
  const memoGet = (i: number): unknown => {
    if (!memo.has(i)) fail(`memo key ${i} was never stored`);
    return memo.get(i);
  };
  const global = (module: string, name: string): void => {
    const c = opts.findClass(module, name, op);
    if (!c) fail(`unsupported pickle global '${module}.${name}' (only tensor state dicts can be loaded)`);
    stack.push(c);
  };
  const call = (fn: unknown, args: unknown): unknown => {
    if (!isCallable(fn)) fail(`REDUCE/NEWOBJ target is not callable (${describe(fn)})`);
    if (!(args instanceof PyTuple)) fail(`REDUCE/NEWOBJ arguments are not a tuple (${describe(args)})`);
    return (fn as PyCallable).call((args as PyTuple).items, op);
  };
  const setItems = (d: unknown, items: unknown[]): void => {
    if (!(d instanceof Map)) fail(`SETITEM(S) on a non-dict (${describe(d)})`);
    if (items.length % 2) fail('SETITEMS with an odd number of items');
    for (let i = 0; i < items.length; i += 2) (d as Map<unknown, unknown>).set(items[i], items[i + 1]);
  };
  const appendItems = (l: unknown, items: unknown[]): void => {
    if (!Array.isArray(l)) fail(`APPEND(S) on a non-list (${describe(l)})`);
    (l as unknown[]).push(...items);
  };
  const longFromBytes = (b: Uint8Array): number | bigint => {
    if (b.length === 0) return 0;
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
    if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };
  const parseIntText = (s: string): number | bigint | boolean => {
    const t = s.replace(/L$/, '');
    if (t === '00') return false; // protocol 0 booleans
    if (t === '01') return true;
    if (!/^[-+]?\d+$/.test(t)) fail(`invalid integer literal ${JSON.stringify(s)}`);
    const b = BigInt(t);
    return b >= BigInt(Number.MIN_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b;
  };

  for (;;) {
    op = pos;
    const code = u8();
    switch (code) {
      case 0x80: // PROTO
        if (u8() > 5) fail('unsupported pickle protocol (> 5)');
        break;
      case 0x95: // FRAME: the frame length is only a buffering hint
        u64();
        break;
      case 0x2e: // STOP
        if (stack.length !== 1) fail(`STOP with ${stack.length} items on the stack`);
        return stack[0];
      case 0x28: // MARK
        metastack.push(stack);
        stack = [];
        break;
      case 0x30: // POP
        if (stack.length === 0 && metastack.length) popMark();
        else pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4a: // BININT
        need(4);
        stack.push(dv.getInt32(pos, true));
        pos += 4;
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x8a: // LONG1
        stack.push(longFromBytes(bytes(u8())));
        break;
      case 0x8b: // LONG4
        stack.push(longFromBytes(bytes(u32())));
        break;
      case 0x49: // INT (text)
        stack.push(parseIntText(line()));
        break;
      case 0x4c: // LONG (text)
        stack.push(parseIntText(line()));
        break;
      case 0x47: // BINFLOAT (big-endian double)
        need(8);
        stack.push(dv.getFloat64(pos, false));
        pos += 8;
        break;
      case 0x46: {
        // FLOAT (text)
        const v = Number(line());
        if (Number.isNaN(v)) fail('invalid float literal');
        stack.push(v);
        break;
      }
      case 0x58: // BINUNICODE
        stack.push(str(bytes(u32())));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(str(bytes(u8())));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(str(bytes(u64())));
        break;
      case 0x56: // UNICODE (raw-unicode-escape, text)
        stack.push(line().replace(/\\u([0-9a-fA-F]{4})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))));
        break;
      case 0x54: // BINSTRING (Python 2 str)
        stack.push(latin1.decode(bytes(u32())));
        break;
      case 0x55: // SHORT_BINSTRING
        stack.push(latin1.decode(bytes(u8())));
        break;
      case 0x42: // BINBYTES
        stack.push(bytes(u32()).slice());
        break;
      case 0x43: // SHORT_BINBYTES
        stack.push(bytes(u8()).slice());
        break;
      case 0x8e: // BINBYTES8
        stack.push(bytes(u64()).slice());
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push(new PyTuple([]));
        break;
      case 0x85: // TUPLE1
        stack.push(new PyTuple([pop()]));
        break;
      case 0x86: {
        // TUPLE2
        const b = pop();
        const a = pop();
        stack.push(new PyTuple([a, b]));
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = pop();
        const b = pop();
        const a = pop();
        stack.push(new PyTuple([a, b, c]));
        break;
      }
      case 0x74: // TUPLE
        {
          // evaluate popMark() before reading `stack`: it swaps the stack array
          const items = popMark();
          stack.push(new PyTuple(items));
        }
        break;
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x6c: // LIST
        {
          const items = popMark();
          stack.push(items);
        }
        break;
      case 0x61: {
        // APPEND
        const v = pop();
        appendItems(top(), [v]);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        appendItems(top(), items);
        break;
      }
      case 0x7d: // EMPTY_DICT
        stack.push(new Map());
        break;
      case 0x64: {
        // DICT
        const m = new Map();
        setItems(m, popMark());
        stack.push(m);
        break;
      }
      case 0x73: {
        // SETITEM
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case 0x8f: // EMPTY_SET
        stack.push(new Set());
        break;
      case 0x90: {
        // ADDITEMS
        const items = popMark();
        const s = top();
        if (!(s instanceof Set)) fail(`ADDITEMS on a non-set (${describe(s)})`);
        for (const it of items) (s as Set<unknown>).add(it);
        break;
      }
      case 0x91: // FROZENSET
        {
          const items = popMark();
          stack.push(new Set(items));
        }
        break;
      case 0x63: {
        // GLOBAL "module\nname\n"
        const module = line();
        const name = line();
        global(module, name);
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL needs two strings');
        global(module as string, name as string);
        break;
      }
      case 0x52: {
        // REDUCE
        const args = pop();
        const fn = pop();
        stack.push(call(fn, args));
        break;
      }
      case 0x81: {
        // NEWOBJ: cls.__new__(cls, *args); the allowlisted classes construct directly
        const args = pop();
        const cls = pop();
        stack.push(call(cls, args));
        break;
      }
      case 0x92: {
        // NEWOBJ_EX
        const kwargs = pop();
        const args = pop();
        const cls = pop();
        if (!(kwargs instanceof Map) || kwargs.size) fail('NEWOBJ_EX with keyword arguments is not supported');
        stack.push(call(cls, args));
        break;
      }
      case 0x62: {
        // BUILD
        const state = pop();
        const obj = top();
        if (state === null) break;
        if (obj instanceof Map && state instanceof Map) {
          pyAttributes.set(obj, state as Map<unknown, unknown>);
          break;
        }
        if (obj instanceof Map && state instanceof PyTuple && state.items.length === 2 && state.items[0] === null && state.items[1] instanceof Map) {
          pyAttributes.set(obj, state.items[1] as Map<unknown, unknown>); // (None, slotstate)
          break;
        }
        fail(`BUILD of ${describe(state)} on ${describe(obj)} is not supported`);
        break;
      }
      case 0x51: {
        // BINPERSID
        const pid = pop();
        if (!opts.persistentLoad) fail('persistent id found but no persistent_load is available');
        stack.push(opts.persistentLoad!(pid, op));
        break;
      }
      case 0x50: {
        // PERSID (text)
        const pid = line();
        if (!opts.persistentLoad) fail('persistent id found but no persistent_load is available');
        stack.push(opts.persistentLoad!(pid, op));
        break;
      }
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x70: // PUT (text)
        memo.set(Number(line()), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // BINGET
        stack.push(memoGet(u8()));
        break;
      case 0x6a: // LONG_BINGET
        stack.push(memoGet(u32()));
        break;
      case 0x67: // GET (text)
        stack.push(memoGet(Number(line())));
        break;
      default:
        fail(`unsupported pickle opcode 0x${code.toString(16).padStart(2, '0')}${code >= 0x20 && code < 0x7f ? ` ('${String.fromCharCode(code)}')` : ''}`);
    }
  }
}

export function describe(v: unknown): string {
  if (v === null) return 'None';
  if (v instanceof PyTuple) return `tuple(${v.items.length})`;
  if (v instanceof Map) return 'dict';
  if (Array.isArray(v)) return 'list';
  if (v instanceof Uint8Array) return 'bytes';
  if (isCallable(v)) return v.pyName;
  if (typeof v === 'object') return (v as object).constructor?.name ?? 'object';
  return typeof v;
}
