// Opset normalization: rewrites every node of an imported graph into its newest (opset 21) form,
// so kernels and shape inference implement one form per op (internal to the importer).
//
// Each rewrite is a function of one node; it may replace the node by several (new nodes keep the
// original node's name as a prefix, so errors still point at it). `node.opset` keeps the model's
// opset for messages.
#pragma once

#include "ir/graph.hpp"

namespace kiln::onnx_import {

// Normalizes `g` and its subgraphs. Fails naming the node when a legacy form has no opset-21
// equivalent (e.g. BatchNormalization in training mode).
Status normalize_opsets(Graph& g);

}  // namespace kiln::onnx_import
