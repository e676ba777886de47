// wordpiece.cc: the BERT WordPiece tokenizer of src/data/tokenizer/wordpiece.ts, in C++, for batches of
// texts on several threads (`linkbert prepare` tokenises whole corpora through it).
//
// It gives the same ids as the TypeScript tokenizer by construction: the TypeScript side owns every
// Unicode decision. Per code point it hands over what its `entry()` computes (a kind and the normalized
// text, with each normalized code point's class); this file only scans, splits and runs WordPiece.
// Code points it has not been told about are reported back (`missing`), the texts that met them are
// marked, and the caller defines them (wordpieceDefine) and encodes those texts again. ASCII is given
// once, at creation. No Unicode tables live here, so the two tokenizers cannot drift apart.
//
// Entry points (validated; bad input throws TypeError/RangeError):
//   wordpieceCreate(tokens: string (all tokens back to back), lengths: Int32Array, cfg) -> handle
//   wordpieceDefine(handle, cps: Int32Array, kinds: Uint8Array, normOff: Int32Array, norm: Uint16Array,
//                   normCls: Uint8Array)
//   wordpieceEncodeBatch(handle, texts: string[], threads) -> { ids: Int32Array, lens: Int32Array,
//                   missing: Int32Array }   (lens[t] = -1: text t met a missing code point; no ids)
//   wordpieceEncodeBatchAsync(handle, texts, threads) -> Promise of the same, encoded on libuv's pool
//                   (one batch at a time per handle; wordpieceDefine is refused while it runs)
#include <napi.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "../kernels/cpu/threadpool.h"

namespace lb {
namespace {

constexpr uint32_t kFnvBasis = 2166136261u, kFnvPrime = 16777619u;

// per code point kinds: the K_* of wordpiece.ts, plus "not defined yet"
enum : uint8_t { K_DROP = 0, K_SPACE = 1, K_CJK = 2, K_WORD = 3, K_MIXED = 4, K_MISSING = 255 };
// ASCII kinds: the A_* of wordpiece.ts
enum : uint8_t { A_WORD = 0, A_SPACE = 1, A_PUNCT = 2, A_DROP = 3 };
// class of one normalized code unit of a K_MIXED entry
enum : uint8_t { N_WORD = 0, N_SPACE = 1, N_PUNCT = 2, N_LOW = 3 /* low surrogate: goes with the unit before */ };

// a == b over n code units; words are short, so a loop beats a memcmp call
inline bool same(const char16_t* a, const char16_t* b, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (a[i] != b[i]) return false;
  return true;
}

inline uint32_t fnv(const char16_t* s, size_t n) {
  uint32_t h = kFnvBasis;
  for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * kFnvPrime;
  return h;
}

// UTF-16 string -> int32 value, open addressing; keys live in one pool.
class StrTable {
 public:
  void reserve(size_t n, size_t chars) {
    size_t cap = 1024;
    while (cap < 2 * n) cap *= 2;
    rehash(cap);
    entries_.reserve(n);
    pool_.reserve(chars);
  }
  // value of s[0, n) with hash h, or -1
  int32_t find(const char16_t* s, uint32_t n, uint32_t h) const {
    for (uint32_t slot = h & mask_;; slot = (slot + 1) & mask_) {
      const int32_t v = slots_[slot];
      if (v == 0) return -1;
      const Entry& e = entries_[v - 1];
      if (e.hash == h && e.len == n && same(s, pool_.data() + e.off, n)) return e.value;
    }
  }
  // inserts, or overwrites the value of an existing key (later vocab ids win, as in HF load_vocab)
  void put(const char16_t* s, uint32_t n, uint32_t h, int32_t value) {
    for (uint32_t slot = h & mask_;; slot = (slot + 1) & mask_) {
      const int32_t v = slots_[slot];
      if (v == 0) break;
      Entry& e = entries_[v - 1];
      if (e.hash == h && e.len == n && same(s, pool_.data() + e.off, n)) {
        e.value = value;
        return;
      }
    }
    if (2 * (entries_.size() + 1) > slots_.size()) rehash(2 * slots_.size());  // load <= 1/2
    entries_.push_back({h, (uint32_t)pool_.size(), n, value});
    pool_.insert(pool_.end(), s, s + n);
    place((int32_t)entries_.size() - 1);
  }
  size_t size() const { return entries_.size(); }
  void clear() {
    entries_.clear();
    pool_.clear();
    std::fill(slots_.begin(), slots_.end(), 0);
  }

