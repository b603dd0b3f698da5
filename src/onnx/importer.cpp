#include "onnx/importer.hpp"
