// Anthropic Messages (POST /v1/messages) and OpenAI Responses (POST /v1/responses) on top of the chat engine:
// request bodies become a ChatRequest, replies become each API's response objects and SSE event streams.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "modu/server/api.h"
#include "modu/toolcall/toolcall.h"

namespace modu::server {

// Identity of one reply. `id` is the API's object id: "msg_..." (Messages) or "resp_..." (Responses);
// the Responses item ids derive from it ("rs_", "msg_", "fc_" + the part after "resp_" + "_" + output index).
struct CompatMeta {
  std::string id;
  std::string model;
  int64_t created = 0;  // Unix seconds (Responses created_at)
};

// How generation ended. Tool use is implied by a non-empty reply.calls (it wins over both).
struct CompatFinish {
  bool length = false;        // the token limit cut the reply
  std::string stop_sequence;  // the stop string that ended it ("" : end of turn, or unknown)
};

// Token counts as the engine reports them: input_tokens includes the cached ones.
struct CompatUsage {
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;
  int64_t cached_tokens = 0;  // prompt tokens served from the prefix cache
};

// "event: NAME\ndata: JSON\n\n"
std::string sse_event(std::string_view name, const nlohmann::json& data);

// The assistant turn of a reply in OpenAI chat shape as ChatRequest.messages holds it: content a string,
// "reasoning_content" when there is reasoning, "tool_calls" with arguments as a JSON object (kept as
// text when they do not parse as one).
nlohmann::ordered_json reply_to_chat_message(const toolcall::Reply& reply);

// ---------------------------------------------------------------------------------------------------------
// Anthropic Messages API

// Validates and converts a Messages request. Never throws; errors carry status 400 and name the parameter
// in both `message` and `param` (send them with anthropic_error_json).
std::optional<ApiError> parse_messages_request(std::string_view body, const ApiLimits& limits, ChatRequest* out);

// "invalid_request_error", "authentication_error", ... for an HTTP status.
const char* anthropic_error_type(int status);
// {"type":"error","error":{"type": <by status>,"message"}}
nlohmann::json anthropic_error_json(const ApiError& e);

// The non-streaming Message object. Usage follows Anthropic's convention: input_tokens excludes the cached
// tokens, which are reported as cache_read_input_tokens.
nlohmann::json messages_response_json(const CompatMeta& meta, const toolcall::Reply& reply,
                                      const CompatFinish& finish, const CompatUsage& usage);

// Streaming: message_start, ping, content blocks (thinking, text, tool_use; a new block whenever the kind
// changes), message_delta, message_stop. Each call returns the SSE text to send (possibly empty).
class MessagesStream {
 public:
  explicit MessagesStream(CompatMeta meta) : meta_(std::move(meta)) {}
  std::string start(int64_t input_tokens, int64_t cached_tokens = 0);
  // The first CallDelta of a call must carry its id and name (an empty id gets "toolu_<suffix>_<index>").
  std::string push(const toolcall::Delta& d);
  // `provenance` (when not null) goes into the final message_stop event.
  std::string finish(const CompatFinish& finish, const CompatUsage& usage, const nlohmann::json& provenance = nullptr);
  std::string error(const ApiError& e);  // an "error" event; nothing may follow it
  const toolcall::Reply& reply() const { return reply_; }  // everything pushed so far

 private:
  enum class Block { kNone, kThinking, kText, kToolUse };
  std::string open(Block kind, int call);
  std::string close();
  CompatMeta meta_;
  toolcall::Reply reply_;
  std::vector<int> call_pos_;  // CallDelta.index -> position in reply_.calls (-1: not seen)
  Block block_ = Block::kNone;
  int block_call_ = -1;        // reply_.calls position of the open tool_use block
  int index_ = -1;             // content block index of the open (or last) block
  bool started_ = false, done_ = false;
};

// ---------------------------------------------------------------------------------------------------------
// OpenAI Responses API

// Stored conversations for previous_response_id: response id -> the chat messages of that exchange (input
// and the assistant reply, instructions excluded). Thread-safe; least recently used entries are evicted.
class ResponseStore {
 public:
  explicit ResponseStore(size_t max_entries = 256) : max_(max_entries) {}
  void put(const std::string& id, nlohmann::ordered_json conversation);
  std::optional<nlohmann::ordered_json> get(const std::string& id) const;  // a hit counts as a use
  size_t size() const;

