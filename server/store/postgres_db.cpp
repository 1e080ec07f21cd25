// PostgresDb: SqlDb over libpq. Statements are prepared once per connection
// (PQprepare, then PQexecPrepared: the store runs the same few hundred
// statements thousands of times, and parsing and planning each one again
// cost the database more than running it), with typed parameters (int8,
// text) in text format; results come back as text and are parsed here, so
// the store reads the same values from both engines.
#include "server/store/postgres_db.h"

#include <libpq-fe.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <unordered_map>

namespace reprise {

namespace {

constexpr Oid kInt8Oid = 20;
constexpr Oid kTextOid = 25;
// Statements kept prepared per connection; past it, the rest go unprepared.
constexpr size_t kMaxPreparedStatements = 1024;

// The password libpq would use for `url` (empty when none or unparsable).
std::string PasswordOf(const std::string& url) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(url.c_str(), &error);
  if (error != nullptr) PQfreemem(error);
  if (options == nullptr) return "";
  std::string password;
  for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    if (std::strcmp(o->keyword, "password") == 0 && o->val != nullptr) password = o->val;
  }
  PQconninfoFree(options);
  return password;
}

// `message` without any occurrence of `secret`.
std::string Scrub(std::string message, const std::string& secret) {
  if (secret.empty()) return message;
  for (size_t at = message.find(secret); at != std::string::npos;
       at = message.find(secret, at + 3)) {
    message.replace(at, secret.size(), "***");
  }
  return message;
}

std::string TrimmedMessage(const char* text) {
  std::string message = text != nullptr ? text : "";
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  return message;
}

SqlError::Kind KindOfState(std::string_view state) {
  if (state.substr(0, 2) == "23") return SqlError::Kind::kConstraint;
  if (state == "40P01" || state == "40001" || state == "55P03") return SqlError::Kind::kBusy;
  return SqlError::Kind::kOther;
}

// An integer column's text: "12", "-3", "12.000" (numeric, truncated), "t"/"f".
int64_t ParseInteger(const char* text, int column) {
  if (text[0] == '\0') return 0;
  if (text[0] == 't' && text[1] == '\0') return 1;
  if (text[0] == 'f' && text[1] == '\0') return 0;
  errno = 0;
  char* end = nullptr;
  long long value = std::strtoll(text, &end, 10);
  if (errno == 0 && end != text && *end == '\0') return value;
  if (errno == 0 && end != text && *end == '.') {
    const char* rest = end + 1;
    while (*rest >= '0' && *rest <= '9') ++rest;
    if (*rest == '\0') return value;
  }
  errno = 0;
  double real = std::strtod(text, &end);
  if (errno == 0 && end != text && *end == '\0' && std::isfinite(real) && real > -9.2e18 &&
      real < 9.2e18) {
    return static_cast<int64_t>(real);
  }
  throw SqlError(SqlError::Kind::kOther,
                 "column " + std::to_string(column) + " does not hold an integer");
}

class PostgresRow final : public SqlRow {
 public:
  PostgresRow(const PGresult* result, int row) : result_(result), row_(row) {}
  bool IsNull(int column) const override {
    Check(column);
    return PQgetisnull(result_, row_, column) != 0;
  }
  int64_t Int64(int column) const override {
    if (IsNull(column)) return 0;
    return ParseInteger(PQgetvalue(result_, row_, column), column);
  }
  std::string Text(int column) const override {
    if (IsNull(column)) return "";
    return std::string(PQgetvalue(result_, row_, column),
                       static_cast<size_t>(PQgetlength(result_, row_, column)));
  }

 private:
  void Check(int column) const {
    if (column < 0 || column >= PQnfields(result_))
      throw SqlError(SqlError::Kind::kOther, "no column " + std::to_string(column) +
                                                 " in a row of " +
                                                 std::to_string(PQnfields(result_)));
  }
  const PGresult* result_;
  int row_;
};

// Owns a PGresult.
struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using ResultPtr = std::unique_ptr<PGresult, ResultDeleter>;

