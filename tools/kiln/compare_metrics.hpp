// Error metrics of `kiln compare`: how far a tensor is from a reference tensor.
#pragma once

#include <cstdint>
#include <optional>

#include "ir/tensor.hpp"

namespace kiln::cli {

struct CompareMetrics {
  int64_t count = 0;       // elements compared
  double max_abs = 0;      // max |test - ref|
  double mean_abs = 0;     // mean |test - ref|
  double rel_l2 = 0;       // ||test - ref|| / ||ref|| (0 when both are zero, inf when only ref is)
  double cosine = 1;       // <test, ref> / (||test|| ||ref||) (1 when both are zero, 0 when one is)
  // Positions where only one value is NaN/Inf (left out of the sums; they make max_abs, mean_abs
  // and rel_l2 infinite).
  int64_t nonfinite = 0;
  // Fraction of rows (over the last axis) whose argmax agrees; only for float tensors of rank >= 2.
  std::optional<double> top1;
};

// Compares `test` with `ref`: same shape required (dtypes may differ: both are read as doubles).
Expected<CompareMetrics> compare_tensors(const Tensor& ref, const Tensor& test);

}  // namespace kiln::cli
