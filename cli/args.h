// Command-line parsing for the `reprise` CLI: positional words and --options
// in any order ("--name value", "--name=value", flags without a value, "--"
// ends the options). Pure functions; thread-safe.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace reprise::cli {

struct OptionSpec {
  std::string name;  // without the leading "--"
  bool takes_value = false;
  bool repeatable = false;
};

struct ParsedArgs {
  std::vector<std::string> positional;
  // name -> the values given, in order ("" for flags).
  std::map<std::string, std::vector<std::string>> options;

  bool Has(const std::string& name) const { return options.count(name) != 0; }
  std::optional<std::string> Value(const std::string& name) const;
  std::vector<std::string> Values(const std::string& name) const;
};

// kInvalidArgument naming the problem for an unknown option, a missing value,
// a flag given a value, or a non-repeatable option given twice. "-h" is
// accepted as "--help".
Result<ParsedArgs> ParseArgs(const std::vector<std::string>& args,
                             const std::vector<OptionSpec>& known);

}  // namespace reprise::cli
