#include "agents/protocol/messages.h"

#include <limits>
#include <nlohmann/json.hpp>
#include <type_traits>

namespace reprise::protocol {
namespace {

using json = nlohmann::json;

static_assert(std::variant_size_v<Message> == static_cast<size_t>(MessageType::kUnknown),
              "one Message alternative per MessageType, in the same order");

enum Need { kRequired, kOptional };

// Each message's fields, declared once and walked by both the encoder and
// the decoder. `v(name, field, need)`.
template <class V>
void Fields(V& v, Hello& m) {
  v("protocol", m.protocol, kOptional);
  v("name", m.name, kOptional);
  v("version", m.version, kOptional);
  v("public_key", m.public_key, kOptional);
  v("enroll_token", m.enroll_token, kOptional);
}
template <class V>
void Fields(V& v, Challenge& m) {
  v("nonce", m.nonce, kRequired);
}
template <class V>
void Fields(V& v, Auth& m) {
  v("signature", m.signature, kOptional);
}
template <class V>
void Fields(V& v, Welcome& m) {
  v("status", m.status, kOptional);
  v("files", m.files, kOptional);
}
template <class V>
void Fields(V& v, Refused& m) {
  v("code", m.code, kOptional);
  v("message", m.message, kOptional);
  v("permanent", m.permanent, kOptional);
}
template <class V>
void Fields(V&, Heartbeat&) {}
template <class V>
void Fields(V&, HeartbeatAck&) {}
template <class V>
void Fields(V& v, Run& m) {
  v("op", m.op, kRequired);
  v("target_path", m.target_path, kRequired);
  v("release", m.release, kOptional);
  v("build", m.build, kOptional);
  v("operation", m.operation, kRequired);
  v("limits", m.limits, kOptional);
}
template <class V>
void Fields(V& v, Cancel& m) {
  v("op", m.op, kRequired);
}
template <class V>
void Fields(V& v, LogLines& m) {
  v("op", m.op, kRequired);
  v("level", m.level, kOptional);
}
template <class V>
void Fields(V& v, Progress& m) {
  v("op", m.op, kRequired);
  v("phase", m.phase, kOptional);
  v("bytes_done", m.bytes_done, kOptional);
  v("bytes_total", m.bytes_total, kOptional);
  v("files_done", m.files_done, kOptional);
  v("files_total", m.files_total, kOptional);
}
template <class V>
void Fields(V& v, OperationResult& m) {
  v("op", m.op, kRequired);
  v("kind", m.kind, kOptional);
  v("message", m.message, kOptional);
  v("code", m.code, kOptional);
}
template <class V>
void Fields(V& v, BlobGet& m) {
  v("op", m.op, kRequired);
  v("sha256", m.sha256, kOptional);
  v("offset", m.offset, kOptional);
  v("stream", m.stream, kOptional);
}
template <class V>
void Fields(V& v, BlobData& m) {
  v("op", m.op, kRequired);
  v("offset", m.offset, kRequired);
  v("total", m.total, kOptional);
  v("eof", m.eof, kOptional);
  v("stream", m.stream, kOptional);
}
template <class V>
void Fields(V& v, BlobError& m) {
  v("op", m.op, kRequired);
  v("message", m.message, kOptional);
  v("stream", m.stream, kOptional);
}
template <class V>
void Fields(V& v, FilesGet& m) {
  v("op", m.op, kRequired);
  v("sha256", m.sha256, kRequired);
  v("index", m.index, kOptional);
  v("stream", m.stream, kOptional);
}
template <class V>
void Fields(V& v, TargetRequest& m) {
  v("req", m.req, kRequired);
  v("target_path", m.target_path, kRequired);
  v("more", m.more, kOptional);
}
template <class V>
void Fields(V& v, Reply& m) {
  v("req", m.req, kRequired);
  v("ok", m.ok, kOptional);
  v("more", m.more, kOptional);
  v("code", m.code, kOptional);
  v("message", m.message, kOptional);
}

struct Writer {
  json j = json::object();
  template <class T>
  void operator()(const char* name, const T& field, Need) {
    if constexpr (std::is_same_v<T, Code>) {
      j[name] = std::string(CodeName(field));
    } else if constexpr (std::is_same_v<T, std::optional<std::string>>) {
      if (field) j[name] = *field;
    } else {
      j[name] = field;
    }
  }
};

// Reads fields of one message; the first problem is kept.
class Reader {
 public:
  Reader(const json& j, std::string_view type) : j_(j), type_(type) {}

