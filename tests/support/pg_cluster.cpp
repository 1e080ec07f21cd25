// PgCluster: initdb + pg_ctl in a temporary directory, a superuser
// connection for CREATE/DROP DATABASE, and a watchdog that stops the cluster
// if this process dies without running its exit handlers.
#include "tests/support/pg_cluster.h"

#include <fcntl.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "tests/support/wait.h"
#include "tests/temp_dir.h"

extern char** environ;

namespace reprise::testing {

namespace {

constexpr const char* kSuperuser = "reprise";

std::filesystem::path PostgresBinDir() {
  if (const char* dir = std::getenv("REPRISE_PG_BIN"); dir != nullptr && *dir != '\0') return dir;
  return "/usr/lib/postgresql/15/bin";
}

// Starts `argv` (as the postgres user when we are root) with stdout and
// stderr appended to `log`, stdin from `stdin_fd` (or /dev/null), in `cwd`.
pid_t SpawnAs(bool as_postgres, std::vector<std::string> argv, const std::filesystem::path& log,
              const std::filesystem::path& cwd, int stdin_fd = -1) {
  if (as_postgres) argv.insert(argv.begin(), {"/usr/sbin/runuser", "-u", "postgres", "--"});
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (stdin_fd >= 0)
    posix_spawn_file_actions_adddup2(&fa, stdin_fd, 0);
  else
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);
  posix_spawn_file_actions_addchdir_np(&fa, cwd.c_str());
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, args[0], &fa, &attr, args.data(), environ);
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&fa);
  return rc == 0 ? pid : -1;
}

// Waits (bounded) for `pid`; its exit code, or -1.
int WaitExit(pid_t pid, std::chrono::milliseconds limit) {
  int status = 0;
  bool done = WaitUntil([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }, limit);
  if (!done) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

struct ConnDeleter {
  void operator()(PGconn* c) const { PQfinish(c); }
};

}  // namespace

bool TestStoreIsPostgres() {
  const char* store = std::getenv("REPRISE_TEST_STORE");
  return store != nullptr && std::string(store) == "postgres";
}

struct PgCluster::Impl {
  bool as_postgres = ::geteuid() == 0;
  std::filesystem::path dir;  // socket, data/, log
  int port = 0;
  pid_t watchdog = -1;
  int watchdog_fd = -1;  // its stdin: closing it (or dying) makes it stop the cluster
  std::mutex mu;
  std::unique_ptr<PGconn, ConnDeleter> admin;
  int next_database = 0;
  std::map<std::filesystem::path, std::string> owned;  // owner directory -> database

  std::filesystem::path data() const { return dir / "data"; }
  std::filesystem::path log() const { return dir / "setup.log"; }

  void Run(std::vector<std::string> argv, const std::string& what) {
    pid_t pid = SpawnAs(as_postgres, std::move(argv), log(), dir);
    if (pid < 0) throw std::runtime_error("PgCluster: cannot start " + what);
    if (WaitExit(pid, std::chrono::seconds(120)) != 0)
      throw std::runtime_error("PgCluster: " + what + " failed:\n" + ReadFile(log()));
  }

  void MakeDirectory() {
    if (!std::filesystem::exists(PostgresBinDir() / "initdb"))
      throw std::runtime_error("PgCluster: no PostgreSQL 15 in " + PostgresBinDir().string() +
                               " (scripts/install-deps.sh installs postgresql-15)");
    std::string tmpl = (TestTempRoot() / "reprise-pg-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("PgCluster: mkdtemp failed");
    dir = tmpl;
    if (as_postgres) {
      const passwd* pw = ::getpwnam("postgres");
      if (pw == nullptr || ::chown(dir.c_str(), pw->pw_uid, pw->pw_gid) != 0)
        throw std::runtime_error("PgCluster: no 'postgres' user to run the cluster as root");
    }
    port = 20000 + static_cast<int>(::getpid() % 20000);
  }

  // A shell that waits for EOF on its stdin, then stops the cluster and
  // removes its directory: it outlives this process if this one dies.
  void StartWatchdog() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("PgCluster: pipe failed");
    std::string stop = (PostgresBinDir() / "pg_ctl").string() + " stop -D " +
                       ShellQuote(data().string()) + " -m immediate -w -t 30";
    if (as_postgres) stop = "/usr/sbin/runuser -u postgres -- " + stop;
    std::string script =
        "cat >/dev/null; " + stop + " >/dev/null 2>&1; rm -rf " + ShellQuote(dir.string());
    watchdog = SpawnAs(false, {"/bin/sh", "-c", script}, "/dev/null", "/", fds[0]);
    ::close(fds[0]);
    watchdog_fd = fds[1];
    if (watchdog < 0) throw std::runtime_error("PgCluster: cannot start the watchdog");
  }

