#include "ir/graph.hpp"

#include <algorithm>
#include <deque>
#include <functional>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "util/error.hpp"

namespace kiln {

std::string TensorType::to_string() const {
  std::string t = std::string(dtype_name(dtype)) + shape.to_string();
  switch (kind) {
    case ValueKind::kTensor: return t;
    case ValueKind::kSequence: return "seq(" + t + ")";
    case ValueKind::kOptionalTensor: return "optional(" + t + ")";
    case ValueKind::kOptionalSequence: return "optional(seq(" + t + "))";
  }
  return t;
}

std::string Node::describe() const {
  std::string op = domain.empty() ? op_type : domain + "." + op_type;
  return fmt::format("node '{}' ({}, opset {})", name, op, opset);
}

std::vector<const Graph*> Node::subgraphs() const {
  std::vector<const Graph*> out;
  for (const auto& [k, v] : attrs.all()) {
    if (const auto* g = std::get_if<GraphPtr>(&v)) out.push_back(g->get());
    if (const auto* gs = std::get_if<std::vector<GraphPtr>>(&v))
      for (const auto& g : *gs) out.push_back(g.get());
  }
  return out;
}

Value* Graph::add_value(const std::string& name, TensorType type) {
  auto v = std::make_unique<Value>();
  v->name = name;
  v->type = std::move(type);
  v->owner = this;
  Value* raw = v.get();
  values_.push_back(std::move(v));
  if (!name.empty()) by_name_[name] = raw;
  return raw;
}

Value* Graph::add_constant(const std::string& name, Tensor t) {
  TensorType type{t.dtype(), Shape::from_dims(t.dims())};
  Value* v = add_value(name, type);
  v->constant = std::move(t);
  return v;
}

Node* Graph::add_node(const std::string& op_type, std::vector<Value*> inputs,
                      std::vector<Value*> outputs, const std::string& name,
                      const std::string& domain, int opset) {
  auto n = std::make_unique<Node>();
  n->op_type = op_type;
  n->inputs = std::move(inputs);
  n->outputs = std::move(outputs);
  n->name = name;
  n->domain = domain;
  n->opset = opset;
  n->owner = this;
  for (Value* o : n->outputs)
    if (o) o->producer = n.get();
  nodes_.push_back(std::move(n));
  return nodes_.back().get();
}

void Graph::remove_node(Node* n) {
  for (Value* o : n->outputs)
    if (o && o->producer == n) o->producer = nullptr;
  nodes_.erase(std::remove_if(nodes_.begin(), nodes_.end(),
                              [n](const std::unique_ptr<Node>& p) { return p.get() == n; }),
               nodes_.end());
}

size_t Graph::remove_unused_values() {
  std::set<const Value*> used(inputs.begin(), inputs.end());
  used.insert(outputs.begin(), outputs.end());
  std::function<void(const Graph&)> visit = [&](const Graph& g) {
    for (const auto& n : g.nodes()) {
      used.insert(n->inputs.begin(), n->inputs.end());
      used.insert(n->outputs.begin(), n->outputs.end());
      for (const Graph* sg : n->subgraphs()) visit(*sg);
    }
  };
  visit(*this);
  size_t before = values_.size();
  for (auto it = by_name_.begin(); it != by_name_.end();)
    it = used.count(it->second) ? std::next(it) : by_name_.erase(it);
  values_.erase(std::remove_if(values_.begin(), values_.end(),
                               [&](const std::unique_ptr<Value>& v) { return !used.count(v.get()); }),
                values_.end());
  return before - values_.size();
}

std::string Graph::unique_name(const std::string& base) const {
  if (!find_value(base)) return base;
  for (int i = 1;; ++i) {
    std::string name = base + "_" + std::to_string(i);
    if (!find_value(name)) return name;
  }
}

Value* Graph::find_value(const std::string& name) const {
  for (const Graph* g = this; g; g = g->parent) {
    auto it = g->by_name_.find(name);
    if (it != g->by_name_.end()) return it->second;
  }
  return nullptr;
}

namespace {
// Values a node reads: its inputs plus the outer-scope values its subgraphs use.
void collect_reads(const Node& n, std::vector<Value*>& out) {
  for (Value* v : n.inputs)
    if (v) out.push_back(v);
  for (const Graph* g : n.subgraphs())
    for (Value* v : g->outer_scope_values()) out.push_back(v);
}
}  // namespace

std::vector<Value*> Graph::outer_scope_values() const {
  std::vector<Value*> out;
  std::set<Value*> seen;
  std::function<void(const Graph&)> visit = [&](const Graph& g) {
    for (const auto& n : g.nodes()) {
      for (Value* v : n->inputs) {
        if (!v || seen.count(v)) continue;
        // Defined by this graph or one nested in it? Walk v's owner chain up to `this`.
        bool inside = false;
        for (const Graph* o = v->owner; o; o = o->parent)
          if (o == this) { inside = true; break; }
        if (!inside) { seen.insert(v); out.push_back(v); }
      }
      for (const Graph* sg : n->subgraphs()) visit(*sg);
    }
  };
  visit(*this);
  return out;
}

Status Graph::topological_sort() {
  std::unordered_map<const Node*, size_t> pending;
  std::unordered_map<const Node*, std::vector<Node*>> dependents;
  std::unordered_set<const Node*> mine;
  for (const auto& n : nodes_) mine.insert(n.get());
  std::deque<Node*> ready;
  for (const auto& n : nodes_) {
    std::vector<Value*> reads;
    collect_reads(*n, reads);
    std::set<const Node*> deps;
    for (Value* v : reads) {
      if (v->producer && mine.count(v->producer) && v->producer != n.get()) deps.insert(v->producer);
      if (v->producer == n.get())
        return invalid_model("{} reads its own output '{}' (a cycle)", n->describe(), v->name);
    }
    pending[n.get()] = deps.size();
    for (const Node* d : deps) dependents[d].push_back(n.get());
    if (deps.empty()) ready.push_back(n.get());
  }
  std::vector<Node*> order;
  while (!ready.empty()) {
    Node* n = ready.front();
    ready.pop_front();
    order.push_back(n);
    for (Node* d : dependents[n])
      if (--pending[d] == 0) ready.push_back(d);
  }
  if (order.size() != nodes_.size()) {
    std::vector<std::string> stuck;
    for (const auto& n : nodes_)
      if (pending[n.get()] != 0) stuck.push_back("'" + n->name + "' (" + n->op_type + ")");
    if (stuck.size() > 8) {
      stuck.resize(8);
      stuck.push_back("...");
    }
    return invalid_model("graph '{}' has a cycle through nodes {}", name, fmt::join(stuck, ", "));
  }
  std::unordered_map<const Node*, size_t> pos;
  for (size_t i = 0; i < order.size(); ++i) pos[order[i]] = i;
  std::sort(nodes_.begin(), nodes_.end(), [&](const auto& a, const auto& b) {
    return pos[a.get()] < pos[b.get()];
  });
  return Status::Ok();
}

std::vector<Node*> Graph::consumers(const Value* v) const {
  std::vector<Node*> out;
  for (const auto& n : nodes_) {
    std::vector<Value*> reads;
    collect_reads(*n, reads);
    if (std::find(reads.begin(), reads.end(), v) != reads.end()) out.push_back(n.get());
  }
  return out;
}

}  // namespace kiln
