// Whole-file reads and atomic writes, with errors that name the file.
#pragma once

#include <string>
#include <string_view>

#include "kiln/status.hpp"

namespace kiln {

// Reads a whole file (binary). NotFound when it does not exist, IoError otherwise.
Expected<std::string> read_file(const std::string& path);

// Writes `bytes` to a temporary file next to `path`, flushes it to disk and renames it over
// `path`: readers see the old file or the complete new one, never a half-written file.
Status write_file_atomic(const std::string& path, std::string_view bytes);

}  // namespace kiln