void IgnoreNotice(void*, const char*) {}

bool IsSavepointName(std::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  for (char c : name) {
    bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    if (!ok) return false;
  }
  return true;
}

class PostgresDb final : public SqlDb {
 public:
  explicit PostgresDb(const PostgresConnectOptions& options)
      : url_(options.url),
        password_(PasswordOf(options.url)),
        busy_timeout_ms_(options.busy_timeout_ms) {
    conn_ = PQconnectdb(url_.c_str());
    if (conn_ == nullptr) throw SqlError(SqlError::Kind::kOther, "cannot connect to PostgreSQL");
    if (PQstatus(conn_) != CONNECTION_OK) {
      std::string message = ConnectionMessage("cannot connect to PostgreSQL");
      PQfinish(conn_);
      conn_ = nullptr;
      throw SqlError(SqlError::Kind::kOther, message);
    }
    PrepareSession();
  }
  ~PostgresDb() override {
    if (conn_ != nullptr) PQfinish(conn_);
  }
  PostgresDb(const PostgresDb&) = delete;
  PostgresDb& operator=(const PostgresDb&) = delete;

  SqlDialect Dialect() const override { return SqlDialect::kPostgres; }

  int64_t Run(std::string_view sql, const std::vector<SqlValue>& params,
              const std::function<void(const SqlRow&)>& on_row) override {
    EnsureConnected();
    const std::string text = RewritePlaceholders(sql);
    std::vector<Oid> types(params.size(), 0);
    std::vector<std::string> storage(params.size());
    std::vector<const char*> values(params.size(), nullptr);
    for (size_t i = 0; i < params.size(); ++i) {
      if (const auto* n = std::get_if<int64_t>(&params[i])) {
        types[i] = kInt8Oid;
        storage[i] = std::to_string(*n);
        values[i] = storage[i].c_str();
      } else if (const auto* s = std::get_if<std::string>(&params[i])) {
        types[i] = kTextOid;
        values[i] = s->c_str();
      }
    }
    ResultPtr result(Execute(text, types, values));
    if (on_row) {
      const int rows = PQntuples(result.get());
      for (int r = 0; r < rows; ++r) on_row(PostgresRow(result.get(), r));
    }
    const char* affected = PQcmdTuples(result.get());
    return affected[0] == '\0' ? 0 : std::strtoll(affected, nullptr, 10);
  }

  void Script(std::string_view sql) override {
    EnsureConnected();
    Exec(std::string(sql));
  }

  void BeginWrite() override {
    EnsureConnected();
    try {
      Exec("BEGIN");
    } catch (const SqlError&) {
      // The server ended the session since the last statement: nothing of a
      // transaction is lost yet, so connect again and begin there.
      if (PQstatus(conn_) == CONNECTION_OK) throw;
      EnsureConnected();
      Exec("BEGIN");
    }
    in_transaction_ = true;
    try {
      Exec("SELECT pg_advisory_xact_lock(" + std::to_string(kPostgresWriteLockKey) + ")");
    } catch (...) {
      Rollback();
      throw;
    }
  }

  void Commit() override {
    if (!in_transaction_) throw SqlError(SqlError::Kind::kOther, "COMMIT outside a transaction");
    in_transaction_ = false;
    ResultPtr result(PQexec(conn_, "COMMIT"));
    CheckResult(result.get());
    // PostgreSQL answers COMMIT of a transaction that failed with ROLLBACK.
    if (std::strcmp(PQcmdStatus(result.get()), "ROLLBACK") == 0)
      throw SqlError(SqlError::Kind::kOther, "the transaction failed and was rolled back");
  }

  void Rollback() override {
    in_transaction_ = false;
    if (PQstatus(conn_) != CONNECTION_OK) return;  // the server dropped it already
    if (PQtransactionStatus(conn_) == PQTRANS_IDLE) return;
    Exec("ROLLBACK");
  }

