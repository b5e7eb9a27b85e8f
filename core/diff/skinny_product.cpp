#include "core/diff/skinny_product.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <type_traits>

#include "core/base/error.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define MODELDIFF_SKINNY_AVX512 1
#include <immintrin.h>
#else
#define MODELDIFF_SKINNY_AVX512 0
#endif

namespace modeldiff::core {
namespace {

bool cpu_has_avx512f() {
#if MODELDIFF_SKINNY_AVX512
  return __builtin_cpu_supports("avx512f");
#else
  return false;
#endif
}

std::atomic<bool>& use_kernels() {
  static std::atomic<bool> use(cpu_has_avx512f());
  return use;
}

#if MODELDIFF_SKINNY_AVX512
// The thin side is handled in tiles of up to 48 columns (kv = 1..3 vectors of 16 floats, the
// last one masked), with R rows of M per step so that R * kv accumulators (24) stay in
// registers: each element of M is loaded once per tile and used kv times.
constexpr int kTile = 48;

#define MD_AVX512 __attribute__((target("avx512f")))

MD_AVX512 inline __m512 load(const float* p, int v, int kv, __mmask16 last) {
  return v == kv - 1 ? _mm512_maskz_loadu_ps(last, p + 16 * v) : _mm512_loadu_ps(p + 16 * v);
}

MD_AVX512 inline void store(float* p, int v, int kv, __mmask16 last, __m512 x) {
  if (v == kv - 1)
    _mm512_mask_storeu_ps(p + 16 * v, last, x);
  else
    _mm512_storeu_ps(p + 16 * v, x);
}

// out[r][0..w) (+)= sum_{j in [j0, j1)} m[r][j] x[j][0..w) for r < R; m, x, out point at the
// tile's first row and column; w = 16 (KV - 1) + popcount(last).
template <int KV, int R>
MD_AVX512 void forward_rows(const float* m, std::int64_t ldm, const float* x, std::int64_t ldx,
                            std::int64_t j0, std::int64_t j1, float* out, std::int64_t ldo,
                            __mmask16 last, bool first) {
  __m512 acc[R][KV];
#pragma GCC unroll 24
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 24
    for (int v = 0; v < KV; ++v) acc[r][v] = _mm512_setzero_ps();
  for (std::int64_t j = j0; j < j1; ++j) {
    __m512 xv[KV];
#pragma GCC unroll 24
    for (int v = 0; v < KV; ++v) xv[v] = load(x + j * ldx, v, KV, last);
#pragma GCC unroll 24
    for (int r = 0; r < R; ++r) {
      const __m512 a = _mm512_set1_ps(m[r * ldm + j]);
#pragma GCC unroll 24
      for (int v = 0; v < KV; ++v) acc[r][v] = _mm512_fmadd_ps(a, xv[v], acc[r][v]);
    }
  }
#pragma GCC unroll 24
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 24
    for (int v = 0; v < KV; ++v) {
      float* p = out + r * ldo;
      store(p, v, KV, last, first ? acc[r][v] : _mm512_add_ps(acc[r][v], load(p, v, KV, last)));
    }
}

// out[j][0..16 KV) += sum_{r < R} m[r][j] y[r][0..w) for j in [j0, j1): the R rows of y stay in
// registers while a stretch of out (in L1/L2) is updated. out is padded to whole vectors (its
// lanes past w receive zeros): masked stores, once per element of M, are slow on AMD's Zen.
template <int KV, int R>
MD_AVX512 void adjoint_rows(const float* m, std::int64_t ldm, const float* y, std::int64_t ldy,
                            std::int64_t j0, std::int64_t j1, float* out, std::int64_t ldo,
                            __mmask16 last) {
  __m512 yv[R][KV];
#pragma GCC unroll 24
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 24
    for (int v = 0; v < KV; ++v) yv[r][v] = load(y + r * ldy, v, KV, last);
  for (std::int64_t j = j0; j < j1; ++j) {
    float* p = out + j * ldo;
    __m512 z[KV];
#pragma GCC unroll 24
    for (int v = 0; v < KV; ++v) z[v] = _mm512_loadu_ps(p + 16 * v);
#pragma GCC unroll 24
    for (int r = 0; r < R; ++r) {
      const __m512 a = _mm512_set1_ps(m[r * ldm + j]);
#pragma GCC unroll 24
      for (int v = 0; v < KV; ++v) z[v] = _mm512_fmadd_ps(a, yv[r][v], z[v]);
    }
#pragma GCC unroll 24
    for (int v = 0; v < KV; ++v) _mm512_storeu_ps(p + 16 * v, z[v]);
  }
}

// Rows [i0, i1) of out = m x over columns [j0, j1) of m, for one tile of kv vectors.
template <int KV>
MD_AVX512 void forward_tile(const float* m, std::int64_t ldm, const float* x, std::int64_t ldx,
                            std::int64_t i0, std::int64_t i1, std::int64_t j0, std::int64_t j1,
                            float* out, std::int64_t ldo, __mmask16 last, bool first) {
  constexpr int R = 24 / KV;
  std::int64_t i = i0;
  for (; i + R <= i1; i += R)
    forward_rows<KV, R>(m + i * ldm, ldm, x, ldx, j0, j1, out + i * ldo, ldo, last, first);
  for (; i < i1; ++i)
    forward_rows<KV, 1>(m + i * ldm, ldm, x, ldx, j0, j1, out + i * ldo, ldo, last, first);
}

template <int KV>
MD_AVX512 void adjoint_tile(const float* m, std::int64_t ldm, const float* y, std::int64_t ldy,
                            std::int64_t rows, std::int64_t j0, std::int64_t j1, float* out,
                            std::int64_t ldo, __mmask16 last) {
  constexpr int R = 24 / KV;
  std::int64_t i = 0;
  for (; i + R <= rows; i += R)
    adjoint_rows<KV, R>(m + i * ldm, ldm, y + i * ldy, ldy, j0, j1, out, ldo, last);
  for (; i < rows; ++i)
    adjoint_rows<KV, 1>(m + i * ldm, ldm, y + i * ldy, ldy, j0, j1, out, ldo, last);
}

__mmask16 last_mask(std::int64_t width) {
  const int rem = static_cast<int>(width % 16);
  return rem == 0 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << rem) - 1u);
}

