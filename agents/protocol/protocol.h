// The agent protocol, shared by the server's hub and reprise-agent.
//
// A connection carries frames. Each frame is
//   u32 header_length (big-endian) | u32 payload_length (big-endian)
//   | header (a JSON object, UTF-8) | payload (raw bytes, may be empty)
// The header's "type" names the message (MessageType). Frames over the size
// limits end the connection: a peer cannot make the other allocate more than
// kMaxHeaderBytes + kMaxPayloadBytes per frame, and the server allows only
// kMaxHandshakeFrameBytes until the agent has proved who it is. A sender
// never closes the connection over a frame too large to encode: the one
// message fails (Channel::Send returns kTooLarge). Payloads that may outgrow
// a frame (validate_request manifests, reply bodies) travel in parts: every
// frame but the last carries "more": true, and the receiver joins them.
//
// Session: the agent connects out and sends `hello` (protocol version, name,
// version, Ed25519 public key, optional enrollment token); the server answers
// `challenge` (random nonce); the agent answers `auth` with a signature over
// AuthMessage(nonce, name, server certificate fingerprint); the server
// answers `welcome` (status pending or approved) or `refused`. Only then do
// operations, blob transfers and state requests flow. See docs/agents.md.
//
// FrameDecoder is not thread-safe (one per connection); the free functions are.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace reprise::protocol {

inline constexpr int kProtocolVersion = 1;
inline constexpr uint32_t kMaxHeaderBytes = 1u << 20;   // 1 MiB of JSON
inline constexpr uint32_t kMaxPayloadBytes = 8u << 20;  // 8 MiB of bytes
inline constexpr uint32_t kChunkBytes = 1u << 20;       // blob transfer chunk
// Everything an agent can send before `welcome` (hello, auth) is small.
inline constexpr uint32_t kMaxHandshakeFrameBytes = 64u << 10;
inline constexpr uint64_t kMaxFrameBytes = uint64_t{kMaxHeaderBytes} + kMaxPayloadBytes;
// Parts of a payload sent in several frames, and what they may add up to.
inline constexpr uint32_t kPartBytes = 4u << 20;
inline constexpr uint64_t kMaxJoinedBytes = 256ull << 20;
inline constexpr size_t kPrefixBytes = 8;

enum class MessageType {
  kHello,            // agent -> server
  kChallenge,        // server -> agent
  kAuth,             // agent -> server
  kWelcome,          // server -> agent (also when an admin approves later)
  kRefused,          // server -> agent, then close
  kHeartbeat,        // agent -> server
  kHeartbeatAck,     // server -> agent
  kRun,              // server -> agent: one operation
  kCancel,           // server -> agent
  kLog,              // agent -> server: log lines of an operation
  kProgress,         // agent -> server
  kResult,           // agent -> server: the operation's outcome
  kBlobGet,          // agent -> server: stream a blob of a running deploy
  kBlobData,         // server -> agent: one chunk (payload), "eof" on the last
  kBlobError,        // server -> agent
  kStateRequest,     // server -> agent
  kValidateRequest,  // server -> agent (manifest JSON as payload)
  kReply,            // agent -> server: answer to a state/validate/probe request
  kProbeRequest,     // server -> agent: can the target root be written, how much room
  kFilesGet,         // agent -> server: a build's file index, or some of its files by sha256
  kUnknown,
};

std::string_view MessageTypeName(MessageType type);
MessageType MessageTypeFromName(std::string_view name);

struct Frame {
  std::string header;   // JSON object text
  std::string payload;  // raw bytes
};

// The bytes of one frame. kTooLarge when over the limits.
[[nodiscard]] Result<std::string> EncodeFrame(std::string_view header, std::string_view payload);
// Parses a prefix: header and payload lengths. kTooLarge / kInvalidArgument.
[[nodiscard]] Status DecodePrefix(const unsigned char* prefix, uint32_t* header_len,
                                  uint32_t* payload_len);

// `payload` cut into pieces of at most kPartBytes, one per frame; one empty
// piece for an empty payload.
std::vector<std::string_view> SplitPayload(std::string_view payload);

// Incremental decoder for byte streams (tests, fuzzing, simple transports).
class FrameDecoder {
 public:
  // Appends bytes; returns an error once the stream is malformed (sticky).
  [[nodiscard]] Status Feed(std::string_view bytes);
  // The next complete frame, if any.
  std::optional<Frame> Next();

 private:
  std::string buffer_;
  size_t pos_ = 0;
  Status error_;
};

// Names: agents and targets use [A-Za-z0-9._-], 1..64 characters, not
// starting with '.' or '-'.
bool IsValidAgentName(std::string_view name);

// ---- identity ----

// An agent's Ed25519 key pair. The private key never leaves the agent.
class Identity {
 public:
  // Loads the key from `path`, or creates it (mode 0600, parent 0700).
  [[nodiscard]] static Result<Identity> LoadOrCreate(const std::string& path);
  [[nodiscard]] static Result<Identity> Generate();
  const std::string& public_key_hex() const { return public_hex_; }
  // Hex signature of `message`.
  [[nodiscard]] Result<std::string> Sign(std::string_view message) const;

 private:
  std::string private_raw_;  // 32 bytes
  std::string public_hex_;
};

// OK when `signature_hex` is an Ed25519 signature of `message` by the key.
[[nodiscard]] Status VerifySignature(std::string_view public_key_hex, std::string_view message,
                                     std::string_view signature_hex);
// What the agent signs: binds the nonce to its name and to the TLS channel
// (the server certificate's fingerprint; "" on plain TCP).
std::string AuthMessage(std::string_view nonce, std::string_view name,
                        std::string_view server_fingerprint);
// SHA-256 hex of the raw public key, shown to admins.
std::string KeyFingerprint(std::string_view public_key_hex);

// ---- TLS material ----

struct TlsFiles {
  std::string cert_path;
  std::string key_path;
  std::string fingerprint;  // SHA-256 of the certificate's DER, lower-case hex
};
// Loads DIR/agent-tls.crt + .key, or creates a self-signed pair (P-256,
// 10 years; key mode 0600).
[[nodiscard]] Result<TlsFiles> LoadOrCreateServerCert(const std::string& dir);
// SHA-256 (hex) of a PEM certificate's DER encoding.
[[nodiscard]] Result<std::string> CertFingerprintFromPem(std::string_view pem);
// Accepts "ab:cd:..." or "abcd..." in any case; returns lower-case hex or "".
std::string NormalizeFingerprint(std::string_view text);

// True for an IP literal on loopback (127.0.0.0/8, ::1, ::ffff:127.x.y.z) and
// for "localhost", whose resolved addresses must still each be checked with
// IsLoopbackAddress. Decided on the parsed address, never on a prefix: the
// name "127.evil.example" is not loopback.
bool IsLoopbackHost(std::string_view host);
// `address` is an IP literal (as printed by the resolver) on loopback.
bool IsLoopbackAddress(std::string_view address);

}  // namespace reprise::protocol
