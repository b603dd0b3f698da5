# Every third-party dependency comes from the system (Debian packages); nothing is vendored.
find_package(Protobuf REQUIRED)
find_package(ONNX REQUIRED)
find_package(fmt REQUIRED)
find_package(nlohmann_json REQUIRED)
find_package(CLI11 QUIET)
if(NOT CLI11_FOUND)
  find_path(CLI11_INCLUDE_DIR CLI/CLI.hpp REQUIRED)
  add_library(CLI11::CLI11 INTERFACE IMPORTED)
  target_include_directories(CLI11::CLI11 INTERFACE ${CLI11_INCLUDE_DIR})
endif()
find_package(Threads REQUIRED)
find_package(ZLIB REQUIRED)
find_package(FlatBuffers REQUIRED)
# Calibration images (--calib-data with --calib-preprocess): libpng and libjpeg.
find_package(PNG REQUIRED)
find_package(JPEG REQUIRED)

# CPU GEMM: OpenBLAS (cblas interface).
find_path(CBLAS_INCLUDE_DIR cblas.h PATH_SUFFIXES openblas REQUIRED)
find_library(OPENBLAS_LIBRARY NAMES openblas REQUIRED)
add_library(kiln_blas INTERFACE)
target_include_directories(kiln_blas INTERFACE ${CBLAS_INCLUDE_DIR})
target_link_libraries(kiln_blas INTERFACE ${OPENBLAS_LIBRARY})

# CUDA is optional: a machine without it still builds everything else.
set(KILN_HAVE_CUDA OFF)
if(KILN_WITH_CUDA)
  if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    # CI and development build one architecture (the benchmark GPU, Hopper); release builds pass a
    # list, e.g. -DCMAKE_CUDA_ARCHITECTURES="80;86;89;90a". Set before enable_language so nvcc's own
    # default (sm_75) never applies.
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES 90a)
    endif()
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
    set(KILN_HAVE_CUDA ON)
    message(STATUS "kiln: CUDA backend enabled (${CMAKE_CUDA_COMPILER}, archs ${CMAKE_CUDA_ARCHITECTURES})")
  else()
    message(STATUS "kiln: no CUDA toolkit found, building the CPU backend only")
  endif()
endif()
