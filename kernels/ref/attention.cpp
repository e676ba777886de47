// attention.cpp (ref): softmax(Q K^T * scale + mask) V per (batch, head), materialising the T x T
// probabilities in f64. The backward recomputes everything from q, k, v in f64 (the stored f32 lse is
// not needed by the oracle) and fills the delta scratch.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "ref_util.h"

namespace lb {
namespace {

struct Probs {
  std::vector<double> P;     // (T, T) softmax probabilities before dropout; 0 on masked keys / empty rows
  std::vector<double> Pd;    // (T, T) after dropout and 1/(1-p) scaling
  std::vector<double> lse;   // (T) -inf for an all-padding row
};

// row t of head h in batch b: of out and dout (at), of q, k, v, dq, dk, dv (atx, rows ld_qkv apart)
inline int64_t at(const AttentionParams& p, int b, int t, int h) { return (((int64_t)b * p.T + t) * p.NH + h) * p.D; }
inline int64_t atx(const AttentionParams& p, int b, int t, int h) { return ((int64_t)b * p.T + t) * p.ld_qkv + (int64_t)h * p.D; }

void probs_ref(const AttentionParams& p, int b, int h, Probs& pr) {
  const int T = p.T;
  pr.P.assign((size_t)T * T, 0.0);
  pr.Pd.assign((size_t)T * T, 0.0);
  pr.lse.assign(T, -std::numeric_limits<double>::infinity());
  std::vector<double> s(T);
  const double keep_scale = 1.0 / (1.0 - (double)p.dropout_p);
  for (int i = 0; i < T; i++) {
    double mx = -std::numeric_limits<double>::infinity();
    for (int j = 0; j < T; j++) {
      if (p.key_mask && p.key_mask[(int64_t)b * T + j] == 0) continue;
      double acc = 0.0;
      for (int d = 0; d < p.D; d++) acc += ref::load(p.q, atx(p, b, i, h) + d, p.dtype) * ref::load(p.k, atx(p, b, j, h) + d, p.dtype);
      s[j] = acc * (double)p.scale;
      if (s[j] > mx) mx = s[j];
    }
    if (mx == -std::numeric_limits<double>::infinity()) continue;  // every key is padding: out = 0, lse = -inf
    double sum = 0.0;
    for (int j = 0; j < T; j++)
      if (!(p.key_mask && p.key_mask[(int64_t)b * T + j] == 0)) sum += std::exp(s[j] - mx);
    const double lse = mx + std::log(sum);
    pr.lse[i] = lse;
    for (int j = 0; j < T; j++) {
      if (p.key_mask && p.key_mask[(int64_t)b * T + j] == 0) continue;
      const double prob = std::exp(s[j] - lse);
      pr.P[(size_t)i * T + j] = prob;
      const uint64_t ctr = p.offset + (((uint64_t)b * p.NH + h) * T + i) * (uint64_t)T + j;
      const bool keep = p.dropout_p <= 0.0f || lb_dropout_keep(p.seed, ctr, p.dropout_p);
      pr.Pd[(size_t)i * T + j] = keep ? prob * keep_scale : 0.0;
    }
  }
}

}  // namespace

void attention_forward_ref(const AttentionParams& p) {
  // q, k, v, out (B,T,NH,D); lse (B,NH,T); key_mask (B,T)
  Probs pr;
  for (int b = 0; b < p.B; b++)
    for (int h = 0; h < p.NH; h++) {
      probs_ref(p, b, h, pr);
      for (int i = 0; i < p.T; i++) {
        p.lse[((int64_t)b * p.NH + h) * p.T + i] = (float)pr.lse[i];
        for (int d = 0; d < p.D; d++) {
          double acc = 0.0;
          for (int j = 0; j < p.T; j++) acc += pr.Pd[(size_t)i * p.T + j] * ref::load(p.v, atx(p, b, j, h) + d, p.dtype);
          ref::store(p.out, at(p, b, i, h) + d, acc, p.dtype);
        }
      }
    }
}

// backward (activation grads =): with P' the dropped probabilities,
//   dv_j = sum_i P'_ij dout_i;  dP_ij = (dout_i . v_j) * keep_ij / (1-p);  dS_ij = P_ij (dP_ij - delta_i),
//   delta_i = sum_j P_ij dP_ij = dout_i . out_i;  dq_i = scale sum_j dS_ij k_j;  dk_j = scale sum_i dS_ij q_i.
void attention_backward_ref(const AttentionParams& p) {
  const int T = p.T, D = p.D;
  Probs pr;
  std::vector<double> dS((size_t)T * T);
  for (int b = 0; b < p.B; b++)
    for (int h = 0; h < p.NH; h++) {
      probs_ref(p, b, h, pr);
      for (int i = 0; i < T; i++) {
        // delta = rowsum(dout * out) over the stored output, as the contract defines it (with bf16 data
        // the stored out is rounded, and every backend's dq/dk carry that rounding)
        double dl = 0.0;
        for (int d = 0; d < D; d++) dl += ref::load(p.out, at(p, b, i, h) + d, p.dtype) * ref::load(p.dout, at(p, b, i, h) + d, p.dtype);
        p.delta[((int64_t)b * p.NH + h) * T + i] = (float)dl;
        for (int j = 0; j < T; j++) {
          const double P = pr.P[(size_t)i * T + j];
          if (P == 0.0) { dS[(size_t)i * T + j] = 0.0; continue; }
          double dpd = 0.0;  // dout_i . v_j
          for (int d = 0; d < D; d++) dpd += ref::load(p.dout, at(p, b, i, h) + d, p.dtype) * ref::load(p.v, atx(p, b, j, h) + d, p.dtype);
          const double dP = dpd * (pr.Pd[(size_t)i * T + j] / P);  // keep / (1-p), or 0 when dropped
          dS[(size_t)i * T + j] = P * (dP - dl);
        }
      }
      for (int i = 0; i < T; i++)
        for (int d = 0; d < D; d++) {
          double dq = 0.0, dk = 0.0, dv = 0.0;
          for (int j = 0; j < T; j++) {
            dq += dS[(size_t)i * T + j] * ref::load(p.k, atx(p, b, j, h) + d, p.dtype);
            // here i plays the key index: dk_i, dv_i sum over queries j
            dk += dS[(size_t)j * T + i] * ref::load(p.q, atx(p, b, j, h) + d, p.dtype);
            dv += pr.Pd[(size_t)j * T + i] * ref::load(p.dout, at(p, b, j, h) + d, p.dtype);
          }
          ref::store(p.dq, atx(p, b, i, h) + d, dq * (double)p.scale, p.dtype);
          ref::store(p.dk, atx(p, b, i, h) + d, dk * (double)p.scale, p.dtype);
          ref::store(p.dv, atx(p, b, i, h) + d, dv, p.dtype);
        }
    }
}

}  // namespace lb
