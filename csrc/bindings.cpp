// CPU kernels of the steerfast ops. The schemas, the CUDA kernels (Triton) and the fake (meta)
// implementations are registered from Python (steerfast/ops/library.py), which loads this
// library lazily, on the first CPU call of an op.
#include <torch/library.h>

#include "steerfast_ops.h"

TORCH_LIBRARY_IMPL(steerfast, CPU, m) {
  m.impl("steer_rows_", &steerfast::steer_rows_cpu);
  m.impl("steer_linear", &steerfast::steer_linear_cpu);
  m.impl("steer_ablate_", &steerfast::steer_ablate_cpu);
}
