// The ONNX importer: the only part of kiln that links protobuf/libonnx.
//
//   KILN_ASSIGN_OR_RETURN(kiln::Model model, kiln::import_onnx_file("model.onnx"));
//
// What an imported graph holds:
// - Every node in its opset-21 form, whatever opset the model imports (1 to 21): attributes that
//   became inputs are constant inputs, Upsample is Resize, Scatter is ScatterElements, Softmax-family
//   ops before 13 are rewritten to their exact 2-D-coercion equivalent, legacy (pre-7) broadcasting
//   is made explicit, ... (src/onnx/normalize_*.cpp). `Node::opset` keeps the model's opset for
//   messages; nodes added by a rewrite are named "<original node>/<op>_<n>".
// - Initializers and Constant nodes as constant Values; graph inputs that are also initializers
//   are constants, not runtime inputs. External data is read relative to the model's folder.
// - Declared types (inputs, outputs, value_info) with symbolic dims ("batch") or unknown ones,
//   then shape inference (ImportOptions::infer_shapes). Ops without a kiln schema import untyped;
//   backends report them, all at once, when a model is prepared.
// - Subgraphs (If/Loop/Scan) as GraphPtr attributes whose `parent` is the enclosing graph; they read
//   enclosing values directly. Model-local functions are inlined.
// - Unnamed nodes named "<op>_<index>"; absent optional inputs as null; nodes topologically sorted.
// Errors name the file and, where there is one, the node and value. Unsupported (kUnsupported, a
// "skip" for the conformance runner): map values (sequences and optionals of tensors import with
// their ValueKind), string tensors that a node
// reads, sparse tensors, complex/float8/int4 element types, training-mode BatchNormalization, Scan-8
// with sequence_lens.
#pragma once

#include <string>

#include "ir/graph.hpp"
#include "ir/sequence.hpp"

namespace kiln {

struct ImportOptions {
  bool infer_shapes = true;  // run shape inference after import
};

// Reads a model file (external-data files are resolved relative to its folder).
// Errors name the file: not ONNX / truncated, unsupported IR or opset version, a node input that
// no node, initializer or graph input defines, a cycle, a tensor with an unknown dtype.
Expected<Model> import_onnx_file(const std::string& path, const ImportOptions& options = {});
// Same from bytes in memory; `base_dir` resolves external data ("" refuses it), `name` is used in
// errors.
Expected<Model> import_onnx_bytes(const std::string& bytes, const std::string& base_dir,
                                  const std::string& name, const ImportOptions& options = {});

// A serialized TensorProto file (the input_*.pb / output_*.pb of ONNX test data); `name` receives
// the tensor's name. SequenceProto/OptionalProto files are an Unsupported error. Note: the ONNX
// 1.12 test data stores bfloat16 tensors as UINT16 (numpy has no bfloat16): same bits.
Expected<Tensor> load_tensor_pb(const std::string& path, std::string* name = nullptr);
// The same for a value of type `declared`: a TensorProto for a tensor, a SequenceProto for a
// sequence, an OptionalProto for an optional (the two cannot be told apart by their bytes). An
// empty sequence takes the declared element dtype.
Expected<RuntimeValue> load_value_pb(const std::string& path, const TensorType& declared);

}  // namespace kiln
