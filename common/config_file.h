// Configuration files of the daemons (/etc/reprise/server.yaml, agent.yaml):
// a YAML map whose keys are the daemon's long flags without "--"
// ("http: 127.0.0.1:8080", "local-agent: true"). Flags given on the command
// line override the file key by key. The one place yaml-cpp reads anything
// but plans. Pure functions apart from reading the file; thread-safe.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "common/args.h"
#include "common/status.h"

namespace reprise {

// Parses `text` (named `source` in errors: "server.yaml:3:1: unknown key
// 'htp'"). A flag's value is true or false; an option's a scalar; a
// repeatable option's a scalar or a list of them.
Result<ParsedArgs> ParseConfigText(const std::string& text, const std::string& source,
                                   const std::vector<OptionSpec>& known);
Result<ParsedArgs> ReadConfigFile(const std::filesystem::path& path,
                                  const std::vector<OptionSpec>& known);

// `file` with every option of `command_line` replacing the file's value.
ParsedArgs MergeArgs(const ParsedArgs& file, const ParsedArgs& command_line);

// The effective configuration as a configuration file: every key that is
// set, secrets as "********"; unset keys commented out with their default.
std::string PrintConfig(const ParsedArgs& effective, const std::vector<OptionSpec>& known);

// Reads the command line; with --config FILE, the file first and the command
// line over it. What --print-config and the daemon both start from.
Result<ParsedArgs> ParseCommandLineAndConfig(const std::vector<std::string>& argv,
                                             const std::vector<OptionSpec>& known);

}  // namespace reprise
