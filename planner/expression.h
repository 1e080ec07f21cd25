// Expression: the condition of an `if` block.
//
//   expr    := or
//   or      := and ('||' and)*
//   and     := unary ('&&' unary)*
//   unary   := '!' unary | compare
//   compare := primary (('==' | '!=') primary | 'in' list)?
//   primary := '(' expr ')' | $Name | ${Name} | "text with $Vars" | 'literal' | word
//   list    := '[' (primary (',' primary)*)? ']'
//
// Every value is a string; comparisons are exact. A value used as a boolean
// must be true/false, yes/no or 1/0 (case-insensitive); anything else is an
// error. An Expression is immutable after parsing and may be shared between
// threads.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "planner/variables.h"

namespace reprise {

class Expression {
 public:
  struct Node;

  Expression() = default;
  const std::string& text() const { return text_; }

  // nullopt when the result depends on a value the lookup does not know yet
  // (a dry run); an error for an undefined variable or a non-boolean value.
  Result<std::optional<bool>> Evaluate(const VariableLookup& lookup) const;
  // Variable names the expression references, in order of appearance.
  std::vector<std::string> Variables() const;

 private:
  friend Result<Expression> ParseExpression(std::string_view text);
  std::string text_;
  std::shared_ptr<const Node> root_;
};

// Errors say which character (0-based offset into `text`) is wrong.
Result<Expression> ParseExpression(std::string_view text);

// Parses "true"/"yes"/"1" and "false"/"no"/"0", ignoring case.
std::optional<bool> ParseBoolWord(std::string_view text);

}  // namespace reprise