// Calls f(kv, c0, last) for each tile of the k columns of the thin side: first column c0, kv
// vectors (std::integral_constant 1, 2 or 3), the last vector's lanes in `last`.
template <typename F>
void for_each_tile(std::int64_t k, F&& f) {
  for (std::int64_t c0 = 0; c0 < k; c0 += kTile) {
    const std::int64_t w = std::min<std::int64_t>(kTile, k - c0);
    const __mmask16 last = last_mask(w);
    if (w > 32)
      f(std::integral_constant<int, 3>{}, c0, last);
    else if (w > 16)
      f(std::integral_constant<int, 2>{}, c0, last);
    else
      f(std::integral_constant<int, 1>{}, c0, last);
  }
}

// Columns of m per step: the tile of x (forward) or of out (adjoint) for this many rows stays
// in the L2 cache (1 MB per core on the machines we measure, 256 KB on older ones).
constexpr std::int64_t kForwardColumns = 1024;
constexpr std::int64_t kAdjointColumns = 512;
// Rows of m per task of the forward product (tasks are scheduled dynamically, so a core busy
// with something else, e.g. hashing the inputs, slows the product down by its share only).
constexpr std::int64_t kForwardRows = 48;

void forward_avx512(ConstRowMapF m, const RowMatrixF& x, RowMatrixF& out) {
  const std::int64_t t = m.rows(), n = m.cols(), k = x.cols();
  const std::int64_t tasks = (t + kForwardRows - 1) / kForwardRows;
#pragma omp parallel for schedule(dynamic)
  for (std::int64_t task = 0; task < tasks; ++task) {
    const std::int64_t i0 = task * kForwardRows, i1 = std::min(t, i0 + kForwardRows);
    for (std::int64_t j0 = 0; j0 < n; j0 += kForwardColumns) {
      const std::int64_t j1 = std::min(n, j0 + kForwardColumns);
      for_each_tile(k, [&](auto kv, std::int64_t c0, __mmask16 last) {
        forward_tile<decltype(kv)::value>(m.data(), n, x.data() + c0, k, i0, i1, j0, j1,
                                          out.data() + c0, k, last, j0 == 0);
      });
    }
  }
}

