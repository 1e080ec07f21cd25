#include "cli/args.h"

namespace reprise::cli {

std::optional<std::string> ParsedArgs::Value(const std::string& name) const {
  auto it = options.find(name);
  if (it == options.end() || it->second.empty()) return std::nullopt;
  return it->second.back();
}

std::vector<std::string> ParsedArgs::Values(const std::string& name) const {
  auto it = options.find(name);
  return it == options.end() ? std::vector<std::string>{} : it->second;
}

Result<ParsedArgs> ParseArgs(const std::vector<std::string>& args,
                             const std::vector<OptionSpec>& known) {
  ParsedArgs out;
  bool only_positional = false;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string arg = args[i];
    if (only_positional || arg == "-" || arg.size() < 2 || arg[0] != '-') {
      out.positional.push_back(arg);
      continue;
    }
    if (arg == "--") {
      only_positional = true;
      continue;
    }
    if (arg == "-h") arg = "--help";
    if (!arg.starts_with("--")) return InvalidArgument("unknown option '" + arg + "'");
    std::string name = arg.substr(2);
    std::optional<std::string> inline_value;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      inline_value = name.substr(eq + 1);
      name.resize(eq);
    }
    const OptionSpec* spec = nullptr;
    for (const auto& k : known)
      if (k.name == name) spec = &k;
    if (spec == nullptr) return InvalidArgument("unknown option '--" + name + "'");
    std::string value;
    if (spec->takes_value) {
      if (inline_value) {
        value = *inline_value;
      } else {
        if (i + 1 >= args.size()) return InvalidArgument("option '--" + name + "' needs a value");
        value = args[++i];
      }
    } else if (inline_value) {
      return InvalidArgument("option '--" + name + "' takes no value");
    }
    auto& values = out.options[name];
    if (!values.empty() && !spec->repeatable)
      return InvalidArgument("option '--" + name + "' is given more than once");
    values.push_back(value);
  }
  return out;
}

}  // namespace reprise::cli
