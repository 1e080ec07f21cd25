#include "server/store/sqlite_migrations.h"

namespace reprise {

namespace {

// The schema's history, oldest first: a table of SQL texts, never edited
// once released (a change is a new entry at the end).
constexpr std::string_view kMigrations[] = {
    // 1: the initial schema.
    R"sql(
CREATE TABLE environments (
  name TEXT PRIMARY KEY,
  variables_json TEXT NOT NULL DEFAULT '{}',
  updated_at INTEGER NOT NULL
);
CREATE TABLE agents (
  name TEXT PRIMARY KEY,
  status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'refused')),
  secret_hash TEXT NOT NULL DEFAULT '',
  key_fingerprint TEXT NOT NULL DEFAULT '',
  version TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  last_seen INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE targets (
  name TEXT PRIMARY KEY,
  environment TEXT NOT NULL REFERENCES environments(name),
  agent TEXT NOT NULL,
  path TEXT NOT NULL,
  variables_json TEXT NOT NULL DEFAULT '{}',
  updated_at INTEGER NOT NULL
);
CREATE TABLE applications (
  name TEXT PRIMARY KEY,
  spec_version INTEGER NOT NULL,
  spec_json TEXT NOT NULL,
  spec_text TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  updated_by TEXT NOT NULL,
  hold_json TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE application_specs (
  application TEXT NOT NULL REFERENCES applications(name),
  version INTEGER NOT NULL,
  spec_json TEXT NOT NULL,
  spec_text TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  created_by TEXT NOT NULL,
  PRIMARY KEY (application, version)
);
CREATE TABLE releases (
  application TEXT NOT NULL REFERENCES applications(name),
  number TEXT NOT NULL,
  spec_version INTEGER NOT NULL,
  snapshot_json TEXT NOT NULL,
  variables_json TEXT NOT NULL DEFAULT '{}',
  created_at INTEGER NOT NULL,
  created_by TEXT NOT NULL,
  PRIMARY KEY (application, number)
);
CREATE TABLE builds (
  application TEXT NOT NULL,
  release TEXT NOT NULL,
  number INTEGER NOT NULL,
  variables_json TEXT NOT NULL DEFAULT '{}',
  created_at INTEGER NOT NULL,
  created_by TEXT NOT NULL,
  PRIMARY KEY (application, release, number),
  FOREIGN KEY (application, release) REFERENCES releases(application, number)
);
CREATE TABLE artifacts (
  application TEXT NOT NULL,
  release TEXT NOT NULL,
  build INTEGER NOT NULL,
  name TEXT NOT NULL,
  sha256 TEXT NOT NULL,
  size INTEGER NOT NULL,
  file_count INTEGER NOT NULL,
  manifest_json TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  created_by TEXT NOT NULL,
  PRIMARY KEY (application, release, build, name),
  FOREIGN KEY (application, release, build) REFERENCES builds(application, release, number)
);
CREATE INDEX artifacts_by_sha ON artifacts(sha256);
CREATE TABLE deployments (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  application TEXT NOT NULL,
  release TEXT NOT NULL,
  build INTEGER NOT NULL,
  stage TEXT NOT NULL,
  kind TEXT NOT NULL,
  status TEXT NOT NULL,
  scheduled_at INTEGER,
  expires_after_ms INTEGER NOT NULL DEFAULT 3600000,
  forced INTEGER NOT NULL DEFAULT 0,
  context_choice TEXT NOT NULL DEFAULT 'as-deployed',
  variables_json TEXT NOT NULL DEFAULT '{}',
  comment TEXT NOT NULL DEFAULT '',
  requested_by TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  started_at INTEGER,
  finished_at INTEGER,
  context_json TEXT,
  error TEXT NOT NULL DEFAULT '',
  FOREIGN KEY (application, release, build) REFERENCES builds(application, release, number)
);
CREATE INDEX deployments_by_status ON deployments(status, scheduled_at);
CREATE INDEX deployments_by_stage ON deployments(application, stage, id);
CREATE TABLE deployment_targets (
  deployment_id INTEGER NOT NULL REFERENCES deployments(id),
  target TEXT NOT NULL,
  status TEXT NOT NULL,
  message TEXT NOT NULL DEFAULT '',
  release_dir TEXT NOT NULL DEFAULT '',
  manifest_sha256 TEXT NOT NULL DEFAULT '',
  started_at INTEGER,
  finished_at INTEGER,
  PRIMARY KEY (deployment_id, target)
);
CREATE TABLE deployment_logs (
  deployment_id INTEGER NOT NULL REFERENCES deployments(id),
  seq INTEGER NOT NULL,
  at INTEGER NOT NULL,
  target TEXT NOT NULL DEFAULT '',
  line TEXT NOT NULL,
  PRIMARY KEY (deployment_id, seq)
);
CREATE TABLE approvals (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  deployment_id INTEGER NOT NULL REFERENCES deployments(id),
  user TEXT NOT NULL,
  decision TEXT NOT NULL CHECK (decision IN ('approved', 'rejected')),
  comment TEXT NOT NULL DEFAULT '',
  at INTEGER NOT NULL,
  revoked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE users (
  name TEXT PRIMARY KEY,
  role TEXT NOT NULL CHECK (role IN ('viewer', 'deployer', 'release-manager', 'admin')),
  password_hash TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL
);
CREATE TABLE api_tokens (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  user TEXT NOT NULL REFERENCES users(name),
  name TEXT NOT NULL,
  token_hash TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL
);
CREATE TABLE audit_log (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at INTEGER NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  subject TEXT NOT NULL,
  summary TEXT NOT NULL
);
)sql",
    // 2: agent enrollment tokens; an agent's public key (it proves its
    // identity by signing a challenge; the server never holds its secret).
    R"sql(
CREATE TABLE enroll_tokens (
  token_hash TEXT PRIMARY KEY,
  pre_approved INTEGER NOT NULL DEFAULT 0,
  created_by TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  used_by TEXT NOT NULL DEFAULT ''
);
ALTER TABLE agents ADD COLUMN public_key TEXT NOT NULL DEFAULT '';
)sql",
    // 3: what the engine needs beside the initial deployment tables.
    R"sql(
ALTER TABLE deployments ADD COLUMN targets_csv TEXT NOT NULL DEFAULT '';
ALTER TABLE deployments ADD COLUMN automatic INTEGER NOT NULL DEFAULT 0;
ALTER TABLE deployment_logs ADD COLUMN level TEXT NOT NULL DEFAULT 'info';
CREATE INDEX deployment_targets_by_target ON deployment_targets(target, status);
CREATE INDEX approvals_by_deployment ON approvals(deployment_id);
CREATE INDEX deployments_scheduled ON deployments(scheduled_at) WHERE status = 'scheduled';
-- What each target holds, as its agent reported it after the last deployment.
CREATE TABLE target_states (
  target TEXT PRIMARY KEY,
  application TEXT NOT NULL,
  stage TEXT NOT NULL,
  release TEXT NOT NULL,
  build INTEGER NOT NULL,
  deployment_id INTEGER NOT NULL,
  at INTEGER NOT NULL,
  by TEXT NOT NULL,
  release_dir TEXT NOT NULL DEFAULT ''
);
CREATE INDEX target_states_by_stage ON target_states(application, stage);
)sql",
    // 4: the dispatcher and the gate re-check walk deployments oldest first.
    R"sql(
CREATE INDEX deployments_by_status_id ON deployments(status, id);
)sql",
    // 5: one standing decision per user and deployment. Duplicate standing
    // approvals from before are revoked (the oldest stays), so one user can
    // no longer satisfy "count: 2" alone.
    R"sql(
