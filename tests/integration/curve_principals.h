// The principals of the CURVE tests (curve_test.cc, curve_limits_test.cc).
#pragma once

#include <vector>

#include "tests/testutil/secure_world.h"

namespace txmq::testing {

inline std::vector<TestPrincipal> Principals() {
  return {
      {.name = "ops", .admin = true},
      {.name = "orders", .produce = {"orders"}, .producer_groups = {"orders"}},
      {.name = "billing", .consume = {"billing"}},
      {.name = "payments", .produce = {"payments"}, .producer_groups = {"payments"}},
      {.name = "mallory"},
      {.name = "flood", .produce = {"flood-*"}, .consume = {"flood-*"}},
  };
}

}  // namespace txmq::testing
