// AgentStore: the agent aggregate of the store: agents and enrollment
// tokens.
// Thread-safety: implementations are safe to call from any thread (see
// store.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "server/store/page.h"

namespace reprise {

struct AgentRecord {
  std::string name;
  std::string status;       // pending | approved | refused
  std::string secret_hash;  // HMAC key material is never stored in clear
  std::string key_fingerprint;
  std::string version;
  int64_t created_at = 0;
  int64_t last_seen = 0;
  std::string public_key;  // PEM or hex, as the agent hub chooses
};

struct EnrollTokenRecord {
  std::string token_hash;  // SHA-256 of the token
  bool pre_approved = false;
  std::string created_by;
  int64_t created_at = 0;
  int64_t expires_at = 0;
  std::string used_by;  // agent names that used it, comma-separated
};

class AgentStore {
 public:
  virtual ~AgentStore() = default;

  virtual Status PutAgent(const AgentRecord& agent) = 0;
  virtual Result<AgentRecord> GetAgent(const std::string& name) = 0;
  virtual Result<std::vector<AgentRecord>> ListAgents(const Page& page) = 0;

  virtual Status CreateEnrollToken(const EnrollTokenRecord& token) = 0;
  virtual Result<EnrollTokenRecord> FindEnrollToken(const std::string& token_hash) = 0;
  // Appends `agent` to the token's used_by list.
  virtual Status MarkEnrollTokenUsed(const std::string& token_hash, const std::string& agent) = 0;
};

}  // namespace reprise
