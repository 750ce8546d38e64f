// Schemas of the steerfast ops and their CPU kernels. The CUDA kernels (Triton) and the fake
// (meta) implementations are registered from Python: steerfast/ops/library.py.
#include <torch/library.h>

#include "steerfast_ops.h"

TORCH_LIBRARY(steerfast, m) {
  m.def("steer_rows_(Tensor(a!) y, Tensor slots, Tensor? mask, Tensor? delta, Tensor? bias, "
        "Tensor? coef) -> ()");
  m.def("steer_linear(Tensor x, Tensor weight, Tensor? lin_bias, Tensor slots, Tensor? in_mask, "
        "Tensor? in_delta, Tensor? out_mask, Tensor? out_delta, Tensor? out_bias, "
        "Tensor? out_coef) -> Tensor");
}

TORCH_LIBRARY_IMPL(steerfast, CPU, m) {
  m.impl("steer_rows_", &steerfast::steer_rows_cpu);
  m.impl("steer_linear", &steerfast::steer_linear_cpu);
}
