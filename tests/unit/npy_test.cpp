#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "io/file.hpp"
#include "io/npy.hpp"
#include "op_test_util.hpp"

namespace kiln {
namespace {

using namespace std::string_literals;

// Bytes written by numpy 1.24 (np.save / numpy.lib.format.write_array), kept verbatim.
const std::string kF32_2x3 =
    "\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"s +
    std::string(58, ' ') + "\n" +
    "\x00\x00\x00\x00\x00\x00\x80?\x00\x00\x00@\x00\x00@@\x00\x00\x80@\x00\x00\xa0@"s;
const std::string kI64Scalar = "\x93NUMPY\x01\x00v\x00{'descr': '<i8', 'fortran_order': False, 'shape': (), }"s +
                               std::string(62, ' ') + "\n" + "\x07\x00\x00\x00\x00\x00\x00\x00"s;
const std::string kBool3 = "\x93NUMPY\x01\x00v\x00{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }"s +
                           std::string(60, ' ') + "\n" + "\x01\x00\x01"s;
const std::string kF16V2 = "\x93NUMPY\x02\x00t\x00\x00\x00{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }"s +
                           std::string(58, ' ') + "\n" + "\x00>\x00\xc0"s;
const std::string kBigEndianI32 =
    "\x93NUMPY\x01\x00v\x00{'descr': '>i4', 'fortran_order': False, 'shape': (2,), }"s + std::string(60, ' ') +
    "\n" + "\x00\x00\x00\x01\x00\x00\x00\x02"s;
const std::string kFortranU16 =
    "\x93NUMPY\x01\x00v\x00{'descr': '<u2', 'fortran_order': True, 'shape': (2, 2), }"s + std::string(59, ' ') +
    "\n" + "\x01\x00\x02\x00\x03\x00\x04\x00"s;

// A header-only .npy with the given dict text (v1.0), followed by `data`.
std::string make_npy(const std::string& dict, const std::string& data, int major = 1) {
  std::string h = dict + "\n";
  std::string out = "\x93NUMPY"s + static_cast<char>(major) + '\0';
  size_t n = h.size();
  out += static_cast<char>(n & 0xff);
  out += static_cast<char>((n >> 8) & 0xff);
  if (major >= 2) out += "\0\0"s;
  return out + h + data;
}

std::string temp_dir() {
  auto dir = std::filesystem::temp_directory_path() /
             ("kiln_npy_test_" + std::to_string(::getpid()) + "_" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

void expect_error(const Expected<Tensor>& r, const std::string& needle1, const std::string& needle2 = "") {
  ASSERT_FALSE(r.ok()) << "expected an error containing '" << needle1 << "'";
  const std::string& m = r.status().message();
  EXPECT_NE(m.find(needle1), std::string::npos) << m;
  if (!needle2.empty()) {
    EXPECT_NE(m.find(needle2), std::string::npos) << m;
  }
}

TEST(Npy, ReadsNumpyWrittenFiles) {
  auto f = parse_npy(kF32_2x3, "a.npy");
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(f->dtype(), DType::kFloat32);
  EXPECT_EQ(f->dims(), (Dims{2, 3}));
  for (int i = 0; i < 6; ++i) EXPECT_EQ(f->data<float>()[i], static_cast<float>(i));

  auto s = parse_npy(kI64Scalar, "s.npy");
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->dtype(), DType::kInt64);
  EXPECT_EQ(s->rank(), 0);
  EXPECT_EQ(s->data<int64_t>()[0], 7);

  auto b = parse_npy(kBool3, "b.npy");
  ASSERT_TRUE(b.ok()) << b.status().message();
  EXPECT_EQ(b->dtype(), DType::kBool);
  EXPECT_EQ(b->dims(), (Dims{3}));
  EXPECT_TRUE(b->data<bool>()[0]);
  EXPECT_FALSE(b->data<bool>()[1]);
  EXPECT_TRUE(b->data<bool>()[2]);

  auto h = parse_npy(kF16V2, "h.npy");
  ASSERT_TRUE(h.ok()) << h.status().message();
  EXPECT_EQ(h->dtype(), DType::kFloat16);
  EXPECT_EQ(static_cast<float>(h->data<Half>()[0]), 1.5f);
  EXPECT_EQ(static_cast<float>(h->data<Half>()[1]), -2.0f);
}

TEST(Npy, Version3AndBigEndianAndPython2Longs) {
  std::string v3 = kF16V2;
  v3[6] = 3;
  auto h = parse_npy(v3, "v3.npy");
  ASSERT_TRUE(h.ok()) << h.status().message();
  EXPECT_EQ(h->dims(), (Dims{2}));

  auto be = parse_npy(kBigEndianI32, "be.npy");
  ASSERT_TRUE(be.ok()) << be.status().message();
  EXPECT_EQ(be->dtype(), DType::kInt32);
  EXPECT_EQ(be->data<int32_t>()[0], 1);
  EXPECT_EQ(be->data<int32_t>()[1], 2);

  auto old = parse_npy(make_npy("{\"descr\": \"<u1\", \"fortran_order\": False, \"shape\": (2L, 1L)}", "\x05\x06"),
                       "old.npy");
  ASSERT_TRUE(old.ok()) << old.status().message();
  EXPECT_EQ(old->dims(), (Dims{2, 1}));
  EXPECT_EQ(old->data<uint8_t>()[1], 6);
}

TEST(Npy, RoundTripsEveryDtypeAndRank) {
  const DType dtypes[] = {DType::kFloat16, DType::kFloat32, DType::kFloat64, DType::kInt8,
                          DType::kInt16,   DType::kInt32,   DType::kInt64,   DType::kUInt8,
                          DType::kUInt16,  DType::kUInt32,  DType::kUInt64,  DType::kBool};
  const Dims shapes[] = {{}, {5}, {2, 3}, {2, 1, 3, 2}, {0, 4}};
  uint32_t seed = 1;
  for (DType dt : dtypes) {
    for (const Dims& dims : shapes) {
      // Unsigned types get non-negative values (a negative double cast to unsigned is undefined).
      double lo = is_integer(dt) && !is_signed_integer(dt) ? 0 : -50;
      Tensor t = test::random_tensor(dt, dims, seed++, lo, 50);
      // In memory (each save_npy fsyncs); FileIo tests cover the file path.
      auto bytes = encode_npy(t);
      ASSERT_TRUE(bytes.ok()) << dtype_name(dt);
      auto back = parse_npy(*bytes, "t.npy");
      ASSERT_TRUE(back.ok()) << back.status().message();
      EXPECT_EQ(back->dtype(), dt);
      EXPECT_EQ(back->dims(), dims);
      ASSERT_EQ(back->nbytes(), t.nbytes());
      EXPECT_EQ(std::memcmp(back->raw_data(), t.raw_data(), t.nbytes()), 0) << dtype_name(dt);
    }
  }
}

TEST(Npy, WritesWhatNumpyWrites) {
  // Same header text, padding and alignment as numpy's own file for the same array.
  Tensor t = Tensor::from_vector<float>({2, 3}, {0, 1, 2, 3, 4, 5});
  auto bytes = encode_npy(t);
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(*bytes, kF32_2x3);
  auto s = encode_npy(Tensor::scalar<int64_t>(7));
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(*s, kI64Scalar);
  Tensor b = Tensor::from_vector<bool>({3}, {true, false, true});
  EXPECT_EQ(*encode_npy(b), kBool3);
}

TEST(Npy, HugeHeaderUsesVersion2) {
  Tensor t(DType::kInt8, Dims(30000, 1));  // "1, " x 30000 does not fit a 16-bit header length
  t.data<int8_t>()[0] = -3;
  auto bytes = encode_npy(t);
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ((*bytes)[6], 2);
  auto back = parse_npy(*bytes, "big.npy");
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->rank(), 30000);
  EXPECT_EQ(back->data<int8_t>()[0], -3);
}

TEST(Npy, RejectsUnsupportedLayoutsAndDtypes) {
  expect_error(parse_npy(kFortranU16, "f.npy"), "'f.npy'", "Fortran");
  auto u = parse_npy(make_npy("{'descr': '<U5', 'fortran_order': False, 'shape': (1,), }", std::string(20, 'a')),
                     "str.npy");
  expect_error(u, "'str.npy'", "'<U5'");
  EXPECT_EQ(u.status().code(), StatusCode::kUnsupported);
  expect_error(parse_npy(make_npy("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", "12345678"), "o.npy"),
               "'o.npy'", "'|O'");
  expect_error(parse_npy(make_npy("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", "12345678"), "c.npy"),
               "'<c8'");
  expect_error(parse_npy(make_npy("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", "1234"),
                         "rec.npy"),
               "'rec.npy'", "structured");

  Tensor bf(DType::kBFloat16, {2});
  auto enc = encode_npy(bf);
  ASSERT_FALSE(enc.ok());
  EXPECT_NE(enc.status().message().find("bfloat16"), std::string::npos) << enc.status().message();
  Status st = save_npy("/tmp/never_written_kiln.npy", bf);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("/tmp/never_written_kiln.npy"), std::string::npos) << st.message();
  EXPECT_FALSE(std::filesystem::exists("/tmp/never_written_kiln.npy"));
}

TEST(Npy, CorruptFilesAreErrorsNamingTheFile) {
  expect_error(parse_npy("hello world, not numpy", "x.npy"), "'x.npy'", "not a .npy");
  expect_error(parse_npy("\x93NUMPY\x01"s, "short.npy"), "'short.npy'", "truncated");
  expect_error(parse_npy(kF32_2x3.substr(0, 40), "cut.npy"), "'cut.npy'", "truncated");
  expect_error(parse_npy(kF32_2x3.substr(0, kF32_2x3.size() - 3), "cutdata.npy"), "'cutdata.npy'", "truncated");
  expect_error(parse_npy(kF32_2x3 + "xx", "extra.npy"), "'extra.npy'", "expected 24");
  std::string v4 = kF32_2x3;
  v4[6] = 4;
  expect_error(parse_npy(v4, "v4.npy"), "'v4.npy'", "version 4.0");
  expect_error(parse_npy(make_npy("{'descr': '<f4', 'shape': (1,), }", "1234"), "nokey.npy"), "'nokey.npy'",
               "fortran_order");
  expect_error(parse_npy(make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1, x), }", "1234"),
                         "tuple.npy"),
               "'tuple.npy'", "malformed");
  expect_error(parse_npy(make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", ""), "neg.npy"),
               "negative");
  expect_error(parse_npy(make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), ", "1234"), "open.npy"),
               "'open.npy'", "malformed");
  expect_error(parse_npy(make_npy("{'descr': '<f4', 'fortran_order': 0, 'shape': (1,), }", "1234"), "fo.npy"),
               "malformed");
  expect_error(parse_npy(make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': "
                                  "(99999999999, 99999999999, 99999999999), }",
                                  ""),
                         "huge.npy"),
               "'huge.npy'", "too large");
  expect_error(load_npy("/nonexistent/dir/in.npy"), "'/nonexistent/dir/in.npy'");
  EXPECT_EQ(load_npy("/nonexistent/dir/in.npy").status().code(), StatusCode::kNotFound);
}

