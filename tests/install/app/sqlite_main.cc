// Links the installed txmq::sqlite (the local tables in SQLite) and checks
// its options from an outside project; opens no database.
#include <txmq/sqlite/outbox.h>

#include <cstdio>

int main() {
  txmq::sqlite::OutboxOptions options;
  options.path = "orders.db";
  options.producer.group = "app";
  options.lease = std::chrono::milliseconds(1);  // shorter than a send: refused
  txmq::sqlite::Outbox outbox(options);
  const txmq::Status s = outbox.Start();
  std::printf("%s\n", s.ToString().c_str());
  return s.code() == txmq::StatusCode::kInvalidArgument ? 0 : 1;
}
