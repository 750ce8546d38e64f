// CPU kernels of the steering ops. The contract (shapes, dtypes, semantics) is the torch
// reference in steerfast/ops/reference.py; these must match it bit for bit on CPU.
#pragma once

#include <ATen/ATen.h>
#include <optional>

namespace steerfast {

// y[r] = y[r] * (1 + delta[s] * mask[s]) + coef[s] * bias[s] for rows with s = slots[r] >= 0.
void steer_rows_cpu(const at::Tensor& y, const at::Tensor& slots,
                    const std::optional<at::Tensor>& mask, const std::optional<at::Tensor>& delta,
                    const std::optional<at::Tensor>& bias, const std::optional<at::Tensor>& coef);

// steer_rows_'s affine, then y[r] -= alpha[s] * dot(y[r], direction[s]) * direction[s].
void steer_ablate_cpu(const at::Tensor& y, const at::Tensor& slots,
                      const std::optional<at::Tensor>& mask, const std::optional<at::Tensor>& delta,
                      const std::optional<at::Tensor>& bias, const std::optional<at::Tensor>& coef,
                      const at::Tensor& direction, const at::Tensor& alpha);

// Prologue scale on a copy of x, linear, then steer_rows_ on the output.
at::Tensor steer_linear_cpu(const at::Tensor& x, const at::Tensor& weight,
                            const std::optional<at::Tensor>& lin_bias, const at::Tensor& slots,
                            const std::optional<at::Tensor>& in_mask,
                            const std::optional<at::Tensor>& in_delta,
                            const std::optional<at::Tensor>& out_mask,
                            const std::optional<at::Tensor>& out_delta,
                            const std::optional<at::Tensor>& out_bias,
                            const std::optional<at::Tensor>& out_coef);

// Shared input validation (TORCH_CHECK); `what` names the op in messages.
void check_rows(const char* what, const at::Tensor& y, const at::Tensor& slots);
// Validates an (E, width) fp32 table with its (E,) fp32 strength (both given or both None);
// lowers *num_entries to E when present.
void check_table_pair(const char* what, const at::Device& device, int64_t width,
                      int64_t* num_entries, const std::optional<at::Tensor>& table,
                      const std::optional<at::Tensor>& strength, const char* table_name,
                      const char* strength_name);
void check_slot_range(const char* what, const at::Tensor& slots, int64_t num_entries);

// Row-loop helpers used by both ops (defined in steer_rows.cpp).
// Writes dst[r] = steer(src[r]) for every row (src may equal dst); rows with slot < 0 are
// copied unchanged when src != dst and left alone otherwise.
void steer_rows_into(const at::Tensor& src, const at::Tensor& dst, const at::Tensor& slots,
                     const std::optional<at::Tensor>& mask, const std::optional<at::Tensor>& delta,
                     const std::optional<at::Tensor>& bias, const std::optional<at::Tensor>& coef);

}  // namespace steerfast
