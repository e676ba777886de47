// instances.cc: InstanceBuilder.make() + Masker.mask() + encodeRecord() of src/data/ in C++, for whole
// plan chunks on several threads (prepare's stage 3). Byte-identical to the TypeScript path by
// construction: the same PRNG streams (xoshiro128** seeded through murmur3 fmix32 / splitmix32, all in
// uint32 arithmetic and the same IEEE double operations), the same draws in the same order, and the same
// protobuf framing with a CRC-32C; test/instances-native.test.ts compares the two record for record.
// The TypeScript side keeps everything that carries state (plan(): labels and deficits) and hands over
// the derived tables (split members, link targets and their 1/in-degree cumulative weights).
//
//   instanceBuilderCreate(cfg) -> handle
//   instanceBuilderClose(handle)   (the token file; the handle is unusable after)
//   instanceBuilderBuild(handle, round, doc: Int32Array, seg: Int32Array, copy: Int32Array,
//                        label: Int8Array, threads) -> { records: Uint8Array, lens: Int32Array,
//                        ntok: Int32Array }
#include <fcntl.h>
#include <napi.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "../kernels/cpu/threadpool.h"

namespace lb {
namespace {

// ---- PRNG: src/data/masking.ts (mixSeed, Rng)

inline uint32_t fmix32(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

inline uint32_t rotl(uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }

struct Rng {
  uint32_t s0, s1, s2, s3;
  // Rng(parts[0], parts[1], ...): every part a non-negative integer < 2^53
  Rng(const uint64_t* parts, int n) {
    uint32_t h = 0x9e3779b9u;
    for (int i = 0; i < n; i++) {
      const uint32_t lo = (uint32_t)parts[i], hi = (uint32_t)(parts[i] >> 32);
      h = fmix32((h ^ fmix32(lo + 0x6a09e667u)) + 0x3c6ef372u);
      h = fmix32((h ^ fmix32(hi + 0xbb67ae85u)) + 0xa54ff53au);
    }
    uint32_t x = h;
    auto next = [&x]() {
      x += 0x9e3779b9u;
      uint32_t z = x;
      z = (z ^ (z >> 16)) * 0x21f0aaadu;
      z = (z ^ (z >> 15)) * 0x735a2d97u;
      return z ^ (z >> 15);
    };
    s0 = next();
    s1 = next();
    s2 = next();
    s3 = next();
    if ((s0 | s1 | s2 | s3) == 0) s0 = 1;
  }
  uint32_t nextU32() {
    const uint32_t result = rotl(s1 * 5, 7) * 9;
    const uint32_t t = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = rotl(s3, 11);
    return result;
  }
  // uniform in [0, 1) with 53 random bits
  double next() {
    const double hi = nextU32() >> 5;
    const double lo = nextU32() >> 6;
    return (hi * 67108864.0 + lo) / 9007199254740992.0;
  }
  // Math.floor((nextU32() * n) / 4294967296), in the same double arithmetic
  int64_t below(double n) { return (int64_t)std::floor(((double)nextU32() * n) / 4294967296.0); }
};

// ---- CRC-32C (Castagnoli), slicing-by-8 like src/data/crc32c.ts

struct Crc32cTables {
  uint32_t t[8][256];
  Crc32cTables() {
    for (uint32_t n = 0; n < 256; n++) {
      uint32_t c = n;
      for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
      t[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; n++) {
      uint32_t c = t[0][n];
      for (int k = 1; k < 8; k++) {
        c = t[0][c & 0xff] ^ (c >> 8);
        t[k][n] = c;
      }
    }
  }
};
const Crc32cTables kCrc;

uint32_t crc32c(const uint8_t* p, size_t n) {
  uint32_t c = ~0u;
  while (n >= 8) {
    uint32_t lo, hi;
    std::memcpy(&lo, p, 4);
    std::memcpy(&hi, p + 4, 4);
    lo ^= c;  // little-endian hosts (x86-64, aarch64)
    c = kCrc.t[7][lo & 0xff] ^ kCrc.t[6][(lo >> 8) & 0xff] ^ kCrc.t[5][(lo >> 16) & 0xff] ^ kCrc.t[4][lo >> 24] ^
        kCrc.t[3][hi & 0xff] ^ kCrc.t[2][(hi >> 8) & 0xff] ^ kCrc.t[1][(hi >> 16) & 0xff] ^ kCrc.t[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n--) c = kCrc.t[0][(c ^ *p++) & 0xff] ^ (c >> 8);
  return ~c;
}

// ---- protobuf pieces: src/data/shards/format.ts

inline size_t varint_size(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    n++;
  }
  return n;
}
inline uint8_t* put_varint(uint8_t* p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = (uint8_t)((v & 0x7f) | 0x80);
    v >>= 7;
  }
  *p++ = (uint8_t)v;
  return p;
}
inline uint8_t* put_packed(uint8_t* p, const int32_t* a, size_t n, int width) {
  for (size_t i = 0; i < n; i++) {
    const uint32_t v = (uint32_t)a[i];
    *p++ = (uint8_t)v;
    *p++ = (uint8_t)(v >> 8);
    if (width == 4) {
      *p++ = (uint8_t)(v >> 16);
      *p++ = (uint8_t)(v >> 24);
    }
  }
  return p;
}

constexpr int CONTIGUOUS = 0, RANDOM = 1, LINKED = 2;

// One thread's scratch.
struct Scratch {
  std::vector<int32_t> a, b;  // segment tokens (read from the file)
  std::vector<int32_t> ids, groupStart, groupLen, order, positions, replacements;
  std::vector<uint8_t> picked;
  std::vector<uint8_t> out;  // encoded records
  std::vector<int32_t> lens, ntok;
};

class Builder {
 public:
  uint64_t seed = 0;
  int32_t maxSeqLen = 0, clsId = 0, sepId = 0, width = 2;  // width: of the records' token arrays
  int64_t ndocs = 0;
  // tokens: in memory (tok16 / tok32, document d starts at tokOff[d]) or in the token file (fd)
  const uint16_t* tok16 = nullptr;
  const int32_t* tok32 = nullptr;
  int64_t ntokens = 0;
  int fd = -1;
  bool closed = false;
  int32_t fileWidth = 2;  // bytes per token in the file
  std::vector<int64_t> tokOff;
  std::vector<int32_t> bounds;  // document d's segment bounds: bounds[bOff[d] .. bOff[d + 1])
  std::vector<int64_t> bOff;
  std::vector<uint8_t> idBytes;  // document ids, UTF-8: idBytes[idOff[d] .. idOff[d + 1])
  std::vector<int64_t> idOff;
  std::vector<uint8_t> split;
  std::vector<int32_t> input;
  // random partners: the (input, split) group of each document and its position there; groups flattened
  std::vector<int32_t> groupOf, posInGroup, groups;
  std::vector<int64_t> gOff;
  std::vector<int32_t> splitDocs[2], posInSplit;
  // linked partners: targets[ltOff[d] .. ltOff[d + 1]) with cumulative weights cum[...]
  std::vector<int32_t> targets;
  std::vector<double> cum;
  std::vector<int64_t> ltOff;
  // static masking (absent: dynamic-mask shards)
  bool mask = false;
  int32_t vocabSize = 0, maskId = 0, maxPredictions = 0;
  double maskProb = 0;
  bool wholeWord = false;
  std::vector<uint8_t> never, wordStart;
  std::vector<int32_t> pool;
  std::vector<Scratch> scratch;  // one per part of a build call, reused

  ~Builder() {
    if (fd >= 0) close(fd);
  }

  int64_t nseg(int64_t d) const { return bOff[d + 1] - bOff[d] - 1; }

  void read_segment(int64_t d, int64_t seg, std::vector<int32_t>& dst) const {
    const int64_t from = tokOff[d] + bounds[bOff[d] + seg], to = tokOff[d] + bounds[bOff[d] + seg + 1];
    const size_t n = (size_t)(to - from);
    dst.resize(n);
    if (tok16) {
      for (size_t i = 0; i < n; i++) dst[i] = tok16[from + i];
    } else if (tok32) {
      std::memcpy(dst.data(), tok32 + from, n * 4);
    } else {
      const int width = fileWidth;
      std::vector<uint8_t> raw(n * width);
      size_t got = 0;
      while (got < raw.size()) {
        const ssize_t r = pread(fd, raw.data() + got, raw.size() - got, (off_t)(from * width + (int64_t)got));
        if (r <= 0) throw std::runtime_error("token store: read failed or truncated at token " + std::to_string(from));
        got += (size_t)r;
      }
      for (size_t i = 0; i < n; i++)
        dst[i] = width == 2 ? (int32_t)(raw[2 * i] | (raw[2 * i + 1] << 8))
                            : (int32_t)((uint32_t)raw[4 * i] | ((uint32_t)raw[4 * i + 1] << 8) | ((uint32_t)raw[4 * i + 2] << 16) | ((uint32_t)raw[4 * i + 3] << 24));
    }
  }

  // Masker.mask: fills S.positions / S.replacements
  void mask_ids(Scratch& S, Rng& rng) const {
    const int32_t* ids = S.ids.data();
    const size_t n = S.ids.size();
    if (S.groupStart.size() < n) {
      S.groupStart.resize(n);
      S.groupLen.resize(n);
      S.order.resize(n);
      S.picked.assign(n, 0);
    }
    size_t groups = 0, candidates = 0;
    bool prevCand = false;
    for (size_t t = 0; t < n; t++) {
      const int32_t id = ids[t];
      if (!(id >= 0 && id < vocabSize))
        throw std::range_error("token id " + std::to_string(id) + " at position " + std::to_string(t) + " is outside the vocabulary (" + std::to_string(vocabSize) + ")");
      if (never[id]) {
        prevCand = false;
        continue;
      }
      candidates++;
      if (wholeWord && prevCand && !wordStart[id])
        S.groupLen[groups - 1]++;
      else {
        S.groupStart[groups] = (int32_t)t;
        S.groupLen[groups] = 1;
        groups++;
      }
      prevCand = true;
    }
    S.positions.clear();
    S.replacements.clear();
    if (candidates == 0) return;
    // Math.min(maxPredictions, Math.max(1, Math.round(candidates * maskProb)))
    const double x = (double)candidates * maskProb, fl = std::floor(x);
    const double rounded = x - fl >= 0.5 ? fl + 1 : fl;  // Math.round: nearest, ties up
    const int64_t target = std::min<int64_t>(maxPredictions, std::max<int64_t>(1, (int64_t)rounded));
    for (size_t g = 0; g < groups; g++) S.order[g] = (int32_t)g;
    int64_t covered = 0;
    for (size_t k = 0; k < groups && covered < target; k++) {
      const size_t j = k + (size_t)rng.below((double)(groups - k));
      const int32_t g = S.order[j];
      S.order[j] = S.order[k];
      S.order[k] = g;
      const int32_t len = S.groupLen[g];
      if (covered + len > target) continue;
      for (int32_t q = 0; q < len; q++) S.picked[S.groupStart[g] + q] = 1;
      covered += len;
    }
    for (size_t t = 0; (int64_t)S.positions.size() < covered; t++)
      if (S.picked[t]) {
        S.picked[t] = 0;
        S.positions.push_back((int32_t)t);
      }
    for (int64_t k = 0; k < covered; k++) {
      const double r = rng.next();
      if (r < 0.8)
        S.replacements.push_back(maskId);
      else if (r < 0.9)
        S.replacements.push_back(ids[S.positions[k]]);
      else
        S.replacements.push_back(pool[(size_t)rng.below((double)pool.size())]);
    }
  }

  // make() + makeInstance() + encodeRecord() of one planned anchor, appended to S.out
  void build_one(Scratch& S, int64_t round, int32_t d, int32_t seg, int32_t copy, int32_t label) const {
    const uint64_t parts[5] = {seed, (uint64_t)d, (uint64_t)round, (uint64_t)seg + 1, (uint64_t)copy + 1};
    Rng rng(parts, 5);
    const int s = split[d];
    int32_t bd, bseg;
    if (label == CONTIGUOUS) {
      bd = d;
      bseg = seg + 1;
    } else if (label == RANDOM) {
      const int32_t g = groupOf[d];
      const int64_t glen = gOff[g + 1] - gOff[g];
      if (glen > 1) {
        const int64_t k = rng.below((double)(glen - 1));
        bd = groups[gOff[g] + (k >= posInGroup[d] ? k + 1 : k)];
      } else {
        const std::vector<int32_t>& all = splitDocs[s];
        const int64_t k = rng.below((double)(all.size() - 1));
        bd = all[k >= posInSplit[d] ? k + 1 : k];
      }
      bseg = (int32_t)rng.below((double)nseg(bd));
    } else {
      const int64_t t0 = ltOff[d], t1 = ltOff[d + 1];
      const double x = rng.next() * cum[t1 - 1];
      int64_t k = 0;
      while (k < t1 - t0 - 1 && cum[t0 + k] <= x) k++;
      bd = targets[t0 + k];
      bseg = (int32_t)rng.below((double)nseg(bd));
    }
    read_segment(d, seg, S.a);
    read_segment(bd, bseg, S.b);
    // truncatePair(lenA, lenB, maxSeqLen - 3, coin)
    int64_t sa = 0, ea = (int64_t)S.a.size(), sb = 0, eb = (int64_t)S.b.size();
    const int64_t maxTokens = maxSeqLen - 3;
    while (ea - sa + (eb - sb) > maxTokens) {
      if (ea - sa >= eb - sb) {
        if (rng.next() < 0.5)
          sa++;
        else
          ea--;
      } else if (rng.next() < 0.5)
        sb++;
      else
        eb--;
    }
    const int64_t lenA = ea - sa;
    S.ids.clear();
    S.ids.push_back(clsId);
    S.ids.insert(S.ids.end(), S.a.begin() + sa, S.a.begin() + ea);
    S.ids.push_back(sepId);
    S.ids.insert(S.ids.end(), S.b.begin() + sb, S.b.begin() + eb);
    S.ids.push_back(sepId);
    if (mask)
      mask_ids(S, rng);
    else {
      S.positions.clear();
      S.replacements.clear();
    }
    // the record (format.ts recordLayout / encodeRecordInto)
    const size_t idsLen = S.ids.size() * width, posLen = S.positions.size() * 2, mIdsLen = S.replacements.size() * width;
    const size_t docALen = (size_t)(idOff[d + 1] - idOff[d]), docBLen = (size_t)(idOff[bd + 1] - idOff[bd]);
    size_t n = 1 + varint_size(idsLen) + idsLen;
    n += 1 + varint_size(width);
    n += 1 + varint_size(lenA);
    if (posLen > 0) n += 1 + varint_size(posLen) + posLen + 1 + varint_size(mIdsLen) + mIdsLen;
    n += 1 + varint_size(label);
    n += 1 + varint_size(docALen) + docALen;
    n += 1 + varint_size(docBLen) + docBLen;
    n += 1 + varint_size(seg);
    n += 1 + varint_size(bseg);
    const size_t recLen = 5 + 1 + varint_size(n) + n;
    const size_t total = varint_size(recLen) + recLen;
    const size_t at = S.out.size();
    S.out.resize(at + total);
    uint8_t* p = S.out.data() + at;
    p = put_varint(p, recLen);
    *p++ = 0x0d;
    uint8_t* crcAt = p;
    p += 4;
    *p++ = 0x12;
    p = put_varint(p, n);
    uint8_t* start = p;
    *p++ = 0x0a;
    p = put_varint(p, idsLen);
    p = put_packed(p, S.ids.data(), S.ids.size(), width);
    *p++ = 0x10;
    p = put_varint(p, width);
    *p++ = 0x18;
    p = put_varint(p, lenA);
    if (posLen > 0) {
      *p++ = 0x22;
      p = put_varint(p, posLen);
      p = put_packed(p, S.positions.data(), S.positions.size(), 2);
      *p++ = 0x2a;
      p = put_varint(p, mIdsLen);
      p = put_packed(p, S.replacements.data(), S.replacements.size(), width);
    }
    *p++ = 0x30;
    p = put_varint(p, label);
    *p++ = 0x3a;
    p = put_varint(p, docALen);
    std::memcpy(p, idBytes.data() + idOff[d], docALen);
    p += docALen;
    *p++ = 0x42;
    p = put_varint(p, docBLen);
    std::memcpy(p, idBytes.data() + idOff[bd], docBLen);
    p += docBLen;
    *p++ = 0x48;
    p = put_varint(p, seg);
    *p++ = 0x50;
    p = put_varint(p, bseg);
    if ((size_t)(p - (S.out.data() + at)) != total) throw std::logic_error("instanceBuilderBuild: record size mismatch");
    const uint32_t crc = crc32c(start, (size_t)(p - start));
    crcAt[0] = (uint8_t)crc;
    crcAt[1] = (uint8_t)(crc >> 8);
    crcAt[2] = (uint8_t)(crc >> 16);
    crcAt[3] = (uint8_t)(crc >> 24);
    S.lens.push_back((int32_t)total);
    S.ntok.push_back((int32_t)S.ids.size());
  }
};

constexpr uint32_t kTag = 0x494e5331;  // 'INS1'
struct Handle {
  uint32_t tag = kTag;
  Builder b;
  Napi::Reference<Napi::Value> tokens;  // keeps the in-memory token array alive
};

// ---- argument parsing

[[noreturn]] void type_error(Napi::Env env, const std::string& msg) { throw Napi::TypeError::New(env, "instanceBuilderCreate: " + msg); }
[[noreturn]] void range_error(Napi::Env env, const std::string& msg) { throw Napi::RangeError::New(env, "instanceBuilderCreate: " + msg); }

double num_field(Napi::Env env, Napi::Object o, const char* key, double lo, double hi, bool integer = true) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) type_error(env, std::string("cfg.") + key + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= lo && d <= hi) || (integer && std::floor(d) != d)) range_error(env, std::string("cfg.") + key + " is out of range");
  return d;
}

