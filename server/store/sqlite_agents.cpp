// SqliteStore, agent aggregate: agents and enrollment tokens.
#include "server/store/sqlite_store_internal.h"

namespace reprise {
namespace {
constexpr const char* kAgentColumns =
    "SELECT name, status, secret_hash, key_fingerprint, version, created_at, last_seen, "
    "public_key FROM agents";

EnrollTokenRecord ReadEnrollToken(SQLite::Statement& q) {
  EnrollTokenRecord t;
  ReadColumns(q, t.token_hash, t.pre_approved, t.created_by, t.created_at, t.expires_at, t.used_by);
  return t;
}

}  // namespace

Status SqliteStore::PutAgent(const AgentRecord& a) {
  return Execute("put agent",
                 "INSERT INTO agents(name, status, secret_hash, key_fingerprint, version, "
                 "created_at, last_seen, public_key) VALUES(?,?,?,?,?,?,?,?) ON CONFLICT(name) DO "
                 "UPDATE SET status=excluded.status, secret_hash=excluded.secret_hash, "
                 "key_fingerprint=excluded.key_fingerprint, version=excluded.version, "
                 "last_seen=excluded.last_seen, public_key=excluded.public_key",
                 a.name, a.status, a.secret_hash, a.key_fingerprint, a.version, a.created_at,
                 a.last_seen, a.public_key);
}

Result<AgentRecord> SqliteStore::GetAgent(const std::string& name) {
  return GetByName(kAgentColumns, ReadAgent, "agent", name);
}

Result<std::vector<AgentRecord>> SqliteStore::ListAgents(const Page& page) {
  return ListByName(kAgentColumns, ReadAgent, page);
}

Status SqliteStore::CreateEnrollToken(const EnrollTokenRecord& t) {
  return Execute("create enroll token",
                 "INSERT INTO enroll_tokens(token_hash, pre_approved, created_by, created_at, "
                 "expires_at, used_by) VALUES(?,?,?,?,?,?)",
                 t.token_hash, t.pre_approved ? 1 : 0, t.created_by, t.created_at, t.expires_at,
                 t.used_by);
}

Result<EnrollTokenRecord> SqliteStore::FindEnrollToken(const std::string& token_hash) {
  return SelectOne("enrollment token",
                   "SELECT token_hash, pre_approved, created_by, created_at, expires_at, used_by "
                   "FROM enroll_tokens WHERE token_hash=?",
                   ReadEnrollToken, token_hash);
}

Status SqliteStore::MarkEnrollTokenUsed(const std::string& token_hash, const std::string& agent) {
  return Write("mark enroll token used", [&] {
    if (Exec("UPDATE enroll_tokens SET used_by = CASE WHEN used_by = '' THEN ?1 "
             "ELSE used_by || ',' || ?1 END WHERE token_hash = ?2",
             agent, token_hash) == 0)
      return NotFound("enrollment token not found");
    return Status::Ok();
  });
}

}  // namespace reprise