 private:
  struct Entry {
    uint32_t hash, off, len;
    int32_t value;
  };
  void rehash(size_t cap) {
    slots_.assign(cap, 0);
    mask_ = (uint32_t)cap - 1;
    for (size_t e = 0; e < entries_.size(); e++) place((int32_t)e);
  }
  void place(int32_t e) {
    uint32_t slot = entries_[e].hash & mask_;
    while (slots_[slot] != 0) slot = (slot + 1) & mask_;
    slots_[slot] = e + 1;
  }
  std::vector<int32_t> slots_ = std::vector<int32_t>(1024, 0);  // entry + 1, 0 = empty
  uint32_t mask_ = 1023;
  std::vector<Entry> entries_;
  std::vector<char16_t> pool_;
};

// Normalized word -> its pieces. One 32-byte slot per word holds the hash, short keys (up to 6 code
// units) and a one-piece word's id, so a hit on a common word touches one cache line.
class WordCache {
 public:
  struct Slot {
    uint32_t hash;
    uint16_t len;   // key length (code units)
    uint16_t n;     // pieces; 0 = empty slot (every word has at least one piece)
    int32_t id;     // the piece when n == 1
    uint32_t keyOff;  // len > 6: key at keys[keyOff, +len)
    uint32_t pOff;    // n > 1: pieces at pieces[pOff, +n)
    char16_t key[6];  // len <= 6: the key
  };
  static_assert(sizeof(Slot) == 32, "one slot, half a cache line");

  WordCache() { clear(); }

  const Slot* find(const char16_t* w, uint32_t len, uint32_t h) const {
    for (uint32_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.n == 0) return nullptr;
      if (s.hash == h && s.len == len && same(w, len <= 6 ? s.key : keys_.data() + s.keyOff, len)) return &s;
    }
  }
  const Slot* insert(const char16_t* w, uint32_t len, uint32_t h, const std::vector<int32_t>& ids) {
    // starts over when full, so memory stays bounded and every offset fits 32 bits
    if (count_ >= kMaxWords || keys_.size() + len > kMaxUnits || pieces_.size() + ids.size() > kMaxUnits) clear();
    if (2 * (count_ + 1) > slots_.size()) grow();
    Slot s{};
    s.hash = h;
    s.len = (uint16_t)len;
    s.n = (uint16_t)ids.size();
    s.id = ids[0];
    if (len <= 6)
      std::copy(w, w + len, s.key);
    else {
      s.keyOff = (uint32_t)keys_.size();
      keys_.insert(keys_.end(), w, w + len);
    }
    if (ids.size() > 1) {
      s.pOff = (uint32_t)pieces_.size();
      pieces_.insert(pieces_.end(), ids.begin(), ids.end());
    }
    count_++;
    return place(s);
  }
  void emit(const Slot* s, std::vector<int32_t>& out) const {
    if (s->n == 1)
      out.push_back(s->id);
    else
      out.insert(out.end(), pieces_.begin() + s->pOff, pieces_.begin() + s->pOff + s->n);
  }
  // words of more than 65535 code units or pieces are not cached (wordpiece() caps pieces anyway)
  static bool cacheable(uint32_t len, size_t pieces) { return len <= 0xffff && pieces <= 0xffff; }

