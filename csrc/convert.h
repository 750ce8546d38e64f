// Fast fp16/bf16 <-> fp32 conversion of contiguous runs, bit-identical to c10's scalar
// conversions (round to nearest even) for every non-NaN value. The scalar c10 conversions
// do not vectorise; these do (bf16: plain integer loops; fp16: F16C when the CPU has it).
#pragma once

#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <cstdint>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define STEERFAST_X86 1
#endif

namespace steerfast {

inline void to_float(const float* in, float* out, int64_t n) {
  std::memcpy(out, in, n * sizeof(float));
}
inline void from_float(const float* in, float* out, int64_t n) {
  std::memcpy(out, in, n * sizeof(float));
}

// bf16 <-> fp32 on raw bits. The same loop body is compiled twice, for the baseline ISA and
// for AVX2 (whose 256-bit integer ops make the narrowing cheap), and picked at run time.
#define STEERFAST_BF16_TO_F32_BODY \
  for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<uint32_t>(src[i]) << 16;
#define STEERFAST_F32_TO_BF16_BODY                                                          \
  for (int64_t i = 0; i < n; ++i) {                                                       \
    const uint32_t u = src[i];                                                            \
    const uint16_t rounded = static_cast<uint16_t>((u + (((u >> 16) & 1u) + 0x7FFFu)) >> 16); \
    const bool nan = (u & 0x7FFFFFFFu) > 0x7F800000u;                                     \
    dst[i] = nan ? uint16_t{0x7FC0} : rounded; /* a select, not a branch */               \
  }

inline void bf16_to_f32_bits(const uint16_t* src, uint32_t* dst, int64_t n) {
  STEERFAST_BF16_TO_F32_BODY
}
inline void f32_to_bf16_bits(const uint32_t* src, uint16_t* dst, int64_t n) {
  STEERFAST_F32_TO_BF16_BODY
}

#ifdef STEERFAST_X86
__attribute__((target("avx,f16c"))) inline void half_to_float_f16c(const uint16_t* in, float* out,
                                                                    int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i))));
  for (; i < n; ++i) out[i] = c10::detail::fp16_ieee_to_fp32_value(in[i]);
}

__attribute__((target("avx,f16c"))) inline void float_to_half_f16c(const float* in, uint16_t* out,
                                                                    int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(in + i), _MM_FROUND_TO_NEAREST_INT));
  for (; i < n; ++i) out[i] = c10::detail::fp16_ieee_from_fp32_value(in[i]);
}

__attribute__((target("avx2"))) inline void bf16_to_f32_bits_avx2(const uint16_t* src,
                                                                 uint32_t* dst, int64_t n) {
  STEERFAST_BF16_TO_F32_BODY
}
__attribute__((target("avx2"))) inline void f32_to_bf16_bits_avx2(const uint32_t* src,
                                                                 uint16_t* dst, int64_t n) {
  STEERFAST_F32_TO_BF16_BODY
}

inline bool has_avx2() {
  static const bool yes = __builtin_cpu_supports("avx2");
  return yes;
}

inline bool has_f16c() {
  static const bool yes = __builtin_cpu_supports("f16c") && __builtin_cpu_supports("avx");
  return yes;
}
#endif

inline void to_float(const c10::BFloat16* in, float* out, int64_t n) {
  const uint16_t* src = reinterpret_cast<const uint16_t*>(in);
  uint32_t* dst = reinterpret_cast<uint32_t*>(out);
#ifdef STEERFAST_X86
  if (has_avx2()) return bf16_to_f32_bits_avx2(src, dst, n);
#endif
  bf16_to_f32_bits(src, dst, n);
}

inline void from_float(const float* in, c10::BFloat16* out, int64_t n) {
  const uint32_t* src = reinterpret_cast<const uint32_t*>(in);
  uint16_t* dst = reinterpret_cast<uint16_t*>(out);
#ifdef STEERFAST_X86
  if (has_avx2()) return f32_to_bf16_bits_avx2(src, dst, n);
#endif
  f32_to_bf16_bits(src, dst, n);
}

inline void to_float(const c10::Half* in, float* out, int64_t n) {
  const uint16_t* src = reinterpret_cast<const uint16_t*>(in);
#ifdef STEERFAST_X86
  if (has_f16c()) return half_to_float_f16c(src, out, n);
#endif
  for (int64_t i = 0; i < n; ++i) out[i] = c10::detail::fp16_ieee_to_fp32_value(src[i]);
}

inline void from_float(const float* in, c10::Half* out, int64_t n) {
  uint16_t* dst = reinterpret_cast<uint16_t*>(out);
#ifdef STEERFAST_X86
  if (has_f16c()) return float_to_half_f16c(in, dst, n);
#endif
  for (int64_t i = 0; i < n; ++i) dst[i] = c10::detail::fp16_ieee_from_fp32_value(in[i]);
}

}  // namespace steerfast