template <typename T, typename Arr>
std::vector<T> typed_field(Napi::Env env, Napi::Object o, const char* key, napi_typedarray_type type, const char* tname) {
  Napi::Value v = o.Get(key);
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type) type_error(env, std::string("cfg.") + key + " must be a " + tname);
  Arr a = v.As<Arr>();
  return std::vector<T>(a.Data(), a.Data() + a.ElementLength());
}

// offsets (Float64Array) of n + 1 ascending integers from 0 to `end`
std::vector<int64_t> offsets_field(Napi::Env env, Napi::Object o, const char* key, size_t n, int64_t end) {
  std::vector<double> v = typed_field<double, Napi::Float64Array>(env, o, key, napi_float64_array, "Float64Array");
  if (v.size() != n + 1) range_error(env, std::string("cfg.") + key + " must have " + std::to_string(n + 1) + " entries");
  std::vector<int64_t> out(n + 1);
  for (size_t i = 0; i <= n; i++) {
    if (!(v[i] >= 0 && v[i] <= 9007199254740991.0) || std::floor(v[i]) != v[i] || (i > 0 && v[i] < v[i - 1]))
      range_error(env, std::string("cfg.") + key + "[" + std::to_string(i) + "] must be a non-decreasing non-negative integer");
    out[i] = (int64_t)v[i];
  }
  if (out[0] != 0 || (end >= 0 && out[n] != end)) range_error(env, std::string("cfg.") + key + " must run from 0 to " + std::to_string(end));
  return out;
}

