#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "core/base/error.h"
#include "core/base/ndarray.h"
#include "core/base/statistics.h"

using namespace modeldiff::core;

TEST(InputError, MessageNamesFileKeyExpectedAndFound) {
  InputError e =
      InputError("a.npy", "not a 2-D matrix").key("weight").expected("2 dims").found("3");
  EXPECT_STREQ(e.what(), "a.npy [weight]: not a 2-D matrix (expected 2 dims, found 3)");
  EXPECT_EQ(InputError("", "bad value").what(), std::string("bad value"));
}

TEST(Half, RoundTripsEveryFiniteHalf) {
  for (std::uint32_t h = 0; h < 0x10000u; ++h) {
    const auto bits = static_cast<std::uint16_t>(h);
    const float f = half_to_float(bits);
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(half_to_float(float_to_half(f))));
      continue;
    }
    EXPECT_EQ(float_to_half(f), bits) << "half 0x" << std::hex << h;
  }
}

TEST(Half, KnownValues) {
  EXPECT_EQ(half_to_float(0x3c00), 1.0f);
  EXPECT_EQ(half_to_float(0xc000), -2.0f);
  EXPECT_EQ(half_to_float(0x7bff), 65504.0f);
  EXPECT_EQ(half_to_float(0x0001), std::ldexp(1.0f, -24));
  EXPECT_TRUE(std::isinf(half_to_float(0x7c00)));
  EXPECT_EQ(float_to_half(1e6f), 0x7c00);                          // overflow saturates to +inf
  EXPECT_EQ(float_to_half(1.0f + std::ldexp(1.0f, -11)), 0x3c00);  // tie rounds to even
}

TEST(NdArray, ConvertsToFloat32AndTransposes) {
  NdArray a = NdArray::allocate(DType::kFloat64, {2, 3});
  double* d = a.mutable_data_as<double>();
  for (int i = 0; i < 6; ++i) d[i] = i * 0.5;
  NdArray f = a.to_float32();
  ASSERT_EQ(f.dtype(), DType::kFloat32);
  EXPECT_EQ(f.data_as<float>()[5], 2.5f);
  NdArray t = f.transposed2d();
  ASSERT_EQ(t.shape(), (std::vector<std::int64_t>{3, 2}));
  EXPECT_EQ(t.data_as<float>()[1], 1.5f);  // t[0][1] = f[1][0]
  EXPECT_EQ(t.data_as<float>()[4], 1.0f);  // t[2][0] = f[0][2]
}

TEST(NdArray, CheckedNumelDetectsOverflow) {
  EXPECT_EQ(checked_numel({3, 4}), 12);
  EXPECT_EQ(checked_numel({}), 1);
  EXPECT_EQ(checked_numel({-1}), -1);
  EXPECT_EQ(checked_numel({std::numeric_limits<std::int64_t>::max(), 2}), -1);
}

TEST(Statistics, MeanOfValuesAndNaNForNone) {
  EXPECT_DOUBLE_EQ(mean({1.0, 2.0, 3.5}), 6.5 / 3);
  EXPECT_DOUBLE_EQ(mean({-0.25}), -0.25);
  EXPECT_TRUE(std::isnan(mean({})));  // not measured, never 0
}