  void operator()(const char* name, std::string& out, Need need) {
    if (const json* f = Find(name, need)) {
      if (!f->is_string()) return Fail(name, "must be a string");
      out = f->get<std::string>();
    }
  }
  void operator()(const char* name, std::optional<std::string>& out, Need need) {
    std::string text;
    if (Find(name, need) == nullptr) return;
    (*this)(name, text, need);
    out = std::move(text);
  }
  void operator()(const char* name, uint64_t& out, Need need) {
    if (const json* f = Find(name, need)) {
      if (!f->is_number_unsigned()) return Fail(name, "must be a non-negative integer");
      out = f->get<uint64_t>();
    }
  }
  void operator()(const char* name, int& out, Need need) {
    if (const json* f = Find(name, need)) {
      if (!f->is_number_integer()) return Fail(name, "must be an integer");
      int64_t v = f->get<int64_t>();
      if (v < std::numeric_limits<int>::min() || v > std::numeric_limits<int>::max())
        return Fail(name, "is out of range");
      out = static_cast<int>(v);
    }
  }
  void operator()(const char* name, bool& out, Need need) {
    if (const json* f = Find(name, need)) {
      if (!f->is_boolean()) return Fail(name, "must be a boolean");
      out = f->get<bool>();
    }
  }
  void operator()(const char* name, Code& out, Need need) {
    std::string text;
    if (Find(name, need) == nullptr) return;
    (*this)(name, text, need);
    out = CodeFromName(text);
  }

  const Status& status() const { return status_; }

 private:
  const json* Find(const char* name, Need need) {
    if (!status_.ok()) return nullptr;
    auto it = j_.find(name);
    if (it == j_.end()) {
      if (need == kRequired) Fail(name, "is missing");
      return nullptr;
    }
    return &*it;
  }
  void Fail(const char* name, const char* what) {
    if (status_.ok())
      status_ = InvalidArgument(std::string(type_) + ": field '" + name + "' " + what);
  }

  const json& j_;
  std::string_view type_;
  Status status_;
};

// Requests share their fields; every other message is walked as itself.
template <class M>
auto& AsFields(M& m) {
  if constexpr (std::is_base_of_v<TargetRequest, M>) {
    return static_cast<TargetRequest&>(m);
  } else {
    return m;
  }
}

template <size_t I = 0>
reprise::Result<Message> DecodeAs(size_t index, const json& j) {
  if constexpr (I < std::variant_size_v<Message>) {
    if (index != I) return DecodeAs<I + 1>(index, j);
    std::variant_alternative_t<I, Message> m;
    Reader reader(j, MessageTypeName(static_cast<MessageType>(I)));
    Fields(reader, AsFields(m));
    if (!reader.status().ok()) return reader.status();
    return Message(std::in_place_index<I>, std::move(m));
  } else {
    return Internal("unreachable message index");
  }
}

}  // namespace

MessageType TypeOf(const Message& message) { return static_cast<MessageType>(message.index()); }

std::string Encode(const Message& message) {
  Writer w;
  w.j["type"] = std::string(MessageTypeName(TypeOf(message)));
  std::visit(
      [&w](const auto& m) {
        // The fields are only read: Fields() is shared with the decoder.
        auto& fields =
            AsFields(const_cast<std::remove_const_t<std::remove_reference_t<decltype(m)>>&>(m));
        Fields(w, fields);
      },
      message);
  return w.j.dump(-1, ' ', false, json::error_handler_t::replace);
}

reprise::Result<Message> DecodeMessage(std::string_view header) {
  json j = json::parse(header, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return InvalidArgument("frame header: not valid JSON");
  if (!j.is_object()) return InvalidArgument("frame header: not a JSON object");
  auto type = j.find("type");
  if (type == j.end() || !type->is_string())
    return InvalidArgument("frame header: field 'type' must be a string");
  const std::string name = type->get<std::string>();
  MessageType t = MessageTypeFromName(name);
  if (t == MessageType::kUnknown) {
    return InvalidArgument("frame header: unknown message type '" + name.substr(0, 64) + "'");
  }
  return DecodeAs(static_cast<size_t>(t), j);
}

Code CodeFromName(std::string_view name) {
  for (int c = 0; c <= static_cast<int>(Code::kInternal); ++c) {
    if (CodeName(static_cast<Code>(c)) == name) return static_cast<Code>(c);
  }
  return Code::kInternal;
}

}  // namespace reprise::protocol
