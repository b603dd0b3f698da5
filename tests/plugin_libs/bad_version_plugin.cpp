// A library that claims another plugin interface version: loading it must fail, naming the file.
#include "kiln/plugin.hpp"

extern "C" __attribute__((visibility("default"))) int kiln_plugin_interface_version() { return 999; }
extern "C" __attribute__((visibility("default"))) void kiln_register_plugins(kiln::PluginRegistry*, kiln::Status* st) {
  *st = kiln::Status(kiln::StatusCode::kInternal, "must not be called: the version check comes first");
}
