#include "common/config_file.h"

#include <yaml-cpp/yaml.h>

#include <fstream>
#include <sstream>

namespace reprise {

namespace {

std::string Where(const std::string& source, const YAML::Mark& mark) {
  return source + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
}

const OptionSpec* FindSpec(const std::vector<OptionSpec>& known, const std::string& name) {
  for (const auto& k : known)
    if (k.name == name && !k.command_line_only) return &k;
  return nullptr;
}

Status ReadValue(const YAML::Node& value, const OptionSpec& spec, const std::string& source,
                 const std::string& at, std::vector<std::string>& out) {
  if (!spec.takes_value) {
    bool on = false;
    if (!value.IsScalar() || !YAML::convert<bool>::decode(value, on))
      return InvalidArgument(at + ": '" + spec.name + "' is a switch: true or false");
    if (on) out.emplace_back();
    return Status::Ok();
  }
  if (value.IsScalar()) {
    out.push_back(value.Scalar());
    return Status::Ok();
  }
  if (value.IsSequence() && spec.repeatable) {
    for (const auto& item : value) {
      if (!item.IsScalar())
        return InvalidArgument(Where(source, item.Mark()) + ": '" + spec.name +
                               "' takes a list of values");
      out.push_back(item.Scalar());
    }
    return Status::Ok();
  }
  return InvalidArgument(at + ": '" + spec.name + "' takes one value" +
                         (spec.repeatable ? " or a list of values" : ""));
}

}  // namespace

Result<ParsedArgs> ParseConfigText(const std::string& text, const std::string& source,
                                   const std::vector<OptionSpec>& known) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    return InvalidArgument(Where(source, e.mark) + ": not valid YAML");
  }
  ParsedArgs out;
  if (root.IsNull()) return out;
  if (!root.IsMap())
    return InvalidArgument(source + ": a configuration file is a map of settings (key: value)");
  for (const auto& entry : root) {
    const std::string at = Where(source, entry.first.Mark());
    if (!entry.first.IsScalar()) return InvalidArgument(at + ": a key must be a name");
    const std::string key = entry.first.Scalar();
    const OptionSpec* spec = FindSpec(known, key);
    if (spec == nullptr) return InvalidArgument(at + ": unknown key '" + key + "'");
    if (out.options.count(key)) return InvalidArgument(at + ": '" + key + "' is given twice");
    std::vector<std::string> values;
    REPRISE_RETURN_IF_ERROR(ReadValue(entry.second, *spec, source, at, values));
    if (!values.empty()) out.options[key] = std::move(values);
  }
  return out;
}

Result<ParsedArgs> ReadConfigFile(const std::filesystem::path& path,
                                  const std::vector<OptionSpec>& known) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return InvalidArgument("cannot read the configuration file " + path.string());
  std::stringstream text;
  text << in.rdbuf();
  return ParseConfigText(text.str(), path.string(), known);
}

ParsedArgs MergeArgs(const ParsedArgs& file, const ParsedArgs& command_line) {
  ParsedArgs out = file;
  out.positional = command_line.positional;
  for (const auto& [name, values] : command_line.options) out.options[name] = values;
  return out;
}

std::string PrintConfig(const ParsedArgs& effective, const std::vector<OptionSpec>& known) {
  std::string out;
  for (const auto& spec : known) {
    if (spec.command_line_only) continue;
    auto it = effective.options.find(spec.name);
    if (it == effective.options.end()) {
      out += "# " + spec.name + ": " + (spec.takes_value ? spec.default_value : "false") + "\n";
      continue;
    }
    if (!spec.takes_value) {
      out += spec.name + ": true\n";
      continue;
    }
    auto show = [&](const std::string& v) {
      if (spec.secret) return std::string("\"********\"");
      YAML::Emitter e;
      e << YAML::DoubleQuoted << v;
      return std::string(e.c_str());
    };
    if (it->second.size() == 1 && !spec.repeatable) {
      out += spec.name + ": " + show(it->second.back()) + "\n";
    } else {
      out += spec.name + ":\n";
      for (const auto& v : it->second) out += "  - " + show(v) + "\n";
    }
  }
  return out;
}

Result<ParsedArgs> ParseCommandLineAndConfig(const std::vector<std::string>& argv,
                                             const std::vector<OptionSpec>& known) {
  REPRISE_ASSIGN_OR_RETURN(ParsedArgs command_line, ParseArgs(argv, known));
  auto config = command_line.Value("config");
  if (!config) return command_line;
  REPRISE_ASSIGN_OR_RETURN(ParsedArgs file, ReadConfigFile(*config, known));
  return MergeArgs(file, command_line);
}

}  // namespace reprise
