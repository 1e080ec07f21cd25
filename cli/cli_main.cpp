// reprise: the command-line client of a Reprise server's HTTP API.
// Wiring only; the commands live in cli/commands*.cpp.
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "cli/commands.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  reprise::cli::CliEnvironment env;
  if (const char* s = std::getenv("REPRISE_SERVER")) env.server = s;
  if (const char* t = std::getenv("REPRISE_TOKEN")) env.token = t;
  env.config_path =
      reprise::cli::DefaultConfigPath(std::getenv("XDG_CONFIG_HOME"), std::getenv("HOME"));
  env.in = &std::cin;
  return reprise::cli::RunCli(args, env, std::cout, std::cerr);
}
