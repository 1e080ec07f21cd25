// SqlStore, agent aggregate: agents and enrollment tokens.
#include "server/store/sql_store_internal.h"

namespace reprise {
namespace {
constexpr const char* kAgentColumns =
    "SELECT name, status, secret_hash, key_fingerprint, version, created_at, last_seen, "
    "public_key FROM agents";

using Agt = AgentRecord;
constexpr auto ReadAgent =
    ReadFields<&Agt::name, &Agt::status, &Agt::secret_hash, &Agt::key_fingerprint, &Agt::version,
               &Agt::created_at, &Agt::last_seen, &Agt::public_key>;

using Enr = EnrollTokenRecord;
constexpr auto ReadEnrollToken = ReadFields<&Enr::token_hash, &Enr::pre_approved, &Enr::created_by,
                                            &Enr::created_at, &Enr::expires_at, &Enr::used_by>;

}  // namespace

Status SqlStore::PutAgent(const AgentRecord& a) {
  return Execute("put agent",
                 UpsertSql("agents", "name",
                           {"name", "status", "secret_hash", "key_fingerprint", "version",
                            "created_at", "last_seen", "public_key"},
                           {"created_at"}),
                 a.name, a.status, a.secret_hash, a.key_fingerprint, a.version, a.created_at,
                 a.last_seen, a.public_key);
}

Result<AgentRecord> SqlStore::GetAgent(const std::string& name) {
  return GetByName(kAgentColumns, ReadAgent, "agent", name);
}

Result<std::vector<AgentRecord>> SqlStore::ListAgents(const Page& page) {
  return ListByName(kAgentColumns, ReadAgent, page);
}

Status SqlStore::CreateEnrollToken(const EnrollTokenRecord& t) {
  return Execute("create enroll token",
                 InsertSql("enroll_tokens", {"token_hash", "pre_approved", "created_by",
                                             "created_at", "expires_at", "used_by"}),
                 t.token_hash, t.pre_approved, t.created_by, t.created_at, t.expires_at, t.used_by);
}

Result<EnrollTokenRecord> SqlStore::FindEnrollToken(const std::string& token_hash) {
  return SelectOne("enrollment token",
                   "SELECT token_hash, pre_approved, created_by, created_at, expires_at, used_by "
                   "FROM enroll_tokens WHERE token_hash=?",
                   ReadEnrollToken, token_hash);
}

Status SqlStore::MarkEnrollTokenUsed(const std::string& token_hash, const std::string& agent) {
  return Write("mark enroll token used", [&] {
    if (Exec("UPDATE enroll_tokens SET used_by = CASE WHEN used_by = '' THEN ?1 "
             "ELSE used_by || ',' || ?1 END WHERE token_hash = ?2",
             agent, token_hash) == 0)
      return NotFound("enrollment token not found");
    return Status::Ok();
  });
}

}  // namespace reprise