void check_docs(Napi::Env env, const std::vector<int32_t>& v, int64_t ndocs, const char* key) {
  for (size_t i = 0; i < v.size(); i++)
    if (v[i] < 0 || v[i] >= ndocs) range_error(env, std::string("cfg.") + key + "[" + std::to_string(i) + "] is not a document index");
}

Builder& handle_arg(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsExternal()) throw Napi::TypeError::New(info.Env(), "instance builder: argument 0 must be an instance builder handle");
  Handle* h = info[0].As<Napi::External<Handle>>().Data();
  if (h == nullptr || h->tag != kTag) throw Napi::TypeError::New(info.Env(), "instance builder: argument 0 is not an instance builder handle");
  return h->b;
}

}  // namespace

// instanceBuilderCreate(cfg): see src/data/instances.ts (nativeConfig) for the fields.
Napi::Value InstanceBuilderCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "instanceBuilderCreate(cfg: object)");
  Napi::Object c = info[0].As<Napi::Object>();
  auto* h = new Handle();
  Napi::External<Handle> ext = Napi::External<Handle>::New(env, h, [](Napi::Env, Handle* p) { delete p; });
  Builder& b = h->b;
  b.seed = (uint64_t)num_field(env, c, "seed", 0, 9007199254740991.0);
  b.maxSeqLen = (int32_t)num_field(env, c, "maxSeqLen", 8, 1 << 20);
  b.width = (int32_t)num_field(env, c, "width", 2, 4);
  if (b.width != 2 && b.width != 4) range_error(env, "cfg.width must be 2 or 4");
  const double idLimit = b.width == 2 ? 65535 : 2147483647.0;
  b.clsId = (int32_t)num_field(env, c, "clsId", 0, idLimit);
  b.sepId = (int32_t)num_field(env, c, "sepId", 0, idLimit);
  // documents
  Napi::Value idsV = c.Get("docIds");
  if (!idsV.IsArray()) type_error(env, "cfg.docIds must be an array of strings");
  Napi::Array ids = idsV.As<Napi::Array>();
  b.ndocs = ids.Length();
  const size_t nd = (size_t)b.ndocs;
  b.idOff.assign(nd + 1, 0);
  for (uint32_t d = 0; d < nd; d++) {
    Napi::Value v = ids.Get(d);
    if (!v.IsString()) type_error(env, "cfg.docIds[" + std::to_string(d) + "] is not a string");
    const std::string s = v.As<Napi::String>().Utf8Value();
    b.idBytes.insert(b.idBytes.end(), s.begin(), s.end());
    b.idOff[d + 1] = (int64_t)b.idBytes.size();
  }
  b.bounds = typed_field<int32_t, Napi::Int32Array>(env, c, "bounds", napi_int32_array, "Int32Array");
  b.bOff = offsets_field(env, c, "bOff", nd, (int64_t)b.bounds.size());
  {
    std::vector<double> t = typed_field<double, Napi::Float64Array>(env, c, "tokOff", napi_float64_array, "Float64Array");
    if (t.size() != nd) range_error(env, "cfg.tokOff must have one entry per document");
    b.tokOff.resize(nd);
    for (size_t d = 0; d < nd; d++) {
      if (!(t[d] >= 0 && t[d] <= 9007199254740991.0) || std::floor(t[d]) != t[d]) range_error(env, "cfg.tokOff[" + std::to_string(d) + "] must be a non-negative integer");
      b.tokOff[d] = (int64_t)t[d];
    }
  }
  // the tokens: an in-memory Uint16Array / Int32Array, or the token file
  Napi::Value tv = c.Get("tokens");
  if (tv.IsTypedArray()) {
    Napi::TypedArray ta = tv.As<Napi::TypedArray>();
    if (ta.TypedArrayType() == napi_uint16_array)
      b.tok16 = tv.As<Napi::Uint16Array>().Data();
    else if (ta.TypedArrayType() == napi_int32_array)
      b.tok32 = tv.As<Napi::Int32Array>().Data();
    else
      type_error(env, "cfg.tokens must be a Uint16Array or an Int32Array");
    b.ntokens = (int64_t)ta.ElementLength();
    h->tokens = Napi::Persistent(tv);
  } else if (tv.IsString()) {
    b.fileWidth = (int32_t)num_field(env, c, "tokenWidth", 2, 4);
    if (b.fileWidth != 2 && b.fileWidth != 4) range_error(env, "cfg.tokenWidth must be 2 or 4");
    const std::string file = tv.As<Napi::String>().Utf8Value();
    b.fd = open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (b.fd < 0) throw Napi::Error::New(env, "instanceBuilderCreate: cannot open token file " + file + ": " + std::strerror(errno));
    const off_t size = lseek(b.fd, 0, SEEK_END);
    b.ntokens = size < 0 ? 0 : (int64_t)size / b.fileWidth;
  } else
    type_error(env, "cfg.tokens must be a typed array or the token file's path");
  // every segment of every document lies inside the tokens
  for (size_t d = 0; d < nd; d++) {
    const int64_t n = b.bOff[d + 1] - b.bOff[d];
    if (n == 0) range_error(env, "cfg.bOff: document " + std::to_string(d) + " has no bounds (a document without segments has one)");
    for (int64_t k = 0; k < n; k++) {
      const int32_t v = b.bounds[b.bOff[d] + k];
      if (v < 0 || (k > 0 && v < b.bounds[b.bOff[d] + k - 1]) || b.tokOff[d] + v > b.ntokens)
        range_error(env, "cfg.bounds: segment bounds of document " + std::to_string(d) + " are decreasing or outside the tokens");
    }
  }
  b.split = typed_field<uint8_t, Napi::Uint8Array>(env, c, "split", napi_uint8_array, "Uint8Array");
  if (b.split.size() != nd) range_error(env, "cfg.split must have one entry per document");
  for (size_t d = 0; d < nd; d++)
    if (b.split[d] > 1) range_error(env, "cfg.split[" + std::to_string(d) + "] must be 0 or 1");
  // random partners
  b.groupOf = typed_field<int32_t, Napi::Int32Array>(env, c, "groupOf", napi_int32_array, "Int32Array");
  b.posInGroup = typed_field<int32_t, Napi::Int32Array>(env, c, "posInGroup", napi_int32_array, "Int32Array");
  b.posInSplit = typed_field<int32_t, Napi::Int32Array>(env, c, "posInSplit", napi_int32_array, "Int32Array");
  b.groups = typed_field<int32_t, Napi::Int32Array>(env, c, "groups", napi_int32_array, "Int32Array");
  check_docs(env, b.groups, b.ndocs, "groups");
  if (b.groupOf.size() != nd || b.posInGroup.size() != nd || b.posInSplit.size() != nd)
    range_error(env, "cfg.groupOf, cfg.posInGroup and cfg.posInSplit must have one entry per document");
  Napi::Value gOffV = c.Get("gOff");
  if (!gOffV.IsTypedArray() || gOffV.As<Napi::TypedArray>().ElementLength() == 0) type_error(env, "cfg.gOff must be a non-empty Float64Array");
  const size_t ngroups = gOffV.As<Napi::TypedArray>().ElementLength() - 1;
  b.gOff = offsets_field(env, c, "gOff", ngroups, (int64_t)b.groups.size());
  for (int s = 0; s < 2; s++) {
    b.splitDocs[s] = typed_field<int32_t, Napi::Int32Array>(env, c, s == 0 ? "trainDocs" : "validDocs", napi_int32_array, "Int32Array");
    check_docs(env, b.splitDocs[s], b.ndocs, s == 0 ? "trainDocs" : "validDocs");
  }
  for (size_t d = 0; d < nd; d++) {
    if (b.groupOf[d] < -1 || b.groupOf[d] >= (int64_t)ngroups) range_error(env, "cfg.groupOf[" + std::to_string(d) + "] is not a group index");
    if (b.groupOf[d] >= 0) {
      const int64_t glen = b.gOff[b.groupOf[d] + 1] - b.gOff[b.groupOf[d]];
      if (b.posInGroup[d] < 0 || b.posInGroup[d] >= glen || b.groups[b.gOff[b.groupOf[d]] + b.posInGroup[d]] != (int32_t)d)
        range_error(env, "cfg.posInGroup[" + std::to_string(d) + "] does not point at the document in its group");
      const std::vector<int32_t>& all = b.splitDocs[b.split[d]];
      if (b.posInSplit[d] < 0 || b.posInSplit[d] >= (int64_t)all.size() || all[b.posInSplit[d]] != (int32_t)d)
        range_error(env, "cfg.posInSplit[" + std::to_string(d) + "] does not point at the document in its split");
    }
  }
  for (size_t g = 0; g < ngroups; g++)
    for (int64_t k = b.gOff[g]; k < b.gOff[g + 1]; k++)
      if (b.bOff[b.groups[k] + 1] - b.bOff[b.groups[k]] < 2) range_error(env, "cfg.groups: document " + std::to_string(b.groups[k]) + " has no segments");
  for (int s = 0; s < 2; s++)
    for (int32_t d : b.splitDocs[s])
      if (b.bOff[d + 1] - b.bOff[d] < 2) range_error(env, "cfg.trainDocs/validDocs: document " + std::to_string(d) + " has no segments");
  // linked partners
  b.targets = typed_field<int32_t, Napi::Int32Array>(env, c, "targets", napi_int32_array, "Int32Array");
  check_docs(env, b.targets, b.ndocs, "targets");
  for (int32_t t : b.targets)
    if (b.bOff[t + 1] - b.bOff[t] < 2) range_error(env, "cfg.targets: document " + std::to_string(t) + " has no segments");
  b.cum = typed_field<double, Napi::Float64Array>(env, c, "cum", napi_float64_array, "Float64Array");
  if (b.cum.size() != b.targets.size()) range_error(env, "cfg.cum must have one entry per target");
  b.ltOff = offsets_field(env, c, "ltOff", nd, (int64_t)b.targets.size());
  // static masking
  Napi::Value mv = c.Get("mask");
  if (mv.IsObject()) {
    Napi::Object m = mv.As<Napi::Object>();
    b.mask = true;
    b.vocabSize = (int32_t)num_field(env, m, "vocabSize", 1, idLimit + 1);
    b.maskId = (int32_t)num_field(env, m, "maskId", 0, b.vocabSize - 1);
    b.maxPredictions = (int32_t)num_field(env, m, "maxPredictions", 1, 1 << 20);
    b.maskProb = num_field(env, m, "maskProb", 0, 1, false);
    Napi::Value ww = m.Get("wholeWord");
    if (!ww.IsBoolean()) type_error(env, "cfg.mask.wholeWord must be a boolean");
    b.wholeWord = ww.As<Napi::Boolean>().Value();
    b.never = typed_field<uint8_t, Napi::Uint8Array>(env, m, "never", napi_uint8_array, "Uint8Array");
    b.wordStart = typed_field<uint8_t, Napi::Uint8Array>(env, m, "wordStart", napi_uint8_array, "Uint8Array");
    b.pool = typed_field<int32_t, Napi::Int32Array>(env, m, "pool", napi_int32_array, "Int32Array");
    if (b.never.size() != (size_t)b.vocabSize || b.wordStart.size() != (size_t)b.vocabSize)
      range_error(env, "cfg.mask.never and cfg.mask.wordStart must have one entry per vocabulary id");
    if (b.pool.empty()) range_error(env, "cfg.mask.pool must not be empty");
    for (int32_t id : b.pool)
      if (id < 0 || id >= b.vocabSize) range_error(env, "cfg.mask.pool holds an id outside the vocabulary");
  } else if (!mv.IsNull() && !mv.IsUndefined())
    type_error(env, "cfg.mask must be an object or null");
  return ext;
}