 private:
  using Entry = std::pair<std::string, nlohmann::ordered_json>;
  size_t max_;
  mutable std::mutex mu_;
  mutable std::list<Entry> lru_;  // most recent first
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
};

// What parse_responses_request learns beyond the ChatRequest: what to store and what the response echoes.
struct ResponsesInfo {
  std::optional<std::string> instructions;
  std::optional<std::string> previous_response_id;
  bool store = true;
  nlohmann::json metadata = nlohmann::json::object();
  // Stored conversation (previous_response_id) + this request's input, as chat messages, without the
  // instructions: with the reply appended (store_response) this is what a later request continues from.
  nlohmann::ordered_json conversation = nlohmann::ordered_json::array();
  // Echoed in the response object, in Responses shape.
  nlohmann::json tools = nlohmann::json::array();
  // Remote MCP tools ({"type": "mcp", ...}), which the server runs itself: one entry per tool
  // {server_label, allowed_tools (array of names, or null: all), require_approval ("always" or
  // "never": the default for tools in neither always_tools nor never_tools)}; the server
  // turns them into function tools of the servers it was started with (--mcp-config).
  nlohmann::json mcp = nlohmann::json::array();
  // mcp_approval_response input items: {id, approve, reason}, answers to the previous response's
  // mcp_approval_request items (the calls are in the stored conversation's last assistant turn).
  nlohmann::json approvals = nlohmann::json::array();
  nlohmann::json tool_choice = "auto";
  bool parallel_tool_calls = true;
  nlohmann::json text = {{"format", {{"type", "text"}}}};
  nlohmann::json temperature = 1.0;
  nlohmann::json top_p = 1.0;
  nlohmann::json max_output_tokens = nullptr;
  nlohmann::json reasoning = nullptr;
  nlohmann::json user = nullptr;
};

// Validates and converts a Responses request (errors in OpenAI shape: ApiError::to_json). `store` may be
// null (then any previous_response_id is not found: status 400, code "previous_response_not_found").
std::optional<ApiError> parse_responses_request(std::string_view body, const ApiLimits& limits,
                                                const ResponseStore* store, ChatRequest* out, ResponsesInfo* info);

// When info.store: stores info.conversation + the reply's assistant message under the response id.
void store_response(ResponseStore* store, const std::string& id, const ResponsesInfo& info,
                    const toolcall::Reply& reply);

// The non-streaming Response object (status "completed", or "incomplete" with reason max_output_tokens).
nlohmann::json responses_response_json(const CompatMeta& meta, const ResponsesInfo& info,
                                       const toolcall::Reply& reply, const CompatFinish& finish,
                                       const CompatUsage& usage);

// Streaming: response.created / response.in_progress, output items with their content parts and deltas,
// the *.done events when an item ends, then response.completed (or response.incomplete). Every event has
// "type" and an increasing "sequence_number" (from 0). The final response object equals
// responses_response_json for the same reply when reasoning, content and calls arrive in that order.
class ResponsesStream {
 public:
  ResponsesStream(CompatMeta meta, ResponsesInfo info) : meta_(std::move(meta)), info_(std::move(info)) {}
  std::string start();
  // The first CallDelta of a call must carry its id (call_id) and name (an empty id gets "call_<suffix>_<index>").
  std::string push(const toolcall::Delta& d);
  // `provenance` (when not null) goes into the final response object (response.completed / incomplete).
  std::string finish(const CompatFinish& finish, const CompatUsage& usage, const nlohmann::json& provenance = nullptr);
  // An "error" event, then response.failed with the output so far.
  std::string error(const ApiError& e);
  const toolcall::Reply& reply() const { return reply_; }
  const nlohmann::json& response() const { return last_; }  // the last response object sent
  // An item made elsewhere, whole (the server's MCP items: mcp_list_tools, mcp_call,
  // mcp_approval_request), with its type's events between output_item.added and .done.
  std::string item(const nlohmann::json& item);
  // A new model turn (the MCP loop): the next push()es number their calls from 0 again.
  void next_turn() { call_pos_.clear(); }

 private:
  enum class Item { kNone, kReasoning, kMessage, kCall };
  std::string event(const char* type, nlohmann::json body);
  std::string open(Item kind, int call);
  std::string close();
  std::string item_id() const;                  // of the open item
  nlohmann::json added_item() const;            // the open item as response.output_item.added shows it
  nlohmann::json item_json(const char* status) const;  // the open item with everything so far
  CompatMeta meta_;
  ResponsesInfo info_;
  toolcall::Reply reply_;
  std::vector<int> call_pos_;
  nlohmann::json output_ = nlohmann::json::array();  // finished items
  nlohmann::json last_;
  Item item_ = Item::kNone;
  int item_call_ = -1;
  std::string item_text_;  // text / reasoning / arguments of the open item
  int64_t seq_ = 0;
  bool started_ = false, done_ = false;
};

// ---------------------------------------------------------------------------------------------------------
// Shared by api_messages.cpp and api_responses.cpp (defined in api_messages.cpp); not for callers.
namespace compat_detail {
// Each names the parameter `prefix + key` (prefix e.g. "tools[2].").
ApiError bad(std::string message, std::string param, std::string code = "invalid_value");
ApiError wrong_type(const std::string& param, const char* want, const nlohmann::json& v);
ApiError missing(const std::string& param);
ApiError unsupported(std::string message, std::string param);
const nlohmann::json* field(const nlohmann::json& obj, const char* key);  // absent or null -> nullptr
std::optional<ApiError> get_number(const nlohmann::json& obj, const char* key, double lo, double hi,
                                   std::optional<double>* out, const std::string& prefix = "");
std::optional<ApiError> get_int(const nlohmann::json& obj, const char* key, int64_t lo, int64_t hi,
                                std::optional<int64_t>* out, const std::string& prefix = "");
std::optional<ApiError> get_bool(const nlohmann::json& obj, const char* key, bool* out,
                                 const std::string& prefix = "");
// A string field; `required`: absent or null is an error.
std::optional<ApiError> get_string(const nlohmann::json& obj, const char* key, bool required, std::string* out,
                                   const std::string& prefix = "");
// Accepted-and-ignored fields: only their JSON type is checked.
std::optional<ApiError> check_type(const nlohmann::json& obj, const char* key, nlohmann::json::value_t want,
                                   const std::string& prefix = "");
nlohmann::ordered_json to_ordered(const nlohmann::json& j);
nlohmann::ordered_json parse_arguments(const std::string& text);  // an object, or the text itself
std::string id_suffix(const std::string& id);  // the part after the first '_' (all of it when none)
// Records a streamed call fragment in `reply`: its position there (call_pos maps CallDelta.index
// to it), appending a new call (id: c.id, or prefix + id_suffix(response_id) + "_" + index) when
// the index is new (*is_new). -1 for a negative index.
int note_call(const toolcall::CallDelta& c, const char* id_prefix, const std::string& response_id,
              std::vector<int>* call_pos, toolcall::Reply* reply, bool* is_new);
}  // namespace compat_detail

}  // namespace modu::server
