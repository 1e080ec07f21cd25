#include "planner/variables.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace reprise {
namespace {

VariableScopes AllScopesDefine(const std::string& name) {
  VariableScopes scopes;
  for (Scope s : kAllScopes) scopes.At(s)[name] = Variable{std::string(ScopeName(s)), false};
  return scopes;
}

std::string Expand(std::string_view text, const VariableScopes& scopes) {
  auto r = ExpandVariables(text, LookupIn(scopes));
  REQUIRE(r.ok());
  return *r;
}

}  // namespace

TEST_CASE(
    "precedence: runtime > deployment > build > release > application > target > "
    "environment > global") {
  VariableScopes scopes = AllScopesDefine("Port");
  // Remove scopes from the most specific down; each time the next one wins.
  for (size_t i = 0; i < kAllScopes.size(); ++i) {
    CAPTURE(i);
    auto found = scopes.Find("Port");
    REQUIRE(found.has_value());
    CHECK(found->scope == kAllScopes[i]);
    CHECK(found->variable.value == ScopeName(kAllScopes[i]));
    scopes.At(kAllScopes[i]).erase("Port");
  }
  CHECK_FALSE(scopes.Find("Port").has_value());
}

TEST_CASE("built-ins win over every scope and report where they come from") {
  VariableScopes scopes;
  scopes.Builtins()["TargetName"] = Variable{"web-1", false};
  scopes.Builtins()["BuildNumber"] = Variable{"7", false};
  scopes.At(Scope::kRuntime)["BuildNumber"] = Variable{"99", false};
  CHECK(scopes.Find("BuildNumber")->variable.value == "7");
  CHECK(scopes.Find("BuildNumber")->scope == Scope::kDeployment);
  CHECK(scopes.Find("TargetName")->scope == Scope::kTarget);
  auto all = scopes.Resolve();
  CHECK(all.at("BuildNumber").builtin);
  CHECK(IsBuiltinVariableName("IsRollback"));
  CHECK(IsBuiltinVariableName("PreviousBuildNumber"));
  CHECK_FALSE(IsBuiltinVariableName("Port"));
}

TEST_CASE("scope names round-trip") {
  for (Scope s : kAllScopes) CHECK(ScopeFromName(ScopeName(s)) == s);
  CHECK_FALSE(ScopeFromName("galaxy").has_value());
}

TEST_CASE("expansion: $Name, ${Name}, $$ and their edges") {
  VariableScopes scopes;
  scopes.At(Scope::kGlobal)["Port"] = Variable{"8080", false};
  scopes.At(Scope::kGlobal)["Host"] = Variable{"db", false};
  scopes.At(Scope::kGlobal)["Empty"] = Variable{"", false};
  CHECK(Expand("http://$Host:$Port/", scopes) == "http://db:8080/");
  CHECK(Expand("${Host}name", scopes) == "dbname");
  CHECK(Expand("$Host.example", scopes) == "db.example");
  CHECK(Expand("cost $$5 and $$$Port", scopes) == "cost $5 and $8080");
  CHECK(Expand("[$Empty]", scopes) == "[]");
  CHECK(Expand("", scopes) == "");
  CHECK(Expand("no variables", scopes) == "no variables");
  // The name is the longest run of letters, digits and '_'.
  auto undefined = ExpandVariables("$Port_2", LookupIn(scopes));
  REQUIRE_FALSE(undefined.ok());
  CHECK(undefined.status().message() ==
        "undefined variable $Port_2 (searched built-ins, runtime, deployment, build, release, "
        "application, target, environment, global)");
  // Values are not expanded again.
  scopes.At(Scope::kGlobal)["Tricky"] = Variable{"$Port", false};
  CHECK(Expand("$Tricky", scopes) == "$Port");
}

