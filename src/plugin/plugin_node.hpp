// How IR nodes use custom-op plugins (include/kiln/plugin.hpp): which nodes resolve to a plugin,
// the plugin instance bound to a node, and its inference and CPU execution in kiln's types.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "ir/graph.hpp"
#include "kiln/plugin.hpp"

namespace kiln {

// The plugin a node runs as (Node::plugin): the creator's identity and the node's instance.
struct PluginBinding {
  std::string name;
  std::string version;
  std::string plugin_namespace;
  std::shared_ptr<const Plugin> plugin;
  // "plugin 'HSwish' (version 1)": how errors name it.
  std::string describe() const;
};

// A domain other than the ONNX ones ("", "ai.onnx", "ai.onnx.*") and kiln's own ("kiln").
bool is_custom_domain(const std::string& domain);

// The creator a node resolves to, by the rules of plugin.hpp: (a) a custom domain with a plugin of
// the op's name, (b) op "Plugin" with attribute `name`, (c) an op kiln lacks with a plugin of that
// name. Null when none applies.
const PluginCreator* find_plugin_creator(const Node& n);
// The plugin name a node asks for (rule b: its `name` attribute; else its op type), or "" when the
// node is not a plugin candidate (a default-domain op kiln has).
std::string wanted_plugin_name(const Node& n);

// Creates the node's plugin from its attributes when it resolves to one and has none yet.
Status bind_plugin(Node& n);
// bind_plugin on every node of the graph and its subgraphs.
Status bind_plugins(Graph& g);

// Inference through the node's plugin: `inputs` may hold symbolic dims; outputs keep them.
Status plugin_infer(const Node& n, const std::vector<TensorType>& inputs, std::vector<TensorType>& outputs);
bool plugin_supports(const Node& n, PluginDevice device);
// Runs the node's plugin on the CPU (inputs null for absent optional inputs).
Expected<std::vector<Tensor>> run_plugin_on_cpu(const Node& n, const std::vector<const Tensor*>& inputs);

PluginDataType to_plugin_dtype(DType t);
DType from_plugin_dtype(PluginDataType t);
// The node's static input types in the plugin's terms (the builder has made shapes static).
std::vector<PluginTensorDesc> plugin_input_descs(const Node& n);

// "a custom op needs its plugin: pass --plugin lib.so (kiln::load_plugin_library)".
const char* plugin_hint();

}  // namespace kiln
