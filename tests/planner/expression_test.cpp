#include "planner/expression.h"

#include <doctest/doctest.h>

#include <initializer_list>
#include <string>

namespace reprise {
namespace {

VariableScopes Vars() {
  VariableScopes scopes;
  scopes.Builtins()["IsRollback"] = Variable{"false", false};
  scopes.Builtins()["EnvironmentName"] = Variable{"Production", false};
  scopes.At(Scope::kRelease)["Flag"] = Variable{"Yes", false};
  scopes.At(Scope::kRelease)["Name"] = Variable{"a b", false};
  return scopes;
}

std::optional<bool> Eval(std::string_view text) {
  auto e = ParseExpression(text);
  REQUIRE_MESSAGE(e.ok(), e.status().message());
  VariableScopes scopes = Vars();
  auto r = e->Evaluate(LookupIn(scopes));
  REQUIRE_MESSAGE(r.ok(), r.status().message());
  return *r;
}

}  // namespace

TEST_CASE("operators: == != in && || ! and parentheses") {
  struct Case {
    const char* text;
    bool value;
  };
  for (auto c : std::initializer_list<Case>{
           {"!$IsRollback", true},
           {"$IsRollback", false},
           {"$EnvironmentName == Production", true},
           {"$EnvironmentName == 'production'", false},
           {"$EnvironmentName != \"Testing\"", true},
           {"$EnvironmentName in [Testing, Production]", true},
           {"$EnvironmentName in ['Testing']", false},
           {"$EnvironmentName in []", false},
           {"$Flag && !$IsRollback", true},
           {"$IsRollback || $EnvironmentName == Testing", false},
           {"!($IsRollback || $Flag)", false},
           {"true && (false || true)", true},
           {"\"$Name!\" == 'a b!'", true},  // double quotes expand
           {"'$Name' == '$Name'", true},    // single quotes do not
           {"${Name} == 'a b'", true},
           // && binds tighter than ||.
           {"true || false && false", true},
       }) {
    const std::string text = c.text;
    CAPTURE(text);
    CHECK(Eval(text) == c.value);
  }
}

TEST_CASE("short-circuit leaves the other side unevaluated") {
  CHECK(Eval("$IsRollback && $Undefined == x") == false);
  CHECK(Eval("$Flag || $Undefined") == true);
}

TEST_CASE("evaluation errors name the variable or the bad value") {
  auto e = ParseExpression("$Missing == x");
  REQUIRE(e.ok());
  VariableScopes scopes = Vars();
  auto r = e->Evaluate(LookupIn(scopes));
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message().find("undefined variable $Missing (searched built-ins, runtime") == 0);
  auto not_bool = ParseExpression("$EnvironmentName");
  REQUIRE(not_bool.ok());
  r = not_bool->Evaluate(LookupIn(scopes));
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message() ==
        "\"Production\" is not a boolean (true/false, yes/no, 1/0) in \"$EnvironmentName\"");
}

TEST_CASE("syntax errors give the offset") {
  struct Case {
    const char* text;
    const char* message;
  };
  for (auto c : {
           Case{"", "empty expression at offset 0 in expression \"\""},
           Case{"($A", "expected ')' at offset 3 in expression \"($A\""},
           Case{"$A == ", "unexpected end of expression at offset 6 in expression \"$A == \""},
           Case{"$A in Testing",
                "expected '[' after 'in' at offset 6 in expression \"$A in Testing\""},
           Case{"$A in [a b]",
                "expected ',' or ']' in list at offset 9 in expression \"$A in [a b]\""},
           Case{"'open", "unterminated string at offset 0 in expression \"'open\""},
           Case{"$ == a",
                "expected a variable name after '$' at offset 0 in expression \"$ == a\""},
           Case{"a b", "unexpected 'b' at offset 2 in expression \"a b\""},
           Case{"a = b", "unexpected '=' at offset 2 in expression \"a = b\""},
       }) {
    CAPTURE(c.text);
    auto e = ParseExpression(c.text);
    REQUIRE_FALSE(e.ok());
    CHECK(e.status().message() == c.message);
  }
  std::string deep(200, '(');
  CHECK_FALSE(ParseExpression(deep + "a" + std::string(200, ')')).ok());
  CHECK_FALSE(ParseExpression(std::string(200, '!') + "a").ok());
}

TEST_CASE("unknown values make the result unknown unless decided anyway") {
  VariableLookup lookup = [](std::string_view name) -> Result<std::optional<std::string>> {
    if (name == "Later") return std::optional<std::string>();
    return std::optional<std::string>("true");
  };
  auto eval = [&](std::string_view text) {
    auto e = ParseExpression(text);
    REQUIRE(e.ok());
    auto r = e->Evaluate(lookup);
    REQUIRE(r.ok());
    return *r;
  };
  CHECK_FALSE(eval("$Later == x").has_value());
  CHECK_FALSE(eval("!$Later").has_value());
  CHECK(eval("$Later || $Now") == true);
  CHECK(eval("!$Now && $Later") == false);
  CHECK_FALSE(eval("$Now in [$Later]").has_value());
  CHECK(eval("$Now in [$Later, true]") == true);
}

TEST_CASE("variables referenced by an expression") {
  auto e = ParseExpression("$A == \"$B-x\" || $A in [$C]");
  REQUIRE(e.ok());
  CHECK(e->Variables() == std::vector<std::string>{"A", "B", "C"});
}

}  // namespace reprise
