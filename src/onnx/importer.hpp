// The ONNX importer: the only part of kiln that links protobuf/libonnx.
//
//   KILN_ASSIGN_OR_RETURN(kiln::Model model, kiln::import_onnx_file("model.onnx"));
//
// Opset differences are normalized here (attribute-form vs input-form, legacy semantics), so each
// op in the IR has one form: the newest one kiln implements.
#pragma once

#include <string>

#include "ir/graph.hpp"

namespace kiln {

struct ImportOptions {
  bool infer_shapes = true;  // run shape inference after import
};

// Reads a model file (external-data files are resolved relative to its folder).
// Errors name the file: not ONNX / truncated, unsupported IR or opset version, a node input that
// no node, initializer or graph input defines, a cycle, a tensor with an unknown dtype.
Expected<Model> import_onnx_file(const std::string& path, const ImportOptions& options = {});
// Same from bytes in memory; `base_dir` resolves external data, `name` is used in errors.
Expected<Model> import_onnx_bytes(const std::string& bytes, const std::string& base_dir,
                                  const std::string& name, const ImportOptions& options = {});

// A serialized TensorProto file (the input_*.pb / output_*.pb of ONNX test data).
Expected<Tensor> load_tensor_pb(const std::string& path, std::string* name = nullptr);

}  // namespace kiln