UPDATE approvals SET revoked = 1
 WHERE revoked = 0
   AND id NOT IN (SELECT MIN(id) FROM approvals WHERE revoked = 0 GROUP BY deployment_id, user);
CREATE UNIQUE INDEX approvals_one_standing_per_user ON approvals(deployment_id, user)
 WHERE revoked = 0;
)sql",
    // 6: per-user permissions on an environment beside the role, e.g.
    // 'redeploy': re-deploying an earlier build to its protected stages.
    R"sql(
CREATE TABLE grants (
  environment TEXT NOT NULL REFERENCES environments(name),
  user TEXT NOT NULL REFERENCES users(name),
  permission TEXT NOT NULL CHECK (permission IN ('redeploy')),
  granted_by TEXT NOT NULL,
  granted_at INTEGER NOT NULL,
  PRIMARY KEY (environment, user, permission)
);
)sql",
    // 7: the builds that succeeded on each stage (rollback candidates, the
    // kind of a deployment), newest success of each build, kept by
    // triggers so reading them does not walk the stage's whole history.
    R"sql(
CREATE TABLE stage_builds (
  application TEXT NOT NULL,
  stage TEXT NOT NULL,
  release TEXT NOT NULL,
  build INTEGER NOT NULL,
  deployment_id INTEGER NOT NULL,
  finished_at INTEGER NOT NULL,
  requested_by TEXT NOT NULL,
  PRIMARY KEY (application, stage, release, build)
);
CREATE INDEX stage_builds_newest
  ON stage_builds(application, stage, finished_at DESC, deployment_id DESC);