 private:
  static constexpr size_t kMaxWords = 1 << 18;  // then the cache starts over (as wordpiece.ts does)
  static constexpr size_t kMaxUnits = 1 << 26;  // key code units / piece ids held, at most
  const Slot* place(const Slot& s) {
    uint32_t i = s.hash & mask_;
    while (slots_[i].n != 0) i = (i + 1) & mask_;
    slots_[i] = s;
    return &slots_[i];
  }
  void grow() {
    std::vector<Slot> old;
    old.swap(slots_);
    slots_.assign(old.empty() ? 4096 : 2 * old.size(), Slot{});
    mask_ = (uint32_t)slots_.size() - 1;
    for (const Slot& s : old)
      if (s.n != 0) place(s);
  }
  void clear() {
    slots_.assign(4096, Slot{});
    mask_ = 4095;
    keys_.clear();
    pieces_.clear();
    count_ = 0;
  }
  std::vector<Slot> slots_;
  uint32_t mask_ = 0;
  size_t count_ = 0;
  std::vector<char16_t> keys_;
  std::vector<int32_t> pieces_;
};

struct CharEntry {
  uint8_t kind = K_MISSING;
  uint32_t off = 0;  // normalized text: norm_[off, off + len), classes normCls_[off, off + len)
  uint32_t len = 0;
};

// One thread's scratch: the word -> pieces cache and the current word. Aligned so that two threads'
// scratch (whose vector ends move on every token) never share a cache line.
struct alignas(128) Worker {
  WordCache cache;              // normalized word -> pieces
  std::vector<char16_t> word;   // the word being built
  uint32_t hash = kFnvBasis;    // FNV-1a of word
  std::vector<uint32_t> prefix;  // WordPiece: hash of word[start, k)
  std::vector<int32_t> wp;       // WordPiece output
  std::vector<int32_t> ids;      // this thread's output
  std::vector<int32_t> missing;  // code points met but not defined
  bool failed = false;           // the current text met a missing code point
};

class WordPiece {
 public:
  StrTable tok, cont;  // whole tokens; '##x' continuation tokens stored as 'x'
  uint32_t maxTok = 0, maxCont = 0;  // longest key of each, in UTF-16 units
  int32_t unk = 0;
  int32_t maxChars = 100;  // longer words (code points) become [UNK]
  bool lower = false;
  uint8_t asciiKind[128] = {};
  char16_t fold[128] = {};  // ASCII case folding of word characters (identity when cased)
  int32_t asciiIds[128] = {};
  uint8_t specialFirst[128] = {};
  std::vector<std::u16string> specials;  // matched in raw text, longest first
  std::vector<int32_t> specialIds;
  std::vector<CharEntry> bmp = std::vector<CharEntry>(0x10000);
  std::unordered_map<uint32_t, CharEntry> astral;
  std::vector<char16_t> norm;
  std::vector<uint8_t> normCls;
  std::vector<Worker> workers;
  std::vector<char16_t> textPool;  // the batch's texts (BatchJob), kept for the next batch
  bool busy = false;  // a batch is being encoded (an async one may still run): no second batch, no define

  const CharEntry& entry(uint32_t cp) const {
    static const CharEntry missing;
    if (cp < 0x10000) return bmp[cp];
    auto it = astral.find(cp);
    return it == astral.end() ? missing : it->second;
  }

  // Greedy longest-match-first WordPiece of the normalized word w[0, n) into out (HF's WordPiece).
  void wordPiece(Worker& W, const char16_t* w, uint32_t n, std::vector<int32_t>& out) const {
    out.clear();
    uint32_t cps = n;
    for (uint32_t i = 0; i + 1 < n; i++)
      if (w[i] >= 0xd800 && w[i] <= 0xdbff && w[i + 1] >= 0xdc00 && w[i + 1] <= 0xdfff) {
        cps--;
        i++;
      }
    if ((int64_t)cps > maxChars) {
      out.push_back(unk);
      return;
    }
    if (W.prefix.size() < n + 1) W.prefix.resize(2 * n + 1);
    uint32_t* ph = W.prefix.data();
    uint32_t start = 0;
    while (start < n) {
      const StrTable& table = start == 0 ? tok : cont;
      const uint32_t maxEnd = std::min(n, start + (start == 0 ? maxTok : maxCont));
      uint32_t h = kFnvBasis;
      for (uint32_t k = start; k < maxEnd; k++) {
        h = (h ^ w[k]) * kFnvPrime;
        ph[k + 1] = h;
      }
      uint32_t end = maxEnd;
      int32_t id = -1;
      while (end > start) {
        const char16_t cu = w[end - 1];
        if (end < n && cu >= 0xd800 && cu <= 0xdbff) {  // never cut a surrogate pair
          end--;
          continue;
        }
        id = table.find(w + start, end - start, ph[end]);
        if (id >= 0) break;
        end--;
      }
      if (id < 0) {
        out.clear();
        out.push_back(unk);
        return;
      }
      out.push_back(id);
      start = end;
    }
  }

  // Emits the pieces of the word being built (if any) and starts a new one.
  void flush(Worker& W) const {
    const uint32_t n = (uint32_t)W.word.size();
    if (n == 0) return;
    const char16_t* w = W.word.data();
    const uint32_t h = W.hash;
    const WordCache::Slot* hit = W.cache.find(w, n, h);
    if (hit == nullptr) {
      wordPiece(W, w, n, W.wp);
      if (!WordCache::cacheable(n, W.wp.size())) {
        W.ids.insert(W.ids.end(), W.wp.begin(), W.wp.end());
        W.word.clear();
        W.hash = kFnvBasis;
        return;
      }
      hit = W.cache.insert(w, n, h, W.wp);
    }
    W.cache.emit(hit, W.ids);
    W.word.clear();
    W.hash = kFnvBasis;
  }

