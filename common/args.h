// Command-line parsing shared by the three binaries (reprise, reprise-server,
// reprise-agent): positional words and --options in any order ("--name value",
// "--name=value", flags without a value, "--" ends the options), and strict
// parsers for the values they take (ports, HOST:PORT, bounded integers).
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace reprise {

struct OptionSpec {
  OptionSpec(std::string option_name, bool option_takes_value = false,
             bool option_repeatable = false)
      : name(std::move(option_name)),
        takes_value(option_takes_value),
        repeatable(option_repeatable) {}

  OptionSpec& Secret() { return secret = true, *this; }
  OptionSpec& CommandLineOnly() { return command_line_only = true, *this; }
  OptionSpec& Default(std::string value) { return default_value = std::move(value), *this; }

  std::string name;  // without the leading "--"
  bool takes_value = false;
  bool repeatable = false;
  bool secret = false;             // masked when the configuration is printed
  bool command_line_only = false;  // not a configuration-file key (--help, --config)
  std::string default_value;       // shown by --print-config when unset
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

// A whole decimal number in [min, max], nothing else ("80x", " 8", "" and
// "+8" are refused). `what` names the value in the error ("--agent-port").
Result<int64_t> ParseInteger(std::string_view text, std::string_view what, int64_t min,
                             int64_t max);

// A TCP port, 1 to 65535 (0 too when `allow_zero`: "any free port").
Result<int> ParsePort(std::string_view text, std::string_view what, bool allow_zero = false);

struct HostPort {
  std::string host;  // brackets of "[::1]" removed
  int port = 0;
};

// "HOST:PORT" or "[IPv6]:PORT"; the host is non-empty and the port strict.
Result<HostPort> ParseHostPort(std::string_view text, std::string_view what,
                               bool allow_zero_port = false);

}  // namespace reprise