INSERT INTO stage_builds
  SELECT application, stage, release, build, id, finished, requested_by FROM (
    SELECT application, stage, release, build, id, COALESCE(finished_at, 0) AS finished,
           requested_by,
           ROW_NUMBER() OVER (PARTITION BY application, stage, release, build
                              ORDER BY COALESCE(finished_at, 0) DESC, id DESC) AS rn
      FROM deployments WHERE status = 'succeeded')
   WHERE rn = 1;
CREATE TRIGGER stage_builds_on_success AFTER UPDATE OF status ON deployments
  WHEN NEW.status = 'succeeded' AND OLD.status != 'succeeded'
BEGIN
  INSERT INTO stage_builds VALUES (NEW.application, NEW.stage, NEW.release, NEW.build, NEW.id,
                                   COALESCE(NEW.finished_at, 0), NEW.requested_by)
  ON CONFLICT (application, stage, release, build) DO UPDATE
    SET deployment_id = excluded.deployment_id, finished_at = excluded.finished_at,
        requested_by = excluded.requested_by
    WHERE excluded.finished_at > stage_builds.finished_at
       OR (excluded.finished_at = stage_builds.finished_at
           AND excluded.deployment_id > stage_builds.deployment_id);
END;
CREATE TRIGGER stage_builds_on_insert AFTER INSERT ON deployments
  WHEN NEW.status = 'succeeded'
BEGIN
  INSERT INTO stage_builds VALUES (NEW.application, NEW.stage, NEW.release, NEW.build, NEW.id,
                                   COALESCE(NEW.finished_at, 0), NEW.requested_by)
  ON CONFLICT (application, stage, release, build) DO UPDATE
    SET deployment_id = excluded.deployment_id, finished_at = excluded.finished_at,
        requested_by = excluded.requested_by
    WHERE excluded.finished_at > stage_builds.finished_at
       OR (excluded.finished_at = stage_builds.finished_at
           AND excluded.deployment_id > stage_builds.deployment_id);
END;
)sql",
    // 8: retention keeps artifact records as tombstones (the bytes go, the
    // record and its hash stay); builds sealed by hand; a build's
    // deployments (which seal it) found by build.
    R"sql(
ALTER TABLE artifacts ADD COLUMN blob_removed_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE builds ADD COLUMN sealed_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE builds ADD COLUMN sealed_by TEXT NOT NULL DEFAULT '';
CREATE INDEX deployments_by_build ON deployments(application, release, build, id);
)sql",
    // 9: irreversible_steps: the irreversible plan steps that ran, per target,
    // for the warnings and undo steps of a rollback across them.
    R"sql(
CREATE TABLE irreversible_steps (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  deployment_id INTEGER NOT NULL REFERENCES deployments(id),
  application TEXT NOT NULL,
  stage TEXT NOT NULL,
  release TEXT NOT NULL,
  build INTEGER NOT NULL,
  step_id TEXT NOT NULL,
  position TEXT NOT NULL,
  label TEXT NOT NULL,
  target TEXT NOT NULL,
  ran_at INTEGER NOT NULL,
  outcome TEXT NOT NULL,
  note TEXT NOT NULL,
  has_undo INTEGER NOT NULL
);
CREATE INDEX irreversible_steps_by_stage ON irreversible_steps(application, stage, ran_at, id);
)sql",
    // 10: selective rollback records (a record of a succeeded deployment, its
    // targets, components, approvals; the execution is a deployment).
    R"sql(