  // appends normalized code units to the word being built (and to its running hash)
  static void append(Worker& W, const char16_t* s, uint32_t n) {
    uint32_t h = W.hash;
    for (uint32_t q = 0; q < n; q++) h = (h ^ s[q]) * kFnvPrime;
    W.hash = h;
    W.word.insert(W.word.end(), s, s + n);
  }

  void pushAlone(Worker& W, const char16_t* s, uint32_t n) const {
    flush(W);
    append(W, s, n);
    flush(W);
  }

  // The scan of wordpiece.ts (its general path; the fast paths there give the same words).
  void encode(Worker& W, const char16_t* s, size_t n) const {
    W.word.clear();
    W.hash = kFnvBasis;
    size_t i = 0;
    while (i < n) {
      const char16_t c = s[i];
      if (c < 128) {
        const uint8_t k = asciiKind[c];
        if (k == A_WORD) {  // a run of ASCII word characters, folded and hashed in one pass
          size_t j = i + 1;
          while (j < n && s[j] < 128 && asciiKind[s[j]] == A_WORD) j++;
          const size_t at = W.word.size();
          W.word.resize(at + (j - i));
          char16_t* dst = W.word.data() + at;
          uint32_t h = W.hash;
          for (size_t q = i; q < j; q++) {
            const char16_t f = fold[s[q]];
            *dst++ = f;
            h = (h ^ f) * kFnvPrime;
          }
          W.hash = h;
          i = j;
          continue;
        }
        if (k == A_DROP) {  // deleted by clean_text; the word goes on
          i++;
          continue;
        }
        flush(W);
        if (k == A_PUNCT) {
          if (specialFirst[c]) {
            size_t sp = 0;
            for (; sp < specials.size(); sp++) {
              const std::u16string& t = specials[sp];
              if (t.size() <= n - i && std::equal(t.begin(), t.end(), s + i)) break;
            }
            if (sp < specials.size()) {
              W.ids.push_back(specialIds[sp]);
              i += specials[sp].size();
              continue;
            }
          }
          W.ids.push_back(asciiIds[c]);
        }
        i++;
        continue;
      }
      uint32_t cp = c;
      size_t w = 1;
      if (c >= 0xd800 && c <= 0xdbff && i + 1 < n && s[i + 1] >= 0xdc00 && s[i + 1] <= 0xdfff) {
        cp = ((uint32_t)(c - 0xd800) << 10) + (s[i + 1] - 0xdc00) + 0x10000;
        w = 2;
      }
      const CharEntry& e = entry(cp);
      const char16_t* nt = norm.data() + e.off;
      switch (e.kind) {
        case K_WORD:
          append(W, nt, e.len);
          break;
        case K_DROP:
          break;
        case K_SPACE:
          flush(W);
          break;
        case K_CJK:
          flush(W);
          if (e.len) pushAlone(W, nt, e.len);
          break;
        case K_MIXED: {  // normalization produced punctuation or space (e.g. NFD of '≠' is '=' + a mark)
          const uint8_t* cls = normCls.data() + e.off;
          for (uint32_t q = 0; q < e.len;) {
            uint32_t nw = q + 1 < e.len && cls[q + 1] == N_LOW ? 2 : 1;
            if (cls[q] == N_SPACE)
              flush(W);
            else if (cls[q] == N_PUNCT)
              pushAlone(W, nt + q, nw);
            else
              append(W, nt + q, nw);
            q += nw;
          }
          break;
        }
        default:  // not defined yet: the caller defines it and encodes this text again
          W.missing.push_back((int32_t)cp);
          W.failed = true;
          break;
      }
      i += w;
    }
    flush(W);
  }
};

constexpr uint32_t kTag = 0x57504331;  // 'WPC1': the handle is ours
struct Handle {
  uint32_t tag = kTag;
  WordPiece wp;
};

WordPiece& handle_arg(const Napi::CallbackInfo& info, const char* fn) {
  if (info.Length() < 1 || !info[0].IsExternal()) throw Napi::TypeError::New(info.Env(), std::string(fn) + ": argument 0 must be a wordpiece handle");
  Handle* h = info[0].As<Napi::External<Handle>>().Data();
  if (h == nullptr || h->tag != kTag) throw Napi::TypeError::New(info.Env(), std::string(fn) + ": argument 0 is not a wordpiece handle");
  return h->wp;
}

std::u16string u16(const Napi::Value& v) { return v.As<Napi::String>().Utf16Value(); }

template <typename T>
T typed_arg(const Napi::CallbackInfo& info, size_t i, napi_typedarray_type type, const char* fn, const char* name, const char* tname) {
  if (info.Length() <= i || !info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != type)
    throw Napi::TypeError::New(info.Env(), std::string(fn) + ": " + name + " must be a " + tname);
  return info[i].As<T>();
}

int32_t int_field(Napi::Env env, Napi::Object o, const char* key, double lo, double hi) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) throw Napi::TypeError::New(env, std::string("wordpieceCreate: cfg.") + key + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= lo && d <= hi) || std::floor(d) != d)
    throw Napi::RangeError::New(env, std::string("wordpieceCreate: cfg.") + key + " must be an integer in [" + std::to_string((int64_t)lo) + ", " + std::to_string((int64_t)hi) + "]");
  return (int32_t)d;
}

}  // namespace