  void Savepoint(std::string_view name) override { Exec("SAVEPOINT " + CheckedName(name)); }
  void ReleaseSavepoint(std::string_view name) override {
    Exec("RELEASE SAVEPOINT " + CheckedName(name));
  }
  void RollbackToSavepoint(std::string_view name) override {
    Exec("ROLLBACK TO SAVEPOINT " + CheckedName(name));
  }

 private:
  // Runs `text` as a statement prepared on this connection (prepared on
  // first use; the same text with other parameter types is another one).
  // Throws SqlError when it fails.
  ResultPtr Execute(const std::string& text, const std::vector<Oid>& types,
                    const std::vector<const char*>& values) {
    const int count = static_cast<int>(values.size());
    std::string key = text;
    for (Oid type : types) key += "," + std::to_string(type);
    auto it = prepared_.find(key);
    if (it == prepared_.end() && prepared_.size() < kMaxPreparedStatements) {
      std::string name = "reprise_" + std::to_string(++statements_named_);
      ResultPtr prepared(PQprepare(conn_, name.c_str(), text.c_str(), count, types.data()));
      CheckResult(prepared.get());
      it = prepared_.emplace(std::move(key), std::move(name)).first;
    }
    ResultPtr result(it == prepared_.end() ? PQexecParams(conn_, text.c_str(), count, types.data(),
                                                          values.data(), nullptr, nullptr, 0)
                                           : PQexecPrepared(conn_, it->second.c_str(), count,
                                                            values.data(), nullptr, nullptr, 0));
    try {
      CheckResult(result.get());
    } catch (const SqlError&) {
      // A statement whose tables changed under it (another server migrated
      // the schema: "cached plan must not change result type") is prepared
      // anew next time, under a new name.
      const char* state = PQresultErrorField(result.get(), PG_DIAG_SQLSTATE);
      if (it != prepared_.end() && state != nullptr && std::strcmp(state, "0A000") == 0)
        prepared_.erase(it);
      throw;
    }
    return result;
  }

  // Session settings: how long a lock may be waited for; no notices on stderr.
  void PrepareSession() {
    PQsetNoticeProcessor(conn_, IgnoreNotice, nullptr);
    Exec("SET lock_timeout = " + std::to_string(busy_timeout_ms_ < 0 ? 0 : busy_timeout_ms_));
    Exec("SET client_encoding = 'UTF8'");
  }

  // A connection the server dropped is re-opened between transactions; inside
  // one the transaction is gone and the statement fails.
  void EnsureConnected() {
    if (PQstatus(conn_) == CONNECTION_OK) return;
    if (in_transaction_)
      throw SqlError(SqlError::Kind::kOther, "the connection to PostgreSQL was lost");
    PQreset(conn_);
    prepared_.clear();  // a new session has none of them
    statements_named_ = 0;
    if (PQstatus(conn_) != CONNECTION_OK)
      throw SqlError(SqlError::Kind::kOther, ConnectionMessage("cannot reconnect to PostgreSQL"));
    PrepareSession();
  }

  void Exec(const std::string& sql) {
    ResultPtr result(PQexec(conn_, sql.c_str()));
    CheckResult(result.get());
  }

  void CheckResult(const PGresult* result) {
    ExecStatusType status = result == nullptr ? PGRES_FATAL_ERROR : PQresultStatus(result);
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_EMPTY_QUERY)
      return;
    const char* state = result == nullptr ? nullptr : PQresultErrorField(result, PG_DIAG_SQLSTATE);
    const char* primary =
        result == nullptr ? nullptr : PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY);
    std::string message =
        primary != nullptr ? TrimmedMessage(primary) : TrimmedMessage(PQerrorMessage(conn_));
    if (const char* constraint =
            result == nullptr ? nullptr : PQresultErrorField(result, PG_DIAG_CONSTRAINT_NAME)) {
      message += " (constraint " + std::string(constraint) + ")";
    }
    if (message.empty()) message = "PostgreSQL statement failed";
    std::string sqlstate = state != nullptr ? state : "";
    if (!sqlstate.empty()) message += " [" + sqlstate + "]";
    throw SqlError(KindOfState(sqlstate), Scrub(message, password_));
  }

  std::string ConnectionMessage(const std::string& what) const {
    return Scrub(
        what + " at " + RedactPostgresUrl(url_) + ": " + TrimmedMessage(PQerrorMessage(conn_)),
        password_);
  }

  static std::string CheckedName(std::string_view name) {
    if (!IsSavepointName(name))
      throw SqlError(SqlError::Kind::kOther, "invalid savepoint name '" + std::string(name) + "'");
    return std::string(name);
  }

  std::string url_;
  std::string password_;
  int busy_timeout_ms_;
  PGconn* conn_ = nullptr;
  bool in_transaction_ = false;
  std::unordered_map<std::string, std::string> prepared_;  // text and types -> name
  int64_t statements_named_ = 0;  // names are never reused within a session
};

