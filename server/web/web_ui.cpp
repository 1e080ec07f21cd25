#include "server/web/web_ui.h"

namespace reprise {

struct WebUi::Impl {
  WebUiOptions options;
};

WebUi::WebUi(WebUiOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = options;
}
WebUi::~WebUi() = default;

std::optional<HttpResponse> WebUi::ServeStatic(const HttpRequest&) const { return std::nullopt; }

Result<Principal> WebUi::AuthenticateSession(const HttpRequest&) const {
  return Unauthenticated("missing Authorization header (expected 'Bearer <token>')");
}

std::vector<Route> WebUi::Routes() { return {}; }

}  // namespace reprise