// wordpieceCreate(tokens: string, lengths: Int32Array, cfg: { lower: boolean, unkId, maxChars, asciiKind: Uint8Array(128),
//                 specials: string[] (longest first), specialIds: number[] })
Napi::Value WordpieceCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* fn = "wordpieceCreate";
  if (info.Length() < 3 || !info[0].IsString() || !info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array || !info[2].IsObject())
    throw Napi::TypeError::New(env, "wordpieceCreate(tokens: string (the vocab, concatenated), lengths: Int32Array, cfg: object)");
  // the vocab as one string and each token's length: one copy out of V8 instead of one per token
  const std::u16string all = u16(info[0]);
  Napi::Int32Array lengths = info[1].As<Napi::Int32Array>();
  Napi::Object cfg = info[2].As<Napi::Object>();
  const size_t nv = lengths.ElementLength();
  if (nv == 0 || nv > (1u << 30)) throw Napi::RangeError::New(env, "wordpieceCreate: vocab must hold 1 to 2^30 tokens");
  auto* h = new Handle();
  Napi::External<Handle> ext = Napi::External<Handle>::New(env, h, [](Napi::Env, Handle* p) { delete p; });
  WordPiece& wp = h->wp;
  size_t nCont = 0, contChars = 0;  // '##x' tokens: sizes for the continuation table
  {
    size_t p = 0;
    for (size_t id = 0; id < nv; id++) {
      const size_t n = lengths[id] >= 0 ? (size_t)lengths[id] : 0;
      if (n > 2 && p + n <= all.size() && all[p] == u'#' && all[p + 1] == u'#') {
        nCont++;
        contChars += n - 2;
      }
      p += n;
    }
  }
  wp.tok.reserve(nv, all.size());
  wp.cont.reserve(nCont, contChars);
  size_t at = 0;
  for (size_t id = 0; id < nv; id++) {
    if (lengths[id] < 0 || (size_t)lengths[id] > all.size() - at)
      throw Napi::RangeError::New(env, std::string(fn) + ": lengths[" + std::to_string(id) + "] runs past the end of the tokens");
    const char16_t* t = all.data() + at;
    const uint32_t n = (uint32_t)lengths[id];
    at += n;
    wp.tok.put(t, n, fnv(t, n), (int32_t)id);
    wp.maxTok = std::max(wp.maxTok, n);
    if (n > 2 && t[0] == u'#' && t[1] == u'#') {
      wp.cont.put(t + 2, n - 2, fnv(t + 2, n - 2), (int32_t)id);
      wp.maxCont = std::max(wp.maxCont, n - 2);
    }
  }
  if (at != all.size()) throw Napi::RangeError::New(env, std::string(fn) + ": the lengths add up to " + std::to_string(at) + ", the tokens hold " + std::to_string(all.size()));
  Napi::Value lower = cfg.Get("lower");
  if (!lower.IsBoolean()) throw Napi::TypeError::New(env, "wordpieceCreate: cfg.lower must be a boolean");
  wp.lower = lower.As<Napi::Boolean>().Value();
  wp.unk = int_field(env, cfg, "unkId", 0, nv - 1);
  wp.maxChars = int_field(env, cfg, "maxChars", 0, 1 << 30);
  Napi::Value ak = cfg.Get("asciiKind");
  if (!ak.IsTypedArray() || ak.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array || ak.As<Napi::Uint8Array>().ElementLength() != 128)
    throw Napi::TypeError::New(env, "wordpieceCreate: cfg.asciiKind must be a Uint8Array of 128");
  Napi::Uint8Array akArr = ak.As<Napi::Uint8Array>();
  for (int c = 0; c < 128; c++) {
    if (akArr[c] > A_DROP) throw Napi::RangeError::New(env, "wordpieceCreate: cfg.asciiKind[" + std::to_string(c) + "] must be 0..3");
    wp.asciiKind[c] = akArr[c];
    wp.fold[c] = (char16_t)(wp.lower && c >= 'A' && c <= 'Z' ? c + 32 : c);
    const char16_t ch = (char16_t)c;
    const int32_t id = wp.tok.find(&ch, 1, fnv(&ch, 1));
    wp.asciiIds[c] = id >= 0 ? id : wp.unk;
  }
  Napi::Value sp = cfg.Get("specials"), spIds = cfg.Get("specialIds");
  if (!sp.IsArray() || !spIds.IsArray() || sp.As<Napi::Array>().Length() != spIds.As<Napi::Array>().Length())
    throw Napi::TypeError::New(env, "wordpieceCreate: cfg.specials and cfg.specialIds must be arrays of the same length");
  for (uint32_t k = 0; k < sp.As<Napi::Array>().Length(); k++) {
    Napi::Value t = sp.As<Napi::Array>().Get(k), id = spIds.As<Napi::Array>().Get(k);
    if (!t.IsString() || !id.IsNumber()) throw Napi::TypeError::New(env, "wordpieceCreate: cfg.specials[" + std::to_string(k) + "] must be a string with a numeric id");
    const double d = id.As<Napi::Number>().DoubleValue();
    if (!(d >= 0 && d < nv) || std::floor(d) != d) throw Napi::RangeError::New(env, "wordpieceCreate: cfg.specialIds[" + std::to_string(k) + "] out of range");
    std::u16string s = u16(t);
    if (s.empty()) throw Napi::RangeError::New(env, "wordpieceCreate: cfg.specials[" + std::to_string(k) + "] is empty");
    if (s[0] < 128 && wp.asciiKind[s[0]] == A_PUNCT) wp.specialFirst[s[0]] = 1;
    wp.specials.push_back(std::move(s));
    wp.specialIds.push_back((int32_t)d);
  }
  return ext;
}