TEST_CASE("malformed references are errors with their offset") {
  VariableLookup none = [](std::string_view) -> Result<std::optional<std::string>> {
    return std::optional<std::string>("x");
  };
  struct Case {
    const char* text;
    const char* message;
  };
  for (auto c : {Case{"a $",
                      "'$' at offset 2 is not followed by a variable name; write $$ for a "
                      "literal dollar"},
                 Case{"$ x",
                      "'$' at offset 0 is not followed by a variable name; write $$ for a "
                      "literal dollar"},
                 Case{"$1",
                      "'$' at offset 0 is not followed by a variable name; write $$ for a "
                      "literal dollar"},
                 Case{"${Port", "unterminated \"${\" at offset 0"},
                 Case{"x${}", "invalid variable name \"\" in \"${...}\" at offset 1"},
                 Case{"${a b}", "invalid variable name \"a b\" in \"${...}\" at offset 0"}}) {
    CAPTURE(c.text);
    auto r = ExpandVariables(c.text, none);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().message() == c.message);
  }
}

TEST_CASE("unknown values (dry run) are shown, not guessed") {
  VariableLookup lookup = [](std::string_view name) -> Result<std::optional<std::string>> {
    if (name == "Later") return std::optional<std::string>();
    return std::optional<std::string>("now");
  };
  bool unknown = false;
  auto r = ExpandVariables("$Now/$Later", lookup, &unknown);
  REQUIRE(r.ok());
  CHECK(unknown);
  CHECK(*r == "now/<$Later: known at run time>");
}

TEST_CASE("referenced variables are listed once, in order") {
  auto names = ReferencedVariables("$B ${A} $B $$C");
  REQUIRE(names.ok());
  CHECK(*names == std::vector<std::string>{"B", "A"});
}

TEST_CASE("masker replaces every sensitive value, longest first") {
  Masker masker({"hunter2", "hunter2-admin", ""});
  CHECK(masker.Mask("pw=hunter2 admin=hunter2-admin") == "pw=****** admin=******");
  CHECK(masker.Mask("nothing here") == "nothing here");
  CHECK(masker.Mask("hunter2hunter2") == "************");
  CHECK(Masker().Mask("hunter2") == "hunter2");
}

TEST_CASE("streaming masker holds back a possible partial match across chunks") {
  Masker masker({"s3cr3t-token"});
  StreamingMasker stream(masker);
  std::string out;
  out += stream.Feed("login with s3cr");
  // Nothing that could be the start of the secret is released yet.
  CHECK(out == "login with ");
  out += stream.Feed("3t-tok");
  CHECK(out == "login with ");
  out += stream.Feed("en done\n");
  CHECK(out == "login with ****** done\n");
  out += stream.Feed("s3c");
  out += stream.Feed("ret");  // diverges: the held-back text is released as is
  out += stream.Finish();
  CHECK(out == "login with ****** done\ns3cret");
}

TEST_CASE("streaming masker: every split point of a secret is masked") {
  Masker masker({"abcdef", "cde"});
  const std::string text = "xxabcdefyy cde abcdeX";
  for (size_t split = 0; split <= text.size(); ++split) {
    for (size_t split2 = split; split2 <= text.size(); ++split2) {
      StreamingMasker stream(masker);
      std::string out = stream.Feed(text.substr(0, split));
      out += stream.Feed(text.substr(split, split2 - split));
      out += stream.Feed(text.substr(split2));
      out += stream.Finish();
      CAPTURE(split);
      CAPTURE(split2);
      CHECK(out == masker.Mask(text));
    }
  }
  CHECK(masker.Mask(text) == "xx******yy ****** ab******X");
}

TEST_CASE("variable names") {
  for (const std::string& ok : std::vector<std::string>{"Port", "_x9"})
    CHECK_MESSAGE(IsValidVariableName(ok), ok);
  for (const std::string& bad : std::vector<std::string>{"9x", "a-b", ""})
    CHECK_MESSAGE(!IsValidVariableName(bad), bad);
}

}  // namespace reprise
