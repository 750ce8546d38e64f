// CPU kernel of steerfast::steer_rows_ and the row loop shared with steer_linear.
// Built with -ffp-contract=off: every product and sum is rounded separately, in the order of
// the torch reference, so results are bit-identical to it.
#include "steerfast_ops.h"
#include "convert.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <type_traits>

namespace steerfast {

void check_rows(const char* what, const at::Tensor& y, const at::Tensor& slots) {
  TORCH_CHECK(y.dim() == 2, what, ": expected a 2-D (rows, D) activation, got ", y.dim(), "-D");
  TORCH_CHECK(y.is_contiguous(), what,
              ": the activation must be contiguous (call .contiguous() on it first)");
  const auto t = y.scalar_type();
  TORCH_CHECK(t == at::kFloat || t == at::kHalf || t == at::kBFloat16, what,
              ": activation dtype must be float32, float16 or bfloat16, got ", t);
  TORCH_CHECK(slots.dim() == 1 && slots.size(0) == y.size(0), what,
              ": slots must be 1-D with one entry per row (", y.size(0), "), got shape ",
              slots.sizes());
  TORCH_CHECK(slots.scalar_type() == at::kInt || slots.scalar_type() == at::kLong, what,
              ": slots must be int32 or int64, got ", slots.scalar_type());
  TORCH_CHECK(slots.device() == y.device(), what, ": slots are on ", slots.device(),
              " but the activation is on ", y.device());
}

void check_table_pair(const char* what, const at::Device& device, int64_t width,
                      int64_t* num_entries, const std::optional<at::Tensor>& table,
                      const std::optional<at::Tensor>& strength, const char* table_name,
                      const char* strength_name) {
  TORCH_CHECK(table.has_value() == strength.has_value(), what, ": ", table_name, " and ",
              strength_name, " must be given together or both None");
  if (!table.has_value()) return;
  const at::Tensor& t = *table;
  const at::Tensor& k = *strength;
  TORCH_CHECK(t.dim() == 2 && t.size(1) == width, what, ": ", table_name,
              " must be (E, ", width, "), got shape ", t.sizes());
  TORCH_CHECK(t.scalar_type() == at::kFloat && k.scalar_type() == at::kFloat, what, ": ",
              table_name, " and ", strength_name, " must be float32");
  TORCH_CHECK(t.is_contiguous(), what, ": ", table_name, " must be contiguous");
  TORCH_CHECK(k.dim() == 1 && k.size(0) == t.size(0), what, ": ", strength_name,
              " must be 1-D of length E = ", t.size(0), ", got shape ", k.sizes());
  TORCH_CHECK(t.device() == device && k.device() == device, what, ": ", table_name, " and ",
              strength_name, " must be on ", device);
  *num_entries = std::min(*num_entries, t.size(0));
}

namespace {

template <typename index_t>
int64_t max_slot(const at::Tensor& slots) {
  const index_t* p = slots.const_data_ptr<index_t>();
  const int64_t n = slots.size(0), st = slots.stride(0);
  int64_t m = -1;
  for (int64_t i = 0; i < n; ++i) m = std::max<int64_t>(m, p[i * st]);
  return m;
}

}  // namespace

void check_slot_range(const char* what, const at::Tensor& slots, int64_t num_entries) {
  const int64_t m = slots.scalar_type() == at::kInt ? max_slot<int32_t>(slots)
                                                    : max_slot<int64_t>(slots);
  TORCH_CHECK(m < num_entries, what, ": slot ", m, " is out of range for tables with ",
              num_entries, " entries");
}

namespace {

struct Tables {
  const float* mask = nullptr;  // (E, D)
  const float* delta = nullptr;
  int64_t delta_stride = 0;
  const float* bias = nullptr;  // (E, D)
  const float* coef = nullptr;
  int64_t coef_stride = 0;
};

// fp32 math on one run of a row; plain loops over the run that gcc -O3 vectorises, one
// branch-free loop per table combination.
inline void steer_run(const float* in, float* out, int64_t n, const float* m, float d,
                      const float* b, float c) {
  if (m && b) {
    for (int64_t j = 0; j < n; ++j) {
      float a = in[j] * (1.0f + d * m[j]);
      out[j] = a + c * b[j];
    }
  } else if (m) {
    for (int64_t j = 0; j < n; ++j) out[j] = in[j] * (1.0f + d * m[j]);
  } else if (b) {
    for (int64_t j = 0; j < n; ++j) out[j] = in[j] + c * b[j];
  } else if (in != out) {
    std::memcpy(out, in, n * sizeof(float));
  }
}

constexpr int64_t kChunk = 512;  // fp16/bf16 rows go through a stack buffer of this many floats

template <typename scalar_t>
inline void steer_row(const scalar_t* in, scalar_t* out, int64_t D, int64_t s, const Tables& t) {
  const float* m = t.mask ? t.mask + s * D : nullptr;
  const float* b = t.bias ? t.bias + s * D : nullptr;
  const float d = t.mask ? t.delta[s * t.delta_stride] : 0.0f;
  const float c = t.bias ? t.coef[s * t.coef_stride] : 0.0f;
  if constexpr (std::is_same_v<scalar_t, float>) {
    steer_run(in, out, D, m, d, b, c);
  } else {
    float buf[kChunk];
    for (int64_t j0 = 0; j0 < D; j0 += kChunk) {
      const int64_t n = std::min(kChunk, D - j0);
      to_float(in + j0, buf, n);
      steer_run(buf, buf, n, m ? m + j0 : nullptr, d, b ? b + j0 : nullptr, c);
      from_float(buf, out + j0, n);
    }
  }
}

template <typename scalar_t, typename index_t>
void steer_rows_loop(const scalar_t* src, scalar_t* dst, const index_t* slots, int64_t slot_stride,
                     int64_t N, int64_t D, const Tables& t) {
  // Parallel only when the work pays for the thread wake-up (~32K elements per chunk).
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(D, 1));
  at::parallel_for(0, N, grain, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t s = static_cast<int64_t>(slots[r * slot_stride]);
      const scalar_t* in = src + r * D;
      scalar_t* out = dst + r * D;
      if (s < 0) {
        if (in != out) std::memcpy(out, in, D * sizeof(scalar_t));
        continue;
      }
      steer_row(in, out, D, s, t);
    }
  });
}

}  // namespace