void adjoint_avx512(ConstRowMapF m, const RowMatrixF& y, RowMatrixF& out, bool accumulate) {
  const std::int64_t t = m.rows(), n = m.cols(), k = y.cols();
  // The kernels write whole vectors: into `out` itself when k is a multiple of 16, else into a
  // padded copy (N x 16 ceil(k / 16), a few MB) copied back at the end.
  const std::int64_t padded = (k + 15) / 16 * 16;
  RowMatrixF buffer;
  RowMatrixF& target = padded == k ? out : buffer;
  if (padded != k) {
    buffer.resize(n, padded);
    if (accumulate) {
      buffer.leftCols(k) = out;
      buffer.rightCols(padded - k).setZero();
    }
  }
  const std::int64_t tasks = (n + kAdjointColumns - 1) / kAdjointColumns;
#pragma omp parallel for schedule(dynamic)
  for (std::int64_t task = 0; task < tasks; ++task) {
    const std::int64_t j0 = task * kAdjointColumns, j1 = std::min(n, j0 + kAdjointColumns);
    if (!accumulate) target.middleRows(j0, j1 - j0).setZero();
    for_each_tile(k, [&](auto kv, std::int64_t c0, __mmask16 last) {
      adjoint_tile<decltype(kv)::value>(m.data(), n, y.data() + c0, k, t, j0, j1,
                                        target.data() + c0, padded, last);
    });
  }
  if (padded != k) out = buffer.leftCols(k);
}

MD_AVX512 inline double horizontal_sum(__m512d v) {
  alignas(64) double lanes[8];
  _mm512_store_pd(lanes, v);
  return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) +
         ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
}

MD_AVX512 void row_products_avx512(const float* a, const float* b, std::int64_t n, double& aa,
                                   double& bb, double& ab) {
  const __m512d zero = _mm512_setzero_pd();
  __m512d saa[2] = {zero, zero}, sbb[2] = {zero, zero}, sab[2] = {zero, zero};
  std::int64_t j = 0;
  for (; j + 16 <= n; j += 16)
    for (int h = 0; h < 2; ++h) {
      // The masked forms: GCC 12 warns that the plain ones read an uninitialised register.
      const __m512d x = _mm512_mask_cvtps_pd(zero, 0xFF, _mm256_loadu_ps(a + j + 8 * h));
      const __m512d y = _mm512_mask_cvtps_pd(zero, 0xFF, _mm256_loadu_ps(b + j + 8 * h));
      saa[h] = _mm512_fmadd_pd(x, x, saa[h]);
      sbb[h] = _mm512_fmadd_pd(y, y, sbb[h]);
      sab[h] = _mm512_fmadd_pd(x, y, sab[h]);
    }
  aa = horizontal_sum(_mm512_add_pd(saa[0], saa[1]));
  bb = horizontal_sum(_mm512_add_pd(sbb[0], sbb[1]));
  ab = horizontal_sum(_mm512_add_pd(sab[0], sab[1]));
  for (; j < n; ++j) {
    const double x = a[j], y = b[j];
    aa += x * x;
    bb += y * y;
    ab += x * y;
  }
}
#endif

}  // namespace

void row_products(const float* a, const float* b, std::int64_t n, double& aa, double& bb,
                  double& ab) {
#if MODELDIFF_SKINNY_AVX512
  if (use_kernels()) {
    row_products_avx512(a, b, n, aa, bb, ab);
    return;
  }
#endif
  aa = bb = ab = 0;
  for (std::int64_t j = 0; j < n; ++j) {
    const double x = a[j], y = b[j];
    aa += x * x;
    bb += y * y;
    ab += x * y;
  }
}

void skinny_multiply(ConstRowMapF m, const RowMatrixF& x, RowMatrixF& out) {
  MD_ASSERT(x.rows() == m.cols());
  out.resize(m.rows(), x.cols());
#if MODELDIFF_SKINNY_AVX512
  if (use_kernels()) {
    forward_avx512(m, x, out);
    return;
  }
#endif
  out.noalias() = m * x;
}

void skinny_multiply_transposed(ConstRowMapF m, const RowMatrixF& y, RowMatrixF& out,
                                bool accumulate) {
  MD_ASSERT(y.rows() == m.rows());
  if (accumulate)
    MD_ASSERT(out.rows() == m.cols() && out.cols() == y.cols());
  else
    out.resize(m.cols(), y.cols());
#if MODELDIFF_SKINNY_AVX512
  if (use_kernels()) {
    adjoint_avx512(m, y, out, accumulate);
    return;
  }
#endif
  if (accumulate)
    out.noalias() += m.transpose() * y;
  else
    out.noalias() = m.transpose() * y;
}

bool skinny_kernels_available() {
  return cpu_has_avx512f();
}

bool set_skinny_kernels(bool enabled) {
  return use_kernels().exchange(enabled && cpu_has_avx512f());
}

}  // namespace modeldiff::core