  void InitAndStart() {
    const auto bin = PostgresBinDir();
    Run({(bin / "initdb").string(), "-D", data().string(), "-A", "trust", "-U", kSuperuser, "-E",
         "UTF8", "--locale=C", "--no-sync", "--no-instructions"},
        "initdb");
    {
      std::ofstream conf(data() / "postgresql.conf", std::ios::app);
      conf << "\nlisten_addresses = ''\n"
           << "unix_socket_directories = '" << dir.string() << "'\n"
           << "port = " << port << "\n"
           << "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
           << "max_connections = 300\nshared_buffers = 32MB\n";
    }
    Run({(bin / "pg_ctl").string(), "start", "-D", data().string(), "-l",
         (dir / "server.log").string(), "-w", "-t", "60"},
        "pg_ctl start");
    admin.reset(PQconnectdb(UrlOf("postgres").c_str()));
    if (PQstatus(admin.get()) != CONNECTION_OK)
      throw std::runtime_error("PgCluster: cannot connect: " +
                               std::string(PQerrorMessage(admin.get())));
  }

  void Stop() {
    admin.reset();
    if (!dir.empty() && std::filesystem::exists(data() / "postmaster.pid")) {
      pid_t pid = SpawnAs(as_postgres,
                          {(PostgresBinDir() / "pg_ctl").string(), "stop", "-D", data().string(),
                           "-m", "immediate", "-w", "-t", "30"},
                          log(), dir);
      if (pid >= 0) WaitExit(pid, std::chrono::seconds(60));
    }
    if (watchdog_fd >= 0) ::close(watchdog_fd);  // the watchdog removes the directory
    watchdog_fd = -1;
    if (watchdog > 0) WaitExit(watchdog, std::chrono::seconds(60));
    watchdog = -1;
    std::error_code ec;
    if (!dir.empty()) std::filesystem::remove_all(dir, ec);
  }

  std::string UrlOf(const std::string& database) const {
    return "postgresql:///" + database + "?host=" + dir.string() + "&port=" + std::to_string(port) +
           "&user=" + kSuperuser;
  }

  // Runs `sql` on the admin connection (mu held).
  void AdminExec(const std::string& sql) {
    PGresult* r = PQexec(admin.get(), sql.c_str());
    const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    std::string message = PQerrorMessage(admin.get());
    PQclear(r);
    if (!ok) throw std::runtime_error("PgCluster: " + sql + ": " + message);
  }
};

PgCluster& PgCluster::Shared() {
  static PgCluster cluster;
  return cluster;
}

PgCluster::PgCluster() : impl_(new Impl) {
  try {
    impl_->MakeDirectory();
    impl_->StartWatchdog();
    impl_->InitAndStart();
  } catch (...) {
    impl_->Stop();
    delete impl_;
    throw;
  }
}

PgCluster::~PgCluster() {
  impl_->Stop();
  delete impl_;
}

std::string PgCluster::CreateDatabase() {
  std::lock_guard lock(impl_->mu);
  std::string name = "reprise_test_" + std::to_string(++impl_->next_database);
  impl_->AdminExec("CREATE DATABASE " + name +
                   " TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'");
  return impl_->UrlOf(name);
}

std::string PgCluster::DatabaseFor(const std::filesystem::path& owner) {
  {
    std::lock_guard lock(impl_->mu);
    if (auto it = impl_->owned.find(owner); it != impl_->owned.end())
      return impl_->UrlOf(it->second);
    for (auto it = impl_->owned.begin(); it != impl_->owned.end();) {
      std::error_code ec;
      if (std::filesystem::exists(it->first, ec)) {
        ++it;
        continue;
      }
      impl_->AdminExec("DROP DATABASE IF EXISTS " + it->second + " WITH (FORCE)");
      it = impl_->owned.erase(it);
    }
  }
  std::string url = CreateDatabase();
  std::lock_guard lock(impl_->mu);
  impl_->owned[owner] = "reprise_test_" + std::to_string(impl_->next_database);
  return url;
}

void PgCluster::DropDatabase(const std::string& name) {
  std::lock_guard lock(impl_->mu);
  impl_->AdminExec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
}

std::string PgCluster::Url(const std::string& database) const { return impl_->UrlOf(database); }

void PgCluster::Execute(const std::string& database, const std::string& sql) {
  std::unique_ptr<PGconn, ConnDeleter> conn(PQconnectdb(impl_->UrlOf(database).c_str()));
  if (PQstatus(conn.get()) != CONNECTION_OK)
    throw std::runtime_error("PgCluster: cannot connect to " + database);
  PGresult* r = PQexec(conn.get(), sql.c_str());
  const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
  std::string message = PQerrorMessage(conn.get());
  PQclear(r);
  if (!ok) throw std::runtime_error("PgCluster: " + sql + ": " + message);
}

const std::filesystem::path& PgCluster::socket_dir() const { return impl_->dir; }
int PgCluster::port() const { return impl_->port; }

}  // namespace reprise::testing
