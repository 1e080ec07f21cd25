#include "common/args.h"

#include <charconv>

namespace reprise {

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
        if (i + 1 >= args.size()) return InvalidArgument("--" + name + " needs a value");
        value = args[++i];
      }
    } else if (inline_value) {
      return InvalidArgument("--" + name + " takes no value");
    }
    auto& values = out.options[name];
    if (!values.empty() && !spec->repeatable)
      return InvalidArgument("--" + name + " is given more than once");
    values.push_back(value);
  }
  return out;
}

Result<int64_t> ParseInteger(std::string_view text, std::string_view what, int64_t min,
                             int64_t max) {
  auto refuse = [&] {
    return InvalidArgument(std::string(what) + " needs a whole number from " + std::to_string(min) +
                           " to " + std::to_string(max) + ", got '" + std::string(text) + "'");
  };
  if (text.empty() || text.front() == '+') return refuse();
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < min || value > max)
    return refuse();
  return value;
}

Result<int> ParsePort(std::string_view text, std::string_view what, bool allow_zero) {
  auto port = ParseInteger(text, what, allow_zero ? 0 : 1, 65535);
  if (!port.ok())
    return InvalidArgument(std::string(what) + " needs a port number (" + (allow_zero ? "0" : "1") +
                           " to 65535), got '" + std::string(text) + "'");
  return static_cast<int>(*port);
}

Result<HostPort> ParseHostPort(std::string_view text, std::string_view what, bool allow_zero_port) {
  auto refuse = [&](std::string_view why) {
    return InvalidArgument(std::string(what) + " needs HOST:PORT (" + std::string(why) +
                           "), got '" + std::string(text) + "'");
  };
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return refuse("no port");
  std::string_view host = text.substr(0, colon);
  if (host.starts_with('[')) {
    if (!host.ends_with(']') || host.size() < 3) return refuse("unbalanced brackets");
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    return refuse("an IPv6 address goes in brackets: [::1]:PORT");
  }
  if (host.empty()) return refuse("no host");
  auto port = ParsePort(text.substr(colon + 1), what, allow_zero_port);
  if (!port.ok())
    return refuse(allow_zero_port ? "a port from 0 to 65535" : "a port from 1 to 65535");
  return HostPort{std::string(host), *port};
}

}  // namespace reprise
