// Model-local functions (ModelProto.functions, IR version 8+): calls are replaced by the
// function bodies before import, so the IR holds only ONNX (or backend) ops. Internal to the
// importer.
#pragma once

#include <onnx/onnx_pb.h>

#include "kiln/status.hpp"

namespace kiln::onnx_import {

// Inlines every call of a function of `model.functions()` in the main graph and its subgraphs
// (nested calls too). Body values and nodes are renamed "<call node>/<name>"; attributes that
// refer to the call's attributes (ref_attr_name) take the call's value, else the function's
// default. Fails naming the call node on arity mismatch or recursion.
Status inline_functions(onnx::ModelProto& model);

}  // namespace kiln::onnx_import