void steer_rows_into(const at::Tensor& src, const at::Tensor& dst, const at::Tensor& slots,
                     const std::optional<at::Tensor>& mask, const std::optional<at::Tensor>& delta,
                     const std::optional<at::Tensor>& bias, const std::optional<at::Tensor>& coef) {
  Tables t;
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
  const int64_t N = src.size(0), D = src.size(1);
  if (N == 0 || D == 0) return;
  auto run = [&](auto tag) {
    using scalar_t = decltype(tag);
    const scalar_t* in = src.const_data_ptr<scalar_t>();
    scalar_t* out = dst.mutable_data_ptr<scalar_t>();
    if (slots.scalar_type() == at::kInt)
      steer_rows_loop(in, out, slots.const_data_ptr<int32_t>(), slots.stride(0), N, D, t);
    else
      steer_rows_loop(in, out, slots.const_data_ptr<int64_t>(), slots.stride(0), N, D, t);
  };
  switch (src.scalar_type()) {  // check_rows admits exactly these three
    case at::kFloat: run(float{}); break;
    case at::kHalf: run(c10::Half{}); break;
    case at::kBFloat16: run(c10::BFloat16{}); break;
    default: TORCH_CHECK(false, "steerfast: unsupported activation dtype ", src.scalar_type());
  }
}

void steer_rows_cpu(const at::Tensor& y, const at::Tensor& slots,
                    const std::optional<at::Tensor>& mask, const std::optional<at::Tensor>& delta,
                    const std::optional<at::Tensor>& bias, const std::optional<at::Tensor>& coef) {
  constexpr const char* what = "steerfast::steer_rows_";
  check_rows(what, y, slots);
  int64_t E = std::numeric_limits<int64_t>::max();
  check_table_pair(what, y.device(), y.size(1), &E, mask, delta, "mask", "delta");
  check_table_pair(what, y.device(), y.size(1), &E, bias, coef, "bias", "coef");
  if (!mask.has_value() && !bias.has_value()) return;
  check_slot_range(what, slots, E);
  steer_rows_into(y, y, slots, mask, delta, bias, coef);
}

}  // namespace steerfast
