// CPU kernel of steerfast::steer_linear: the prologue scale is written into a fresh copy of x
// in one pass (scaled rows scaled, the rest memcpy'd), the GEMM is ATen's own at::linear on
// the same shapes as the reference (so the result is bit-identical to it), and the epilogue
// runs in place on the GEMM output.
#include "steerfast_ops.h"

#include <limits>

namespace steerfast {

at::Tensor steer_linear_cpu(const at::Tensor& x, const at::Tensor& weight,
                            const std::optional<at::Tensor>& lin_bias, const at::Tensor& slots,
                            const std::optional<at::Tensor>& in_mask,
                            const std::optional<at::Tensor>& in_delta,
                            const std::optional<at::Tensor>& out_mask,
                            const std::optional<at::Tensor>& out_delta,
                            const std::optional<at::Tensor>& out_bias,
                            const std::optional<at::Tensor>& out_coef) {
  constexpr const char* what = "steerfast::steer_linear";
  check_rows(what, x, slots);
  TORCH_CHECK(weight.dim() == 2 && weight.size(1) == x.size(1), what,
              ": weight must be (O, ", x.size(1), "), got shape ", weight.sizes());
  TORCH_CHECK(weight.scalar_type() == x.scalar_type() && weight.device() == x.device(), what,
              ": weight must have the activation's dtype and device");
  const int64_t O = weight.size(0);
  if (lin_bias.has_value()) {
    TORCH_CHECK(lin_bias->dim() == 1 && lin_bias->size(0) == O, what,
                ": lin_bias must be (", O, "), got shape ", lin_bias->sizes());
    TORCH_CHECK(lin_bias->scalar_type() == x.scalar_type() && lin_bias->device() == x.device(),
                what, ": lin_bias must have the activation's dtype and device");
  }
  int64_t E = std::numeric_limits<int64_t>::max();
  check_table_pair(what, x.device(), x.size(1), &E, in_mask, in_delta, "in_mask", "in_delta");
  check_table_pair(what, x.device(), O, &E, out_mask, out_delta, "out_mask", "out_delta");
  check_table_pair(what, x.device(), O, &E, out_bias, out_coef, "out_bias", "out_coef");
  const bool steer_out = out_mask.has_value() || out_bias.has_value();
  if (in_mask.has_value() || steer_out) check_slot_range(what, slots, E);

  at::Tensor xs = x;
  if (in_mask.has_value()) {
    xs = at::empty_like(x);
    steer_rows_into(x, xs, slots, in_mask, in_delta, std::nullopt, std::nullopt);
  }
  at::Tensor y = at::linear(xs, weight, lin_bias);
  if (steer_out) steer_rows_into(y, y, slots, out_mask, out_delta, out_bias, out_coef);
  return y;
}

}  // namespace steerfast