// Copies a quoted run (string literal, quoted identifier) starting at `i`.
size_t CopyQuoted(std::string_view sql, size_t i, std::string& out) {
  const char quote = sql[i];
  out += sql[i++];
  while (i < sql.size()) {
    out += sql[i];
    if (sql[i++] == quote) break;  // a doubled quote reopens on the next pass
  }
  return i;
}

size_t CopyUntil(std::string_view sql, size_t i, std::string_view end, std::string& out) {
  size_t stop = sql.find(end, i);
  stop = stop == std::string_view::npos ? sql.size() : stop + end.size();
  out.append(sql.substr(i, stop - i));
  return stop;
}

}  // namespace

std::unique_ptr<SqlDb> ConnectPostgres(const PostgresConnectOptions& options) {
  return std::make_unique<PostgresDb>(options);
}

std::string RewritePlaceholders(std::string_view sql) {
  std::string out;
  out.reserve(sql.size() + 8);
  long largest = 0;
  size_t i = 0;
  while (i < sql.size()) {
    const char c = sql[i];
    if (c == '\'' || c == '"') {
      i = CopyQuoted(sql, i, out);
    } else if (c == '-' && i + 1 < sql.size() && sql[i + 1] == '-') {
      i = CopyUntil(sql, i, "\n", out);
    } else if (c == '/' && i + 1 < sql.size() && sql[i + 1] == '*') {
      i = CopyUntil(sql, i, "*/", out);
    } else if (c == '?') {
      size_t digits = i + 1;
      while (digits < sql.size() && sql[digits] >= '0' && sql[digits] <= '9') ++digits;
      long number =
          digits > i + 1
              ? std::strtol(std::string(sql.substr(i + 1, digits - i - 1)).c_str(), nullptr, 10)
              : largest + 1;
      if (number > largest) largest = number;
      out += '$';
      out += std::to_string(number);
      i = digits;
    } else {
      out += c;
      ++i;
    }
  }
  return out;
}

std::string RedactPostgresUrl(std::string_view url) {
  std::string out(url);
  // URI form: scheme://user:password@host…
  if (size_t scheme = out.find("://"); scheme != std::string::npos) {
    size_t authority = scheme + 3;
    size_t end = out.find_first_of("/?", authority);
    if (end == std::string::npos) end = out.size();
    size_t at = out.rfind('@', end);
    if (at != std::string::npos && at >= authority) {
      size_t colon = out.find(':', authority);
      if (colon != std::string::npos && colon < at) out.replace(colon + 1, at - colon - 1, "***");
    }
  }
  // password=… as a URI parameter or a key=value pair.
  for (size_t at = out.find("password="); at != std::string::npos;
       at = out.find("password=", at + 1)) {
    size_t value = at + 9;
    size_t end = value;
    if (end < out.size() && out[end] == '\'') {
      end = out.find('\'', end + 1);
      end = end == std::string::npos ? out.size() : end + 1;
    } else {
      while (end < out.size() && out[end] != '&' && out[end] != ' ') ++end;
    }
    out.replace(value, end - value, "***");
  }
  return out;
}

}  // namespace reprise
