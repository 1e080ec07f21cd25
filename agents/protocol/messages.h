// The agent protocol's messages, each declared once as a typed struct with
// one encoding (Encode) and one decoding (DecodeMessage), used by both ends:
// server/hub/agent_hub.cpp and agents/agent/agent_client.cpp.
//
// A message is the JSON header of a frame (protocol.h); its payload (log
// text, blob bytes, a manifest, a reply body) travels beside it in the frame
// and is not part of the struct. JSON stays inside messages.cpp.
//
// To add a message: a MessageType (protocol.h) and its name, a struct here
// added to Message, its Encode/decode in messages.cpp, and one case in the
// frame handler of the end that receives it.
//
// Decoding never throws: a malformed header gives kInvalidArgument naming
// the message and the field ("hello: field 'version' must be a string").
// Fields that were optional on the wire stay optional, with the defaults
// below. Thread-safety: pure functions on values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "agents/protocol/protocol.h"
#include "common/status.h"

namespace reprise::protocol {

struct Hello {  // agent -> server
  int protocol = 0;
  std::string name;
  std::string version;
  std::string public_key;    // Ed25519, hex
  std::string enroll_token;  // "" : none
  bool operator==(const Hello&) const = default;
};
struct Challenge {  // server -> agent
  std::string nonce;
  bool operator==(const Challenge&) const = default;
};
struct Auth {             // agent -> server
  std::string signature;  // hex, over AuthMessage()
  bool operator==(const Auth&) const = default;
};
struct Welcome {                   // server -> agent
  std::string status = "pending";  // pending | approved
  // The server answers files_get (it keeps builds' file indexes); older
  // servers leave it out and their agents fetch whole archives.
  bool files = false;
  bool approved() const { return status == "approved"; }
  bool operator==(const Welcome&) const = default;
};
struct Refused {  // server -> agent, then close
  Code code = Code::kPermissionDenied;
  std::string message = "refused";
  bool permanent = false;
  bool operator==(const Refused&) const = default;
};
struct Heartbeat {
  bool operator==(const Heartbeat&) const = default;
};
struct HeartbeatAck {
  bool operator==(const HeartbeatAck&) const = default;
};
// One operation; a write-file's content is the payload.
struct Run {
  uint64_t op = 0;
  std::string target_path;
  std::string release;
  std::string build;
  std::string operation;              // OperationToJson text
  std::optional<std::string> limits;  // ArchiveLimitsToJson text
  bool operator==(const Run&) const = default;
};
struct Cancel {
  uint64_t op = 0;
  bool operator==(const Cancel&) const = default;
};
// Log text is the payload.
struct LogLines {
  uint64_t op = 0;
  std::string level = "info";  // info | warning | error | output
  bool operator==(const LogLines&) const = default;
};
struct Progress {
  uint64_t op = 0;
  std::string phase;
  uint64_t bytes_done = 0;
  uint64_t bytes_total = 0;
  uint64_t files_done = 0;
  uint64_t files_total = 0;
  bool operator==(const Progress&) const = default;
};
struct OperationResult {
  uint64_t op = 0;
  std::string kind = "error";  // succeeded | failed | error
  std::string message;
  Code code = Code::kInternal;  // for "error"; unknown names read as kInternal
  bool operator==(const OperationResult&) const = default;
};
// `stream` numbers an agent's blob_get and files_get requests (0: not
// numbered, as older agents send them). The server answers each with its
// number, and a new request of an operation supersedes the one before: its
// stream stops, and the agent drops what was still on its way.
struct BlobGet {
  uint64_t op = 0;
  std::string sha256;
  uint64_t offset = 0;
  uint64_t stream = 0;
  bool operator==(const BlobGet&) const = default;
};
// One chunk of the blob is the payload.
struct BlobData {
  uint64_t op = 0;
  uint64_t offset = 0;
  uint64_t total = 0;
  bool eof = false;
  uint64_t stream = 0;  // the request's
  bool operator==(const BlobData&) const = default;
};
// The end of a stream: nothing more of it follows.
struct BlobError {
  uint64_t op = 0;
  std::string message = "blob transfer refused";
  uint64_t stream = 0;  // the request's
  bool operator==(const BlobError&) const = default;
};
// A running deploy-artifact's build, file by file, instead of its whole
// archive (an update that has most files already). With `index`, the build's
// file index (its manifest JSON) comes back; else the files whose sha256s
// the payload lists (64 hex digits and a newline each; only files of that
// build), one after the other in the listed order. Either way as blob_data
// chunks of op, or a blob_error. Sent only to servers whose welcome says
// `files`.
struct FilesGet {
  uint64_t op = 0;
  std::string sha256;  // the artifact of the running operation
  bool index = false;
  uint64_t stream = 0;  // as blob_get's
  bool operator==(const FilesGet&) const = default;
};
// The requests about a target; a payload too large for a frame comes in
// parts, all but the last with `more`.
struct TargetRequest {
  uint64_t req = 0;
  std::string target_path;
  bool more = false;
  bool operator==(const TargetRequest&) const = default;
};
struct StateRequest : TargetRequest {};
struct ValidateRequest : TargetRequest {};  // the manifest JSON is the payload
struct ProbeRequest : TargetRequest {};
// The answer to a request: the body is the payload (in parts, with `more`).
struct Reply {
  uint64_t req = 0;
  bool ok = false;
  bool more = false;
  Code code = Code::kInternal;  // when !ok
  std::string message;          // when !ok
  bool operator==(const Reply&) const = default;
};

using Message =
    std::variant<Hello, Challenge, Auth, Welcome, Refused, Heartbeat, HeartbeatAck, Run, Cancel,
                 LogLines, Progress, OperationResult, BlobGet, BlobData, BlobError, StateRequest,
                 ValidateRequest, Reply, ProbeRequest, FilesGet>;
// Alternatives in MessageType order: the index is the type.

MessageType TypeOf(const Message& message);

// The frame header (JSON object text) of a message.
std::string Encode(const Message& message);

// Parses a frame header. kInvalidArgument naming the message and field when
// malformed, or the unknown type.
[[nodiscard]] reprise::Result<Message> DecodeMessage(std::string_view header);

// A Status's code as it travels ("not_found"); unknown names are kInternal.
Code CodeFromName(std::string_view name);

}  // namespace reprise::protocol
