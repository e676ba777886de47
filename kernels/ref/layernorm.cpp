// layernorm.cpp (ref): two-pass mean / variance in f64 per row; the backward uses the stored mean and
// rstd (as every backend does) with f64 sums.
#include <cmath>
#include <vector>

#include "ref_util.h"

namespace lb {

void layernorm_forward_ref(const LayernormParams& p) {
  // x, residual, sum, out (rows, cols); mean, rstd (rows); gamma, beta (cols)
  std::vector<double> s(p.cols);
  for (int r = 0; r < p.rows; r++) {
    const int64_t o = (int64_t)r * p.cols;
    double mean = 0.0;
    for (int c = 0; c < p.cols; c++) {
      s[c] = ref::load(p.x, o + c, p.dtype) + (p.residual ? ref::load(p.residual, o + c, p.dtype) : 0.0);
      if (p.sum) ref::store(p.sum, o + c, s[c], p.dtype);
      mean += s[c];
    }
    mean /= p.cols;
    double var = 0.0;
    for (int c = 0; c < p.cols; c++) var += (s[c] - mean) * (s[c] - mean);
    var /= p.cols;
    const double rstd = 1.0 / std::sqrt(var + (double)p.eps);
    p.mean[r] = (float)mean;
    p.rstd[r] = (float)rstd;
    for (int c = 0; c < p.cols; c++)
      ref::store(p.out, o + c, (s[c] - mean) * rstd * (double)p.gamma[c] + (double)p.beta[c], p.dtype);
  }
}

// backward: xhat = (x - mean) rstd; dxhat = dout gamma;
//   dx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat))   (=)
//   dgamma += sum_rows dout xhat; dbeta += sum_rows dout        (+=)
void layernorm_backward_ref(const LayernormParams& p) {
  std::vector<double> dg(p.cols, 0.0), db(p.cols, 0.0);
  for (int r = 0; r < p.rows; r++) {
    const int64_t o = (int64_t)r * p.cols;
    const double mean = p.mean[r], rstd = p.rstd[r];
    double sum_dxhat = 0.0, sum_dxhat_xhat = 0.0;
    for (int c = 0; c < p.cols; c++) {
      const double xhat = (ref::load(p.x, o + c, p.dtype) - mean) * rstd;
      const double dout = ref::load(p.dout, o + c, p.dtype);
      const double dxhat = dout * (double)p.gamma[c];
      sum_dxhat += dxhat;
      sum_dxhat_xhat += dxhat * xhat;
      dg[c] += dout * xhat;
      db[c] += dout;
    }
    sum_dxhat /= p.cols;
    sum_dxhat_xhat /= p.cols;
    for (int c = 0; c < p.cols; c++) {
      const double xhat = (ref::load(p.x, o + c, p.dtype) - mean) * rstd;
      const double dxhat = ref::load(p.dout, o + c, p.dtype) * (double)p.gamma[c];
      ref::store(p.dx, o + c, rstd * (dxhat - sum_dxhat - xhat * sum_dxhat_xhat), p.dtype);
    }
  }
  for (int c = 0; c < p.cols; c++) {
    p.dgamma[c] = (float)((double)p.dgamma[c] + dg[c]);
    p.dbeta[c] = (float)((double)p.dbeta[c] + db[c]);
  }
}

}  // namespace lb