// wordpieceDefine(handle, cps: Int32Array, kinds: Uint8Array, normOff: Int32Array (n + 1),
//                 norm: Uint16Array, normCls: Uint8Array (same length as norm))
Napi::Value WordpieceDefine(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* fn = "wordpieceDefine";
  WordPiece& wp = handle_arg(info, fn);
  if (wp.busy) throw Napi::Error::New(env, "wordpieceDefine: this tokenizer is encoding a batch (await it first)");
  auto cps = typed_arg<Napi::Int32Array>(info, 1, napi_int32_array, fn, "cps", "Int32Array");
  auto kinds = typed_arg<Napi::Uint8Array>(info, 2, napi_uint8_array, fn, "kinds", "Uint8Array");
  auto off = typed_arg<Napi::Int32Array>(info, 3, napi_int32_array, fn, "normOff", "Int32Array");
  auto nrm = typed_arg<Napi::Uint16Array>(info, 4, napi_uint16_array, fn, "norm", "Uint16Array");
  auto cls = typed_arg<Napi::Uint8Array>(info, 5, napi_uint8_array, fn, "normCls", "Uint8Array");
  const size_t n = cps.ElementLength();
  if (kinds.ElementLength() != n || off.ElementLength() != n + 1 || cls.ElementLength() != nrm.ElementLength())
    throw Napi::RangeError::New(env, "wordpieceDefine: kinds must have one entry per code point, normOff one more, normCls one per norm unit");
  if (off[0] != 0 || (size_t)off[n] != nrm.ElementLength()) throw Napi::RangeError::New(env, "wordpieceDefine: normOff must run from 0 to norm.length");
  for (size_t k = 0; k < n; k++) {
    if (cps[k] < 128 || cps[k] > 0x10ffff) throw Napi::RangeError::New(env, "wordpieceDefine: cps[" + std::to_string(k) + "] must be a non-ASCII code point");
    if (kinds[k] > K_MIXED) throw Napi::RangeError::New(env, "wordpieceDefine: kinds[" + std::to_string(k) + "] must be 0..4");
    if (off[k + 1] < off[k]) throw Napi::RangeError::New(env, "wordpieceDefine: normOff must not decrease");
  }
  for (size_t q = 0; q < cls.ElementLength(); q++)
    if (cls[q] > N_LOW) throw Napi::RangeError::New(env, "wordpieceDefine: normCls[" + std::to_string(q) + "] must be 0..3");
  for (size_t k = 0; k < n; k++) {
    CharEntry e;
    e.kind = kinds[k];
    e.off = (uint32_t)wp.norm.size();
    e.len = (uint32_t)(off[k + 1] - off[k]);
    for (int32_t q = off[k]; q < off[k + 1]; q++) {
      wp.norm.push_back((char16_t)nrm[q]);
      wp.normCls.push_back(cls[q]);
    }
    const uint32_t cp = (uint32_t)cps[k];
    if (cp < 0x10000)
      wp.bmp[cp] = e;
    else
      wp.astral[cp] = e;
  }
  return env.Undefined();
}

