// Two (or more) real reprise-server processes on one store, and real
// reprise-agent processes connected to some of them, for the several-servers
// tests. The store is one SQLite file the servers share (WAL; BEGIN
// IMMEDIATE serialises writers across processes): the second server's data
// directory links its reprise.db to the first one's; all share one
// --artifact-dir. Not thread-safe; one per test.
#pragma once

#include <doctest/doctest.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "server/store/store.h"
#include "tests/server/engine/engine_test_support.h"
#include "tests/support/pg_cluster.h"
#include "tests/support/server_process.h"

namespace reprise::testing {

// One server of the cluster: its process, its id and its agent port.
struct ClusterServer {
  std::string id;
  std::filesystem::path data;
  std::unique_ptr<ServerProcess> process;
  int agent_port = 0;

  HttpClient Admin() const { return process->Admin(); }
  std::string Agents() const { return "127.0.0.1:" + std::to_string(agent_port); }
};

class Cluster {
 public:
  // Starts servers named `ids`, each with a lease of `lease_ms`.
  Cluster(const std::vector<std::string>& ids, int lease_ms) : lease_ms_(lease_ms) {
    if (TestStoreIsPostgres()) store_url_ = PgCluster::Shared().DatabaseFor(tmp_.path());
    for (const auto& id : ids) Start(id);
  }

  ClusterServer& operator[](size_t i) { return servers_.at(i); }
  const std::filesystem::path& scratch() const { return tmp_.path(); }

  // The store the servers share, opened by the test itself (to read what
  // the servers wrote: leases, owners).
  std::unique_ptr<Store> OpenStore() const {
    auto s = store_url_.empty()
                 ? OpenSqliteStore({(servers_.at(0).data / "reprise.db").string(), 5000})
                 : reprise::OpenStore(store_url_);
    REQUIRE_MESSAGE(s.ok(), s.status().ToString());
    return std::move(s).value();
  }

  // Starts reprise-agent `name` on `root`, connected to the servers `to`
  // (indexes), with a fresh pre-approved token from the first of them; waits
  // until each of them sees it online.
  std::unique_ptr<AgentProcess> StartAgent(const std::string& name,
                                           const std::filesystem::path& root,
                                           const std::vector<size_t>& to) {
    auto admin = servers_.at(to.at(0)).Admin();
    auto token = admin.Post("/api/v1/agents/enrollment-tokens", R"({"pre_approved": true})");
    REQUIRE_MESSAGE(token.status / 100 == 2, token.body);
    std::string list;
    for (size_t i : to) list += (list.empty() ? "" : ",") + servers_.at(i).Agents();
    auto agent = std::make_unique<AgentProcess>(
        std::vector<std::string>{"--server", list, "--name", name, "--root", root.string(),
                                 "--enroll-token", Body(token)["token"].get<std::string>(),
                                 "--plain", "--no-fsync", "--heartbeat-ms", "200", "--state",
                                 (scratch() / (name + "-state")).string()},
        scratch() / (name + ".log"));
    for (size_t i : to)
      REQUIRE_MESSAGE(WaitUntil([&] { return Online(i, name); }), "agent ", name,
                      " did not come online on ", servers_.at(i).id, ": ", agent->Log(),
                      servers_.at(i).process->Log());
    return agent;
  }

  // Whether server `i` holds a connection to agent `name`.
  bool Online(size_t i, const std::string& name) {
    auto agents = Body(servers_.at(i).Admin().Get("/api/v1/agents"));
    for (const auto& a : agents["items"])
      if (a["name"] == name) return a["online"] == true;
    return false;
  }

 private:
  void Start(const std::string& id) {
    ClusterServer s;
    s.id = id;
    s.data = tmp_.path() / id;
    std::filesystem::create_directories(s.data);
    std::vector<std::string> flags = {"--agent-port", "0", "--agent-plain", "--server-id", id,
                                      "--lease-ms", std::to_string(lease_ms_), "--artifact-dir",
                                      (tmp_.path() / "artifacts").string()};
    if (!store_url_.empty()) {
      flags.insert(flags.end(), {"--store", store_url_});
    } else if (!servers_.empty()) {
      // The first server made the store.
      std::filesystem::create_symlink(servers_.front().data / "reprise.db", s.data / "reprise.db");
    }
    s.process = std::make_unique<ServerProcess>(
        ServerArgs(s.data, flags),
        tmp_.path() / (id + ".log"));
    s.agent_port = s.process->agent_port();
    REQUIRE_MESSAGE(s.agent_port > 0, s.process->Log());
    servers_.push_back(std::move(s));
  }

  TempDir tmp_;
  std::string store_url_;  // PostgreSQL's; empty: the first server's SQLite file
  int lease_ms_;
  std::vector<ClusterServer> servers_;
};

}  // namespace reprise::testing
