// The webhook routes (admin only): PUT/GET/DELETE /api/v1/webhooks/{name},
// GET /api/v1/webhooks, the deliveries of a webhook and redelivering one,
// and a test (ping) delivery. Secrets are masked as "******" in every
// response and audit entry.
#pragma once

#include <vector>

#include "common/clock.h"
#include "server/http/http_types.h"

namespace reprise {

class Store;
class WebhookService;

std::vector<Route> WebhookRoutes(Store& store, WebhookService& webhooks, const Clock& clock);

}  // namespace reprise