namespace {

// One batch: the texts, copied out of V8 (the threads must not touch JS values), and what came out.
struct BatchJob {
  WordPiece* wp = nullptr;
  std::vector<char16_t>* pool = nullptr;  // the texts back to back (the tokenizer's buffer, reused)
  std::vector<size_t> off;                // text t is (*pool)[off[t], off[t + 1])
  size_t total = 0;  // UTF-16 units
  size_t threads = 1;
  size_t nth = 1;    // threads used
  std::vector<int32_t> lens;

  void parse(const Napi::CallbackInfo& info, const char* fn) {
    Napi::Env env = info.Env();
    wp = &handle_arg(info, fn);
    if (info.Length() < 3 || !info[1].IsArray() || !info[2].IsNumber())
      throw Napi::TypeError::New(env, std::string(fn) + "(handle, texts: string[], threads: number)");
    const double td = info[2].As<Napi::Number>().DoubleValue();
    if (!(td >= 1 && td <= 256) || std::floor(td) != td) throw Napi::RangeError::New(env, std::string(fn) + ": threads must be an integer in [1, 256]");
    threads = (size_t)td;
    Napi::Array arr = info[1].As<Napi::Array>();
    const uint32_t nt = arr.Length();
    if (wp->busy) throw Napi::Error::New(env, std::string(fn) + ": this tokenizer is already encoding a batch (await it first)");
    pool = &wp->textPool;
    pool->clear();
    off.assign(nt + 1, 0);
    for (uint32_t t = 0; t < nt; t++) {
      Napi::Value v = arr.Get(t);
      if (!v.IsString()) throw Napi::TypeError::New(env, std::string(fn) + ": texts[" + std::to_string(t) + "] is not a string");
      size_t len = 0;
      napi_status st = napi_get_value_string_utf16(env, v, nullptr, 0, &len);
      if (st != napi_ok) throw Napi::Error::New(env, std::string(fn) + ": cannot read texts[" + std::to_string(t) + "]");
      const size_t at = pool->size();
      pool->resize(at + len + 1);  // +1: napi writes a terminating NUL
      st = napi_get_value_string_utf16(env, v, pool->data() + at, len + 1, &len);
      if (st != napi_ok) throw Napi::Error::New(env, std::string(fn) + ": cannot read texts[" + std::to_string(t) + "]");
      pool->resize(at + len);
      off[t + 1] = pool->size();
    }
    total = pool->size();
    wp->busy = true;
  }

