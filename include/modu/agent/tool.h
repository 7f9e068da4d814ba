// Tool descriptions and results shared by the built-in tools, MCP servers and the agent loop.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace modu::agent {

// What the model is told about one tool.
struct ToolSpec {
  std::string name, description;
  nlohmann::json input_schema = nlohmann::json::object();  // JSON Schema of the arguments
  std::string source;                                      // "builtin" or an MCP server name
};

// An image a tool gave back (an MCP "image" content item, decoded).
struct ToolImage {
  std::string mime;   // e.g. "image/png"
  std::string bytes;  // the file's bytes
};

// What one tool call gave back. Errors are results (is_error), never exceptions.
struct ToolResult {
  bool is_error = false;
  std::string text;
  nlohmann::json structured;  // null if none
  std::vector<ToolImage> images;  // images among the content (also described in `text`)
};

}  // namespace modu::agent
