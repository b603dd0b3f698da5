// The process-wide plugin registry and the loading of plugin libraries (dlopen).
#include <dlfcn.h>

#include <algorithm>
#include <charconv>
#include <mutex>
#include <set>

#include "kiln/plugin.hpp"
#include "util/error.hpp"

namespace kiln {

namespace {

// "10" > "9": numeric versions compare as numbers, others as strings.
bool version_less(const std::string& a, const std::string& b) {
  long long x = 0, y = 0;
  auto ra = std::from_chars(a.data(), a.data() + a.size(), x);
  auto rb = std::from_chars(b.data(), b.data() + b.size(), y);
  bool na = ra.ec == std::errc() && ra.ptr == a.data() + a.size();
  bool nb = rb.ec == std::errc() && rb.ptr == b.data() + b.size();
  if (na && nb) return x < y;
  return a < b;
}

class Registry : public PluginRegistry {
 public:
  Status add(std::shared_ptr<PluginCreator> creator) override {
    if (!creator) return invalid_argument("a null plugin creator");
    std::string name = creator->name();
    if (name.empty()) return invalid_argument("a plugin creator has an empty name");
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& c : creators_)
      if (c->name() == name && c->version() == creator->version() &&
          c->plugin_namespace() == creator->plugin_namespace())
        return invalid_argument("plugin '{}' version {}{} is already registered", name, creator->version(),
                                creator->plugin_namespace().empty() ? "" : " in namespace '" + creator->plugin_namespace() + "'");
    creators_.push_back(std::move(creator));
    return Status::Ok();
  }

  const PluginCreator* find(const std::string& name, const std::string& version,
                            const std::string& ns) const override {
    std::lock_guard<std::mutex> lock(mu_);
    const PluginCreator* best = nullptr;
    bool best_exact_ns = false;
    for (const auto& c : creators_) {
      if (c->name() != name || (!version.empty() && c->version() != version)) continue;
      std::string cns = c->plugin_namespace();
      bool exact = !ns.empty() && cns == ns;
      if (!ns.empty() && !cns.empty() && !exact) continue;
      // An exact namespace beats a wildcard one; then the newest version wins.
      if (!best || (exact && !best_exact_ns) ||
          (exact == best_exact_ns && version_less(best->version(), c->version()))) {
        best = c.get();
        best_exact_ns = exact;
      }
    }
    return best;
  }

  std::vector<const PluginCreator*> creators() const override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<const PluginCreator*> out;
    for (const auto& c : creators_) out.push_back(c.get());
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::shared_ptr<PluginCreator>> creators_;
};

}  // namespace

PluginRegistry& plugin_registry() {
  static Registry registry;
  return registry;
}

Status load_plugin_library(const std::string& path) {
  static std::mutex mu;
  static std::set<void*> loaded;  // handles already registered (dlopen of a loaded file returns it again)
  std::lock_guard<std::mutex> lock(mu);
  if (path.empty()) return invalid_argument("--plugin: empty library path");
  // A bare file name would make dlopen search the system paths: "./" makes it relative to here,
  // which is what a user naming a file expects.
  std::string file = path.find('/') == std::string::npos ? "./" + path : path;
  // RTLD_NODELETE: creators' code must outlive every engine, so the library stays mapped.
  void* handle = dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (!handle) {
    const char* err = dlerror();
    return not_found("cannot load plugin library '{}': {}", path, err ? err : "unknown error");
  }
  if (loaded.count(handle)) return Status::Ok();
  using VersionFn = int (*)();
  using RegisterFn = void (*)(PluginRegistry*, Status*);
  auto version_fn = reinterpret_cast<VersionFn>(dlsym(handle, KILN_PLUGIN_VERSION_SYMBOL));
  auto register_fn = reinterpret_cast<RegisterFn>(dlsym(handle, KILN_PLUGIN_REGISTER_SYMBOL));
  if (!version_fn || !register_fn) {
    dlclose(handle);
    return invalid_argument("'{}' is not a kiln plugin library: it does not export {}() and {}() "
                            "(use KILN_PLUGIN_LIBRARY from kiln/plugin.hpp)",
                            path, KILN_PLUGIN_VERSION_SYMBOL, KILN_PLUGIN_REGISTER_SYMBOL);
  }
  int version = version_fn();
  if (version != kPluginInterfaceVersion) {
    dlclose(handle);
    return unsupported("plugin library '{}' was built for kiln plugin interface version {}, but this kiln has "
                       "version {}: rebuild the plugin against this kiln's include/kiln/plugin.hpp",
                       path, version, kPluginInterfaceVersion);
  }
  Status st;
  register_fn(&plugin_registry(), &st);
  if (!st.ok()) return st.add_context(fmt::format("while loading plugin library '{}'", path));
  loaded.insert(handle);
  return Status::Ok();
}

}  // namespace kiln