  // Encodes on up to `threads` threads (no JS).
  void run() {
    const uint32_t nt = (uint32_t)(off.size() - 1);
    // contiguous ranges of texts of about equal length, one per thread; small batches stay on one
    nth = std::max<size_t>(1, std::min<size_t>({threads, (size_t)nt, total / 16384 + 1}));
    if (wp->workers.size() < nth) wp->workers.resize(nth);
    std::vector<uint32_t> from(nth + 1, nt);
    from[0] = 0;
    size_t acc = 0, part = 1;
    for (uint32_t t = 0; t < nt && part < nth; t++) {
      acc += off[t + 1] - off[t];
      if (acc * nth >= part * total) from[part++] = t + 1;
    }
    lens.assign(nt, 0);
    auto work = [&](size_t w) {
      Worker& W = wp->workers[w];
      W.ids.clear();
      W.missing.clear();
      for (uint32_t t = from[w]; t < from[w + 1]; t++) {
        const size_t before = W.ids.size();
        W.failed = false;
        wp->encode(W, pool->data() + off[t], off[t + 1] - off[t]);
        if (W.failed) {
          W.ids.resize(before);
          lens[t] = -1;
        } else
          lens[t] = (int32_t)(W.ids.size() - before);
      }
    };
    // fixed parts (each with its own word cache), on the addon's thread pool; an exception (out of
    // memory) must not leave a pool thread: it is kept and rethrown here
    std::vector<std::string> errors(nth);
    parallel_for((int64_t)nth, 1, [&](int64_t b, int64_t e) {
      for (int64_t w = b; w < e; w++) {
        try {
          work((size_t)w);
        } catch (const std::bad_alloc&) {
          errors[w] = "out of memory";
        } catch (const std::exception& ex) {
          errors[w] = ex.what();
        }
      }
    });
    for (const std::string& e : errors)
      if (!e.empty()) throw std::runtime_error("wordpiece: " + e);
  }

  // { ids, lens, missing } (on the JS thread)
  Napi::Object result(Napi::Env env) {
    size_t nids = 0;
    std::vector<int32_t> missing;
    for (size_t w = 0; w < nth; w++) {
      nids += wp->workers[w].ids.size();
      missing.insert(missing.end(), wp->workers[w].missing.begin(), wp->workers[w].missing.end());
    }
    Napi::Int32Array ids = Napi::Int32Array::New(env, nids);
    size_t at = 0;
    for (size_t w = 0; w < nth; w++) {
      const Worker& W = wp->workers[w];
      std::copy(W.ids.begin(), W.ids.end(), ids.Data() + at);
      at += W.ids.size();
    }
    Napi::Int32Array lensOut = Napi::Int32Array::New(env, lens.size());
    std::copy(lens.begin(), lens.end(), lensOut.Data());
    std::sort(missing.begin(), missing.end());
    missing.erase(std::unique(missing.begin(), missing.end()), missing.end());
    Napi::Int32Array miss = Napi::Int32Array::New(env, missing.size());
    std::copy(missing.begin(), missing.end(), miss.Data());
    Napi::Object o = Napi::Object::New(env);
    o.Set("ids", ids);
    o.Set("lens", lensOut);
    o.Set("missing", miss);
    return o;
  }
};

// The async form: the encoding runs on libuv's thread pool while JS goes on (prepare reads and splits
// the next batch meanwhile).
class BatchWorker : public Napi::AsyncWorker {
 public:
  BatchWorker(Napi::Env env, BatchJob&& job, Napi::Value handle)
      : Napi::AsyncWorker(env), job_(std::move(job)), deferred_(Napi::Promise::Deferred::New(env)), handle_(Napi::Persistent(handle)) {}
  Napi::Promise promise() { return deferred_.Promise(); }
  void Execute() override {
    try {
      job_.run();
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }
  void OnOK() override {
    job_.wp->busy = false;
    deferred_.Resolve(job_.result(Env()));
  }
  void OnError(const Napi::Error& e) override {
    job_.wp->busy = false;
    deferred_.Reject(e.Value());
  }

 private:
  BatchJob job_;
  Napi::Promise::Deferred deferred_;
  Napi::Reference<Napi::Value> handle_;  // keeps the tokenizer alive while the job runs
};

}  // namespace

// wordpieceEncodeBatch(handle, texts: string[], threads: number) -> { ids, lens, missing }
Napi::Value WordpieceEncodeBatch(const Napi::CallbackInfo& info) {
  BatchJob job;
  job.parse(info, "wordpieceEncodeBatch");
  try {
    job.run();
  } catch (...) {
    job.wp->busy = false;
    throw;
  }
  job.wp->busy = false;
  return job.result(info.Env());
}

// wordpieceEncodeBatchAsync(handle, texts: string[], threads: number) -> Promise<{ ids, lens, missing }>
Napi::Value WordpieceEncodeBatchAsync(const Napi::CallbackInfo& info) {
  BatchJob job;
  job.parse(info, "wordpieceEncodeBatchAsync");
  auto* w = new BatchWorker(info.Env(), std::move(job), info[0]);
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

}  // namespace lb
