#include "cli/api_client.h"

#include <fcntl.h>
#include <httplib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <vector>

#include "common/enum_names.h"

namespace reprise::cli {

namespace {

constexpr time_t kConnectTimeoutSeconds = 10;
constexpr time_t kReadTimeoutSeconds = 120;
// An upload is answered after the server has scanned the whole archive.
constexpr time_t kUploadReadTimeoutSeconds = 3600;
// The server sends a keep-alive comment at least every 15 s.
constexpr time_t kStreamReadTimeoutSeconds = 60;
constexpr size_t kUploadBlock = 256 * 1024;

bool IsUnreserved(unsigned char c) {
  return std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

std::string Encode(std::string_view s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (IsUnreserved(c)) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

constexpr EnumName<httplib::Error> kErrorDescriptions[] = {
    {httplib::Error::Connection, "connection failed"},
    {httplib::Error::ConnectionTimeout, "connection timed out"},
    {httplib::Error::Read, "the connection broke or timed out while reading the answer"},
    {httplib::Error::Write, "the connection broke while sending the request"},
    {httplib::Error::SSLConnection, "TLS connection failed"},
    {httplib::Error::SSLServerVerification, "the server's TLS certificate could not be verified"},
    {httplib::Error::Canceled, "the request was cancelled"},
};

std::string Describe(httplib::Error e) {
  std::string_view text = NameOf(kErrorDescriptions, e, "");
  return text.empty() ? httplib::to_string(e) : std::string(text);
}

}  // namespace

Result<ServerUrl> ParseServerUrl(std::string_view url) {
  std::string_view rest = url;
  std::string scheme;
  if (rest.starts_with("http://")) {
    scheme = "http";
    rest.remove_prefix(7);
  } else if (rest.starts_with("https://")) {
    scheme = "https";
    rest.remove_prefix(8);
  } else {
    return InvalidArgument("server URL '" + std::string(url) +
                           "' must start with http:// or https://");
  }
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string prefix = slash == std::string_view::npos ? "" : std::string(rest.substr(slash));
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  if (authority.empty() || authority.find('@') != std::string_view::npos ||
      prefix.find_first_of("?#") != std::string::npos)
    return InvalidArgument("server URL '" + std::string(url) + "' is invalid");
  // Host, or [IPv6], then an optional :port of digits.
  size_t host_end = authority.front() == '[' ? authority.find(']') : authority.find(':');
  if (authority.front() == '[') {
    if (host_end == std::string_view::npos)
      return InvalidArgument("server URL '" + std::string(url) + "' is invalid");
    ++host_end;
  }
  if (host_end != std::string_view::npos && host_end < authority.size()) {
    if (authority[host_end] != ':')
      return InvalidArgument("server URL '" + std::string(url) + "' is invalid");
    std::string_view port = authority.substr(host_end + 1);
    if (port.empty() || port.size() > 5 ||
        port.find_first_not_of("0123456789") != std::string_view::npos ||
        std::stoi(std::string(port)) > 65535)
      return InvalidArgument("server URL '" + std::string(url) + "' has an invalid port");
  }
  return ServerUrl{scheme + "://" + std::string(authority), prefix};
}

std::string PathSegment(std::string_view segment) { return Encode(segment); }
std::string QueryValue(std::string_view value) { return Encode(value); }

QueryString& QueryString::Add(std::string_view key, const std::optional<std::string>& value) {
  if (value) {
    text_ += text_.empty() ? '?' : '&';
    text_.append(key).append("=").append(QueryValue(*value));
  }
  return *this;
}

bool SseParser::Feed(std::string_view bytes, const std::function<bool(const SseEvent&)>& on_event) {
  pending_.append(bytes);
  size_t start = 0;
  while (true) {
    size_t nl = pending_.find('\n', start);
    if (nl == std::string::npos) break;
    std::string_view line(pending_.data() + start, nl - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    start = nl + 1;
    if (!Line(line, on_event)) {
      pending_.erase(0, start);
      return false;
    }
  }
  pending_.erase(0, start);
  return true;
}

bool SseParser::Line(std::string_view line, const std::function<bool(const SseEvent&)>& on_event) {
  if (line.empty()) {  // dispatch
    bool keep_going = true;
    if (has_data_) keep_going = on_event(event_);
    std::string last_id = event_.id;
    event_ = SseEvent{};
    event_.id = last_id;  // the id persists until the next id: field
    has_data_ = false;
    return keep_going;
  }
  if (line.front() == ':') return true;  // comment (keep-alive)
  size_t colon = line.find(':');
  std::string_view field = line.substr(0, colon);
  std::string_view value = colon == std::string_view::npos ? "" : line.substr(colon + 1);
  if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  if (field == "data") {
    if (has_data_) event_.data += '\n';
    event_.data.append(value);
    has_data_ = true;
  } else if (field == "event") {
    event_.event = std::string(value);
  } else if (field == "id") {
    event_.id = std::string(value);
  }
  return true;
}

struct ApiClient::Impl {
  explicit Impl(const std::string& origin) : client(origin) {
    client.set_connection_timeout(kConnectTimeoutSeconds, 0);
    client.set_read_timeout(kReadTimeoutSeconds, 0);
    client.set_write_timeout(kReadTimeoutSeconds, 0);
    client.set_url_encode(false);  // paths are encoded by the caller
    client.set_keep_alive(true);
  }
  httplib::Client client;
};

ApiClient::ApiClient(ServerUrl url, std::string token)
    : url_(std::move(url)), token_(std::move(token)), impl_(std::make_unique<Impl>(url_.origin)) {}

ApiClient::~ApiClient() = default;

void ApiClient::Stop() {
  stopped_ = true;
  impl_->client.stop();
}

namespace {

httplib::Headers BaseHeaders(const std::string& token) {
  httplib::Headers h;
  if (!token.empty()) h.emplace("Authorization", "Bearer " + token);
  h.emplace("Accept", "application/json");
  return h;
}

ApiResponse FromHttplib(const httplib::Response& res) {
  ApiResponse out;
  out.status = res.status;
  out.body = res.body;
  out.content_type = res.get_header_value("Content-Type");
  return out;
}

}  // namespace

Result<ApiResponse> ApiClient::Send(const std::string& method, const std::string& path,
                                    const std::string& body, const std::string& content_type) {
  if (stopped_) return Cancelled("stopped");
  httplib::Request req;
  req.method = method;
  req.path = url_.prefix + path;
  req.headers = BaseHeaders(token_);
  if (method != "GET") {
    req.body = body;
    req.headers.emplace("Content-Type", content_type);
  }
  httplib::Result res = impl_->client.send(req);
  if (!res) {
    if (stopped_) return Cancelled("stopped");
    return Unavailable(url_.origin + ": " + Describe(res.error()));
  }
  return FromHttplib(*res);
}

Result<ApiResponse> ApiClient::PutFile(const std::string& path, const std::filesystem::path& file,
                                       const std::function<void(const char*, size_t)>& on_block) {
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return IoError("cannot open " + file.string() + ": " + std::strerror(errno));
  struct FdCloser {
    int fd;
    ~FdCloser() { ::close(fd); }
  } closer{fd};
  struct stat st;
  if (::fstat(fd, &st) != 0) return IoError("cannot stat " + file.string());
  if (!S_ISREG(st.st_mode)) return InvalidArgument(file.string() + " is not a regular file");
  const size_t size = static_cast<size_t>(st.st_size);
  std::vector<char> buf(kUploadBlock);
  std::string read_error;
  auto provider = [&](size_t offset, size_t length, httplib::DataSink& sink) {
    size_t want = std::min(length, buf.size());
    ssize_t got;
    do {
      got = ::pread(fd, buf.data(), want, static_cast<off_t>(offset));
    } while (got < 0 && errno == EINTR);
    if (got <= 0) {
      read_error = got < 0 ? std::strerror(errno) : "the file got shorter while it was sent";
      return false;
    }
    on_block(buf.data(), static_cast<size_t>(got));
    return sink.write(buf.data(), static_cast<size_t>(got));
  };
  impl_->client.set_read_timeout(kUploadReadTimeoutSeconds, 0);
  httplib::Result res = impl_->client.Put((url_.prefix + path).c_str(), BaseHeaders(token_), size,
                                          provider, "application/octet-stream");
  impl_->client.set_read_timeout(kReadTimeoutSeconds, 0);
  if (!read_error.empty()) return IoError("cannot read " + file.string() + ": " + read_error);
  if (!res) {
    if (stopped_) return Cancelled("stopped");
    return Unavailable(url_.origin + ": " + Describe(res.error()));
  }
  return FromHttplib(*res);
}

Result<ApiResponse> ApiClient::Events(const std::string& path, const std::string& last_event_id,
                                      const std::function<bool(const SseEvent&)>& on_event) {
  if (stopped_) return Cancelled("stopped");
  httplib::Headers headers = BaseHeaders(token_);
  headers.erase("Accept");
  headers.emplace("Accept", "text/event-stream");
  headers.emplace("Accept-Encoding", "identity");
  if (!last_event_id.empty()) headers.emplace("Last-Event-ID", last_event_id);
  ApiResponse out;
  SseParser parser;
  bool stopped_by_caller = false;
  impl_->client.set_read_timeout(kStreamReadTimeoutSeconds, 0);
  httplib::Result res =
      impl_->client.Get((url_.prefix + path).c_str(), headers,
                        [&](const httplib::Response& r) {
                          out.status = r.status;
                          out.content_type = r.get_header_value("Content-Type");
                          return true;
                        },
                        [&](const char* data, size_t len) {
                          if (out.status != 200) {
                            out.body.append(data, len);
                            return true;
                          }
                          if (!parser.Feed(std::string_view(data, len), on_event)) {
                            stopped_by_caller = true;
                            return false;
                          }
                          return true;
                        });
  impl_->client.set_read_timeout(kReadTimeoutSeconds, 0);
  if (stopped_by_caller) return out;
  if (!res) {
    if (stopped_) return Cancelled("stopped");
    return Unavailable(url_.origin + ": " + Describe(res.error()));
  }
  return out;
}

}  // namespace reprise::cli