// instanceBuilderClose(handle): closes the token file now (not when the handle is collected)
Napi::Value InstanceBuilderClose(const Napi::CallbackInfo& info) {
  Builder& b = handle_arg(info);
  if (b.fd >= 0) close(b.fd);
  b.fd = -1;
  b.closed = true;
  return info.Env().Undefined();
}

// instanceBuilderBuild(handle, round, doc, seg, copy, label, threads)
Napi::Value InstanceBuilderBuild(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Builder& b = handle_arg(info);
  if (b.closed) throw Napi::Error::New(env, "instanceBuilderBuild: the builder was closed");
  auto arr = [&](size_t i, napi_typedarray_type t, const char* name) {
    if (info.Length() <= i || !info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != t)
      throw Napi::TypeError::New(env, std::string("instanceBuilderBuild(handle, round, doc: Int32Array, seg: Int32Array, copy: Int32Array, label: Int8Array, threads): bad ") + name);
    return info[i].As<Napi::TypedArray>();
  };
  if (info.Length() < 7 || !info[1].IsNumber() || !info[6].IsNumber())
    throw Napi::TypeError::New(env, "instanceBuilderBuild(handle, round, doc, seg, copy, label, threads)");
  const double roundD = info[1].As<Napi::Number>().DoubleValue();
  if (!(roundD >= 0 && roundD <= 9007199254740991.0) || std::floor(roundD) != roundD) throw Napi::RangeError::New(env, "instanceBuilderBuild: round must be a non-negative integer");
  const double td = info[6].As<Napi::Number>().DoubleValue();
  if (!(td >= 1 && td <= 256) || std::floor(td) != td) throw Napi::RangeError::New(env, "instanceBuilderBuild: threads must be an integer in [1, 256]");
  Napi::Int32Array doc = arr(2, napi_int32_array, "doc").As<Napi::Int32Array>();
  Napi::Int32Array seg = arr(3, napi_int32_array, "seg").As<Napi::Int32Array>();
  Napi::Int32Array copy = arr(4, napi_int32_array, "copy").As<Napi::Int32Array>();
  Napi::Int8Array label = arr(5, napi_int8_array, "label").As<Napi::Int8Array>();
  const size_t n = doc.ElementLength();
  if (seg.ElementLength() != n || copy.ElementLength() != n || label.ElementLength() != n)
    throw Napi::RangeError::New(env, "instanceBuilderBuild: doc, seg, copy and label must have the same length");
  // every anchor must be one plan() could have made
  for (size_t k = 0; k < n; k++) {
    const int32_t d = doc[k];
    const std::string at = "instanceBuilderBuild: anchor " + std::to_string(k);
    if (d < 0 || d >= b.ndocs) throw Napi::RangeError::New(env, at + ": doc is not a document index");
    if (seg[k] < 0 || seg[k] >= b.nseg(d)) throw Napi::RangeError::New(env, at + ": seg is not a segment of the document");
    if (copy[k] < 0) throw Napi::RangeError::New(env, at + ": copy must be non-negative");
    const int l = label[k];
    if (l == CONTIGUOUS) {
      if (seg[k] + 1 >= b.nseg(d)) throw Napi::RangeError::New(env, at + ": contiguous, but seg is the last segment");
    } else if (l == RANDOM) {
      if (b.groupOf[d] < 0 || b.splitDocs[b.split[d]].size() < 2) throw Napi::RangeError::New(env, at + ": random, but the document has no other document in its split");
    } else if (l == LINKED) {
      if (b.ltOff[d + 1] == b.ltOff[d]) throw Napi::RangeError::New(env, at + ": linked, but the document has no link targets");
    } else
      throw Napi::RangeError::New(env, at + ": label must be 0, 1 or 2");
  }
  std::vector<int32_t> D(doc.Data(), doc.Data() + n), S(seg.Data(), seg.Data() + n), C(copy.Data(), copy.Data() + n);
  std::vector<int8_t> L(label.Data(), label.Data() + n);
  const size_t nth = std::max<size_t>(1, std::min<size_t>((size_t)td, n / 64));
  // each part's scratch is kept by the builder: its buffers keep their pages from call to call
  std::vector<Scratch>& scratch = b.scratch;
  if (scratch.size() < nth) scratch.resize(nth);
  std::vector<std::string> errors(nth);
  auto run = [&](size_t w) {
    scratch[w].out.clear();
    scratch[w].lens.clear();
    scratch[w].ntok.clear();
    try {
      const size_t from = n * w / nth, to = n * (w + 1) / nth;
      for (size_t k = from; k < to; k++) b.build_one(scratch[w], (int64_t)roundD, D[k], S[k], C[k], L[k]);
    } catch (const std::exception& e) {
      errors[w] = e.what();
    }
  };
  // fixed parts (the output does not depend on which thread takes which), on the addon's thread pool
  parallel_for((int64_t)nth, 1, [&](int64_t b, int64_t e) {
    for (int64_t w = b; w < e; w++) run((size_t)w);
  });
  for (const std::string& e : errors)
    if (!e.empty()) throw Napi::Error::New(env, "instanceBuilderBuild: " + e);
  size_t bytes = 0;
  for (size_t w = 0; w < nth; w++) bytes += scratch[w].out.size();
  Napi::Uint8Array records = Napi::Uint8Array::New(env, bytes);
  Napi::Int32Array lens = Napi::Int32Array::New(env, n), ntok = Napi::Int32Array::New(env, n);
  size_t at = 0, k = 0;
  for (size_t w = 0; w < nth; w++) {
    const Scratch& s = scratch[w];
    std::memcpy(records.Data() + at, s.out.data(), s.out.size());
    at += s.out.size();
    std::copy(s.lens.begin(), s.lens.end(), lens.Data() + k);
    std::copy(s.ntok.begin(), s.ntok.end(), ntok.Data() + k);
    k += s.lens.size();
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("records", records);
  o.Set("lens", lens);
  o.Set("ntok", ntok);
  return o;
}

}  // namespace lb
