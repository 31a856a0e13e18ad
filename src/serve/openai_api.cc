// OpenAI request parsing and response objects (openai_api.h).
#include "serve/openai_api.h"

#include <cmath>
#include <limits>

namespace illada::serve {

using nlohmann::json;

namespace {

std::string type_name(const json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "a boolean";
  if (v.is_number_integer() || v.is_number_unsigned()) return "an integer";
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "an array";
  return "an object";
}

[[noreturn]] void bad(const std::string& param, const std::string& what) {
  throw ApiError(400, "'" + param + "' " + what, param);
}

// Integer field in [lo, hi]; absent or null: nullopt.
std::optional<int64_t> opt_int(const json& j, const std::string& key, int64_t lo, int64_t hi) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (!it->is_number_integer() && !it->is_number_unsigned()) {
    bad(key, "must be an integer, got " + type_name(*it));
  }
  if (it->is_number_unsigned() && it->get<uint64_t>() > static_cast<uint64_t>(hi)) {
    bad(key, "must be at most " + std::to_string(hi));
  }
  const int64_t v = it->get<int64_t>();
  if (v < lo || v > hi) bad(key, "must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + std::to_string(v));
  return v;
}

std::optional<double> opt_number(const json& j, const std::string& key, double lo, double hi) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (!it->is_number()) bad(key, "must be a number, got " + type_name(*it));
  const double v = it->get<double>();
  if (!std::isfinite(v) || v < lo || v > hi) {
    bad(key, "must be a number in [" + json(lo).dump() + ", " + json(hi).dump() + "], got " + it->dump());
  }
  return v;
}

std::optional<bool> opt_bool(const json& j, const std::string& key) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (!it->is_boolean()) bad(key, "must be true or false, got " + type_name(*it));
  return it->get<bool>();
}

std::optional<std::string> opt_choice(const json& j, const std::string& key, const std::vector<std::string>& choices) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  std::string list;
  for (const auto& c : choices) list += (list.empty() ? "" : ", ") + c;
  if (!it->is_string()) bad(key, "must be one of " + list + ", got " + type_name(*it));
  const std::string v = it->get<std::string>();
  if (std::find(choices.begin(), choices.end(), v) == choices.end()) bad(key, "must be one of " + list + ", got '" + v + "'");
  return v;
}

std::string message_content(const json& m, const std::string& param) {
  const auto it = m.find("content");
  if (it == m.end() || it->is_null()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (!it->is_array()) bad(param + ".content", "must be a string or an array of text parts, got " + type_name(*it));
  std::string text;
  for (size_t i = 0; i < it->size(); ++i) {
    const json& part = (*it)[i];
    const std::string p = param + ".content[" + std::to_string(i) + "]";
    if (!part.is_object() || !part.contains("type") || !part["type"].is_string()) bad(p, "must be an object with a 'type'");
    if (part["type"] != "text") bad(p + ".type", "'" + part["type"].get<std::string>() + "' is not supported (text only)");
    if (!part.contains("text") || !part["text"].is_string()) bad(p + ".text", "must be a string");
    if (!text.empty()) text += "\n";
    text += part["text"].get<std::string>();
  }
  return text;
}

std::vector<int32_t> token_ids(const json& a, const std::string& param) {
  std::vector<int32_t> ids;
  for (size_t i = 0; i < a.size(); ++i) {
    const json& v = a[i];
    if (!v.is_number_integer() && !v.is_number_unsigned()) {
      bad(param + "[" + std::to_string(i) + "]", "must be a token id (an integer), got " + type_name(v));
    }
    // nlohmann parses every non-negative integer as unsigned; compare in the type it holds.
    const bool too_large = v.is_number_unsigned() ? v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int32_t>::max())
                                                  : v.get<int64_t>() > std::numeric_limits<int32_t>::max();
    const int64_t id = too_large ? -1 : v.get<int64_t>();
    if (too_large || id < 0) {
      bad(param + "[" + std::to_string(i) + "]", "is not a valid token id: " + v.dump());
    }
    ids.push_back(static_cast<int32_t>(id));
  }
  return ids;
}

}  // namespace

json error_body(const std::string& message, const std::string& type, const std::string& param,
                const std::string& code) {
  return {{"error",
           {{"message", message},
            {"type", type},
            {"param", param.empty() ? json(nullptr) : json(param)},
            {"code", code.empty() ? json(nullptr) : json(code)}}}};
}

json ApiError::body() const { return error_body(what(), type_, param_, code_); }