CREATE TABLE rollback_records (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  deployment_id INTEGER NOT NULL REFERENCES deployments(id),
  application TEXT NOT NULL,
  stage TEXT NOT NULL,
  release TEXT NOT NULL,
  build INTEGER NOT NULL,
  status TEXT NOT NULL,
  comment TEXT NOT NULL DEFAULT '',
  created_by TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  submitted_by TEXT NOT NULL DEFAULT '',
  submitted_at INTEGER NOT NULL DEFAULT 0,
  executed_by TEXT NOT NULL DEFAULT '',
  executed_at INTEGER NOT NULL DEFAULT 0,
  execution_deployment_id INTEGER NOT NULL DEFAULT 0,
  scheduled_at INTEGER NOT NULL DEFAULT 0,
  finished_at INTEGER NOT NULL DEFAULT 0,
  validated_by TEXT NOT NULL DEFAULT '',
  validated_at INTEGER NOT NULL DEFAULT 0,
  validation_json TEXT NOT NULL DEFAULT '',
  connection_json TEXT NOT NULL DEFAULT '',
  connection_checked_at INTEGER NOT NULL DEFAULT 0,
  connection_ok INTEGER NOT NULL DEFAULT 0,
  error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX rollback_records_by_stage ON rollback_records(application, stage, id);
CREATE INDEX rollback_records_by_execution ON rollback_records(execution_deployment_id)
  WHERE execution_deployment_id != 0;
CREATE TABLE rollback_record_targets (
  record_id INTEGER NOT NULL REFERENCES rollback_records(id),
  target TEXT NOT NULL,
  release_dir TEXT NOT NULL,
  manifest_json TEXT NOT NULL,
  manifest_hash TEXT NOT NULL,
  artifact TEXT NOT NULL,
  previous_deployment_id INTEGER NOT NULL,
  previous_release TEXT NOT NULL,
  previous_build INTEGER NOT NULL,
  previous_release_dir TEXT NOT NULL,
  previous_artifact TEXT NOT NULL,
  previous_sha256 TEXT NOT NULL,
  previous_manifest_json TEXT NOT NULL,
  previous_manifest_hash TEXT NOT NULL,
  composed_manifest_json TEXT NOT NULL,
  composed_manifest_hash TEXT NOT NULL,
  PRIMARY KEY (record_id, target)
);
CREATE TABLE rollback_record_components (
  record_id INTEGER NOT NULL REFERENCES rollback_records(id),
  target TEXT NOT NULL,
  path TEXT NOT NULL,
  type TEXT NOT NULL,
  selected INTEGER NOT NULL,
  PRIMARY KEY (record_id, target, path)
);
CREATE TABLE rollback_record_approvals (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  record_id INTEGER NOT NULL REFERENCES rollback_records(id),
  user TEXT NOT NULL,
  decision TEXT NOT NULL,
  comment TEXT NOT NULL DEFAULT '',
  at INTEGER NOT NULL,
  UNIQUE (record_id, user)
);
)sql",
    // 11: users can be disabled; API tokens expire and record their last
    // use; the audit log is filtered by actor and time.
    R"sql(
ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE api_tokens ADD COLUMN expires_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE api_tokens ADD COLUMN last_used_at INTEGER NOT NULL DEFAULT 0;
CREATE INDEX api_tokens_by_user ON api_tokens(user, id);
CREATE INDEX audit_log_by_actor ON audit_log(actor, id);
CREATE INDEX audit_log_by_at ON audit_log(at);
)sql",
    // 12: global variables: the server-wide, outermost scope of every deployment.
    R"sql(
CREATE TABLE global_variables (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  variables_json TEXT NOT NULL DEFAULT '{}',
  updated_at INTEGER NOT NULL,
  updated_by TEXT NOT NULL
);
)sql",
    // 13: release and build notes (Markdown) and links (http/https URLs).
    R"sql(
ALTER TABLE releases ADD COLUMN notes TEXT NOT NULL DEFAULT '';
ALTER TABLE releases ADD COLUMN links_json TEXT NOT NULL DEFAULT '[]';
ALTER TABLE builds ADD COLUMN notes TEXT NOT NULL DEFAULT '';
ALTER TABLE builds ADD COLUMN links_json TEXT NOT NULL DEFAULT '[]';
)sql",
    // Webhooks and their durable delivery queue (deliveries survive restarts).
    R"sql(
CREATE TABLE webhooks (
  name TEXT PRIMARY KEY,
  url TEXT NOT NULL,
  events_json TEXT NOT NULL DEFAULT '[]',
  secret TEXT NOT NULL DEFAULT '',
  format TEXT NOT NULL DEFAULT 'json',
  enabled INTEGER NOT NULL DEFAULT 1,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  updated_by TEXT NOT NULL DEFAULT ''
);
CREATE TABLE webhook_deliveries (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  webhook TEXT NOT NULL,
  event TEXT NOT NULL,
  data_json TEXT NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  last_attempt_at INTEGER NOT NULL DEFAULT 0,
  response_code INTEGER NOT NULL DEFAULT 0,
  error TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  delivered_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(status, next_attempt_at);
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries(webhook, id);
)sql",
    // Several servers on one store: the server holding a queued or running
    // deployment and until when (its lease), and named leases for work one
    // server does at a time.
    R"sql(
ALTER TABLE deployments ADD COLUMN owner TEXT NOT NULL DEFAULT '';
ALTER TABLE deployments ADD COLUMN lease_until INTEGER NOT NULL DEFAULT 0;
CREATE TABLE leases (
  name TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  lease_until INTEGER NOT NULL
);
)sql",
};

}  // namespace

const std::vector<std::string_view>& SqliteMigrations() {
  static const std::vector<std::string_view> migrations(std::begin(kMigrations),
                                                        std::end(kMigrations));
  return migrations;
}

}  // namespace reprise
