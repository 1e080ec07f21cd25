// The http-check operation: GET a URL from the target's machine (where the
// service under test lives) until it answers the expected status, with
// retries and a delay between attempts. Used by AgentRunner, so it runs the
// same on remote agents and on the local agent. cpp-httplib stays inside
// http_check.cpp.
//
// Only http:// and https:// URLs; redirects are not followed (a 302 is a
// status like any other). Each attempt is a fresh connection with its own
// timeout (connect, read and write: HttpCheckOp::timeout_seconds, 10 s when
// not positive). Every attempt is logged; the URL is logged as given (the
// StepLog masks secrets).
//
// Thread-safety: stateless; concurrent calls are independent.
#pragma once

#include <string>
#include <string_view>

#include "agents/agent/runner.h"
#include "common/status.h"
#include "planner/operations.h"

namespace reprise {

struct HttpUrl {
  std::string scheme;    // "http" or "https" (lower case)
  std::string host;      // without brackets for IPv6 literals
  int port = 0;          // explicit or the scheme's default
  std::string path;      // path and query, at least "/"; the fragment is dropped
  std::string userinfo;  // "user:password" before '@', "" when absent
};

// Parses an http(s) URL; kInvalidArgument naming the URL otherwise.
[[nodiscard]] Result<HttpUrl> ParseHttpUrl(std::string_view url);

// Runs the check. Succeeded when an attempt answers op.expect_status; Failed
// after op.retries + 1 attempts (with the last status or connection error),
// for a bad URL, or when the step deadline passes; Error(kCancelled) when
// `cancel` is cancelled otherwise. Waits between attempts through
// cancel.WaitFor, so it returns promptly once cancelled.
OperationOutcome RunHttpCheck(const HttpCheckOp& op, const RunnerLog& log,
                              const CancelToken& cancel);

}  // namespace reprise