TEST(Npy, NonCanonicalBoolBytesReadAsTrue) {
  auto b = parse_npy(make_npy("{'descr': '|b1', 'fortran_order': False, 'shape': (2,), }", "\x00\x07"s), "b.npy");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(reinterpret_cast<const uint8_t*>(b->raw_data())[1], 1);
}

TEST(Npy, RandomlyCorruptedFilesNeverCrash) {
  // Byte flips and truncations anywhere: each parse returns a tensor that fits the bytes, or an error.
  std::mt19937 rng(5);
  for (const std::string& good : {kF32_2x3, kI64Scalar, kF16V2}) {
    for (int iter = 0; iter < 2000; ++iter) {
      std::string bytes = good;
      int flips = 1 + static_cast<int>(rng() % 3);
      for (int k = 0; k < flips; ++k) bytes[rng() % bytes.size()] = static_cast<char>(rng() & 0xff);
      if (rng() % 4 == 0) bytes.resize(rng() % bytes.size());
      auto r = parse_npy(bytes, "fuzz.npy");
      if (r.ok()) {
        EXPECT_LE(r->nbytes(), bytes.size());
      } else {
        EXPECT_NE(r.status().message().find("fuzz.npy"), std::string::npos) << r.status().message();
      }
    }
  }
}

TEST(FileIo, AtomicWriteReplacesAndNeverLeavesPartialFiles) {
  std::string dir = temp_dir();
  std::string path = dir + "/out.npy";
  ASSERT_TRUE(save_npy(path, Tensor::from_vector<float>({2}, {1, 2})).ok());
  ASSERT_TRUE(save_npy(path, Tensor::from_vector<float>({3}, {4, 5, 6})).ok());
  auto t = load_npy(path);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->dims(), (Dims{3}));

  // A failed save (unsupported dtype) leaves the good file untouched, and no temporary behind.
  ASSERT_FALSE(save_npy(path, Tensor(DType::kBFloat16, {1})).ok());
  EXPECT_EQ(load_npy(path)->dims(), (Dims{3}));
  int files = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++files;
  EXPECT_EQ(files, 1);

  Status st = write_file_atomic(dir + "/missing_sub/x.bin", "abc");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("missing_sub/x.bin"), std::string::npos) << st.message();

  auto r = read_file(dir);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("directory"), std::string::npos);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace kiln
