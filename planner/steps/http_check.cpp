// The `http-check` operation: expects an HTTP status from a URL, from each selected target.
#include "planner/steps/registry.h"
#include "planner/steps/walker.h"

namespace reprise {
namespace {

Result<HttpCheckStep> Parse(StepArgs& args) {
  const char* kind = "http-check";
  HttpCheckStep s;
  REPRISE_ASSIGN_OR_RETURN(
      s.url,
      args.LoadShortOrMap(kind, "url", {"url", "expect_status", "retries", "delay", "timeout"}));
  REPRISE_RETURN_IF_ERROR(args.OptionalInt("expect_status", kind, 100, 599, &s.expect_status));
  REPRISE_RETURN_IF_ERROR(args.OptionalInt("retries", kind, 0, 1000, &s.retries));
  REPRISE_RETURN_IF_ERROR(args.OptionalInt("delay", kind, 0, 3600, &s.delay_seconds));
  REPRISE_RETURN_IF_ERROR(args.OptionalInt("timeout", kind, 1, 3600, &s.timeout_seconds));
  return s;
}

Result<ResolvedOperation> Resolve(const HttpCheckStep& s, const Resolver& r) {
  REPRISE_ASSIGN_OR_RETURN(std::string url, r.Expand(s.url));
  return ResolvedOperation(HttpCheckOp{.url = std::move(url),
                                       .expect_status = s.expect_status,
                                       .retries = s.retries,
                                       .delay_seconds = s.delay_seconds,
                                       .timeout_seconds = s.timeout_seconds});
}

}  // namespace

StepKindInfo HttpCheckKind() { return MakeTargetStepKind("http-check", Parse, Resolve); }

}  // namespace reprise
