// The fixed 64-byte header at the start of a plan file.
#pragma once

#include <cstdint>

namespace kiln::plan_detail {

inline constexpr char kMagic[8] = {'K', 'I', 'L', 'N', 'P', 'L', 'A', 'N'};
inline constexpr uint64_t kWeightsAlignment = 4096;  // page: weights can be used from an mmap
inline constexpr uint64_t kTensorAlignment = 256;    // each tensor in the weights section

struct Header {
  char magic[8];
  uint32_t format_version;
  uint32_t header_size;
  uint64_t flatbuffer_offset;
  uint64_t flatbuffer_size;
  uint64_t weights_offset;
  uint64_t weights_size;
  uint32_t crc32;  // zlib crc32 of every byte after the header
  uint32_t reserved[3];
};
static_assert(sizeof(Header) == 64);

inline uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

}  // namespace kiln::plan_detail
