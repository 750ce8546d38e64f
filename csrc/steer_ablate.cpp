// CPU kernel of steerfast::steer_ablate_: scale, shift, then directional ablation of each
// selected row, in one kernel (the row stays in cache between the affine pass, which also
// accumulates the dot product, and the rank-1 update). The dot product is accumulated in
// fp64 (sequentially), so it differs from the torch reference's fp32 pairwise sum only by the
// reference's own rounding; the elementwise parts round exactly as the reference does.
#include "steerfast_ops.h"
#include "convert.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <vector>

namespace steerfast {

namespace {

struct AblateTables {
  const float* mask = nullptr;  // (E, D)
  const float* delta = nullptr;
  int64_t delta_stride = 0;
  const float* bias = nullptr;  // (E, D)
  const float* coef = nullptr;
  int64_t coef_stride = 0;
  const float* dir = nullptr;  // (E, D) unit rows
  const float* alpha = nullptr;
  int64_t alpha_stride = 0;
};

// a <- affine(a) in place over the whole row, returning dot(a, r) accumulated in fp64.
inline double affine_dot(float* a, int64_t n, const float* m, float d, const float* b, float c,
                         const float* r) {
  double dot = 0.0;
  for (int64_t j = 0; j < n; ++j) {
    float v = a[j];
    if (m) v = v * (1.0f + d * m[j]);
    if (b) v = v + c * b[j];
    a[j] = v;
    dot += static_cast<double>(v) * static_cast<double>(r[j]);
  }
  return dot;
}

template <typename scalar_t, typename index_t>
void ablate_loop(scalar_t* y, const index_t* slots, int64_t slot_stride, int64_t N, int64_t D,
                 const AblateTables& t) {
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(D, 1));
  at::parallel_for(0, N, grain, [&](int64_t begin, int64_t end) {
    std::vector<float> buf(static_cast<size_t>(D));  // one per task, not per row
    for (int64_t r = begin; r < end; ++r) {
      const int64_t s = static_cast<int64_t>(slots[r * slot_stride]);
      if (s < 0) continue;
      scalar_t* row = y + r * D;
      to_float(row, buf.data(), D);
      const float* m = t.mask ? t.mask + s * D : nullptr;
      const float* b = t.bias ? t.bias + s * D : nullptr;
      const float d = t.mask ? t.delta[s * t.delta_stride] : 0.0f;
      const float c = t.bias ? t.coef[s * t.coef_stride] : 0.0f;
      const float* dir = t.dir + s * D;
      const float dot = static_cast<float>(affine_dot(buf.data(), D, m, d, b, c, dir));
      const float k = t.alpha[s * t.alpha_stride] * dot;
      for (int64_t j = 0; j < D; ++j) buf[j] = buf[j] - k * dir[j];
      from_float(buf.data(), row, D);
    }
  });
}

}  // namespace

void steer_ablate_cpu(const at::Tensor& y, const at::Tensor& slots,
                      const std::optional<at::Tensor>& mask, const std::optional<at::Tensor>& delta,
                      const std::optional<at::Tensor>& bias, const std::optional<at::Tensor>& coef,
                      const at::Tensor& direction, const at::Tensor& alpha) {
  constexpr const char* what = "steerfast::steer_ablate_";
  check_rows(what, y, slots);
  int64_t E = std::numeric_limits<int64_t>::max();
  check_table_pair(what, y.device(), y.size(1), &E, mask, delta, "mask", "delta");
  check_table_pair(what, y.device(), y.size(1), &E, bias, coef, "bias", "coef");
  check_table_pair(what, y.device(), y.size(1), &E, direction, alpha, "direction", "alpha");
  check_slot_range(what, slots, E);
  const int64_t N = y.size(0), D = y.size(1);
  if (N == 0 || D == 0) return;
  AblateTables t;
  if (mask.has_value()) {
    t.mask = mask->const_data_ptr<float>();
    t.delta = delta->const_data_ptr<float>();
    t.delta_stride = delta->stride(0);
  }
  if (bias.has_value()) {
    t.bias = bias->const_data_ptr<float>();
    t.coef = coef->const_data_ptr<float>();
    t.coef_stride = coef->stride(0);
  }
  t.dir = direction.const_data_ptr<float>();
  t.alpha = alpha.const_data_ptr<float>();
  t.alpha_stride = alpha.stride(0);
  auto run = [&](auto tag) {
    using scalar_t = decltype(tag);
    scalar_t* p = y.mutable_data_ptr<scalar_t>();
    if (slots.scalar_type() == at::kInt)
      ablate_loop(p, slots.const_data_ptr<int32_t>(), slots.stride(0), N, D, t);
    else
      ablate_loop(p, slots.const_data_ptr<int64_t>(), slots.stride(0), N, D, t);
  };
  switch (y.scalar_type()) {
    case at::kFloat: run(float{}); break;
    case at::kHalf: run(c10::Half{}); break;
    case at::kBFloat16: run(c10::BFloat16{}); break;
    default: TORCH_CHECK(false, "steerfast: unsupported activation dtype ", y.scalar_type());
  }
}

}  // namespace steerfast