json parse_json_object(const std::string& body) {
  json j;
  try {
    j = json::parse(body);
  } catch (const json::parse_error& e) {
    throw ApiError(400, std::string("the request body is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) throw ApiError(400, "the request body must be a JSON object, got " + type_name(j));
  return j;
}

CompletionRequest parse_completion_request(const std::string& body, Endpoint endpoint, const RequestLimits& limits) {
  const json j = parse_json_object(body);
  CompletionRequest r;
  r.endpoint = endpoint;
  if (j.contains("model") && !j["model"].is_null()) {
    if (!j["model"].is_string()) bad("model", "must be a string, got " + type_name(j["model"]));
    r.model = j["model"].get<std::string>();
  }
  if (endpoint == Endpoint::kChat) {
    if (!j.contains("messages")) bad("messages", "is required (an array of {role, content} objects)");
    const json& ms = j["messages"];
    if (!ms.is_array()) bad("messages", "must be an array, got " + type_name(ms));
    if (ms.empty()) bad("messages", "must hold at least one message");
    if (static_cast<int64_t>(ms.size()) > limits.max_messages) {
      bad("messages", "holds " + std::to_string(ms.size()) + " messages; this server takes at most " +
                          std::to_string(limits.max_messages));
    }
    for (size_t i = 0; i < ms.size(); ++i) {
      const std::string p = "messages[" + std::to_string(i) + "]";
      const json& m = ms[i];
      if (!m.is_object()) bad(p, "must be an object, got " + type_name(m));
      if (!m.contains("role") || !m["role"].is_string()) bad(p + ".role", "must be a string");
      std::string role = m["role"].get<std::string>();
      if (role == "developer") role = "system";
      if (role != "system" && role != "user" && role != "assistant") {
        bad(p + ".role", "'" + role + "' is not supported (system, developer, user or assistant)");
      }
      r.messages.push_back({role, message_content(m, p)});
    }
  } else {
    if (!j.contains("prompt") || j["prompt"].is_null()) bad("prompt", "is required (text, token ids, or an array of them)");
    const json& p = j["prompt"];
    auto add = [&](const json& v, const std::string& param) {
      PromptInput in;
      if (v.is_string()) {
        in.text = v.get<std::string>();
      } else if (v.is_array()) {
        in.ids = token_ids(v, param);
        in.is_ids = true;
        if (in.ids.empty()) bad(param, "holds no token ids");
      } else {
        bad(param, "must be a string or an array of token ids, got " + type_name(v));
      }
      r.prompts.push_back(std::move(in));
    };
    if (p.is_string()) {
      add(p, "prompt");
    } else if (p.is_array() && !p.empty() && (p[0].is_number_integer() || p[0].is_number_unsigned())) {
      add(p, "prompt");  // one prompt of token ids
    } else if (p.is_array()) {
      if (p.empty()) bad("prompt", "must not be empty");
      if (static_cast<int64_t>(p.size()) > limits.max_prompts) {
        bad("prompt", "holds " + std::to_string(p.size()) + " prompts; this server takes at most " +
                          std::to_string(limits.max_prompts));
      }
      for (size_t i = 0; i < p.size(); ++i) add(p[i], "prompt[" + std::to_string(i) + "]");
    } else {
      bad("prompt", "must be a string, an array of strings, or token ids, got " + type_name(p));
    }
  }
  const int64_t max_tokens_limit = int64_t{1} << 20;
  r.max_tokens = opt_int(j, "max_tokens", 1, max_tokens_limit);
  if (endpoint == Endpoint::kChat) {
    if (const auto m = opt_int(j, "max_completion_tokens", 1, max_tokens_limit)) r.max_tokens = m;
  }
  r.temperature = opt_number(j, "temperature", 0.0, 2.0).value_or(0.0);
  if (j.contains("seed") && !j["seed"].is_null()) {
    const json& s = j["seed"];
    if (s.is_number_unsigned()) {
      r.seed = s.get<uint64_t>();
    } else if (s.is_number_integer()) {
      r.seed = static_cast<uint64_t>(s.get<int64_t>());
    } else {
      bad("seed", "must be an integer, got " + type_name(s));
    }
  }
  if (j.contains("stop") && !j["stop"].is_null()) {
    const json& s = j["stop"];
    if (s.is_string()) {
      r.stop.push_back(s.get<std::string>());
    } else if (s.is_array()) {
      if (static_cast<int64_t>(s.size()) > limits.max_stop) {
        bad("stop", "holds " + std::to_string(s.size()) + " strings; at most " + std::to_string(limits.max_stop));
      }
      for (size_t i = 0; i < s.size(); ++i) {
        if (!s[i].is_string()) bad("stop[" + std::to_string(i) + "]", "must be a string, got " + type_name(s[i]));
        r.stop.push_back(s[i].get<std::string>());
      }
    } else {
      bad("stop", "must be a string or an array of strings, got " + type_name(s));
    }
    for (size_t i = 0; i < r.stop.size(); ++i) {
      if (r.stop[i].empty()) bad("stop", "must not hold an empty string");
    }
  }
  r.stream = opt_bool(j, "stream").value_or(false);
  if (j.contains("stream_options") && !j["stream_options"].is_null()) {
    const json& so = j["stream_options"];
    if (!so.is_object()) bad("stream_options", "must be an object, got " + type_name(so));
    if (!r.stream) bad("stream_options", "is only allowed with \"stream\": true");
    if (const auto v = opt_bool(so, "include_usage")) r.include_usage = *v;
    if (const auto v = opt_bool(so, "denoising")) r.denoising = *v;
  }
  r.n = opt_int(j, "n", 1, limits.max_n).value_or(1);
  r.steps = opt_int(j, "steps", 1, max_tokens_limit);
  r.block_length = opt_int(j, "block_length", 1, max_tokens_limit);
  r.variable_length = opt_bool(j, "variable_length").value_or(true);
  if (j.contains("threshold")) {
    const json& t = j["threshold"];
    if (t.is_boolean() && !t.get<bool>()) {
      r.threshold.reset();
    } else if (!t.is_null()) {
      r.threshold = opt_number(j, "threshold", 0.0, 1.0);
    }
  }
  r.factor = opt_number(j, "factor", 0.0, 1e6);
  if (r.factor) {
    if (*r.factor <= 0) bad("factor", "must be > 0");
    if (j.contains("threshold") && !j["threshold"].is_null() && !j["threshold"].is_boolean()) {
      bad("factor", "cannot be combined with 'threshold' (give one; \"threshold\": false turns the default off)");
    }
    r.threshold.reset();
  }
  r.cache = opt_choice(j, "cache", {"none", "prefix", "dual"});
  r.remasking = opt_choice(j, "remasking", {"low_confidence", "random", "margin", "entropy"}).value_or("low_confidence");
  r.cfg_scale = opt_number(j, "cfg_scale", 0.0, 1e6).value_or(0.0);
  if (r.cfg_scale > 0 && r.cache && *r.cache != "none") {
    bad("cfg_scale", "cannot be combined with \"cache\": \"" + *r.cache + "\" (Fast-dLLM's caches have no CFG)");
  }
  return r;
}

json Usage::to_json() const {
  return {{"prompt_tokens", prompt_tokens},
          {"completion_tokens", completion_tokens},
          {"total_tokens", prompt_tokens + completion_tokens}};
}

json completion_response(Endpoint ep, const std::string& id, int64_t created, const std::string& model,
                         const std::vector<ChoiceAnswer>& choices, const Usage& usage) {
  json cs = json::array();
  for (const ChoiceAnswer& c : choices) {
    if (ep == Endpoint::kChat) {
      cs.push_back({{"index", c.index},
                    {"message", {{"role", "assistant"}, {"content", c.text}}},
                    {"logprobs", nullptr},
                    {"finish_reason", c.finish_reason}});
    } else {
      cs.push_back({{"index", c.index}, {"text", c.text}, {"logprobs", nullptr}, {"finish_reason", c.finish_reason}});
    }
  }
  return {{"id", id},
          {"object", ep == Endpoint::kChat ? "chat.completion" : "text_completion"},
          {"created", created},
          {"model", model},
          {"choices", cs},
          {"usage", usage.to_json()}};
}

json chunk(Endpoint ep, const std::string& id, int64_t created, const std::string& model, json choices,
           const json& usage) {
  json c = {{"id", id},
            {"object", ep == Endpoint::kChat ? "chat.completion.chunk" : "text_completion"},
            {"created", created},
            {"model", model},
            {"choices", std::move(choices)}};
  if (!usage.is_null()) c["usage"] = usage;
  return c;
}

json chunk_choice(Endpoint ep, int64_t index, const std::string& text, bool with_role, const std::string& finish_reason) {
  json c = {{"index", index}, {"logprobs", nullptr},
            {"finish_reason", finish_reason.empty() ? json(nullptr) : json(finish_reason)}};
  if (ep == Endpoint::kChat) {
    json delta = json::object();
    if (with_role) delta["role"] = "assistant";
    if (with_role || !text.empty()) delta["content"] = text;
    c["delta"] = delta;
  } else {
    c["text"] = text;
  }
  return c;
}

}  // namespace illada::serve
