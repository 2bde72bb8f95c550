// Links the installed txmq::postgres (the local tables in PostgreSQL) and
// checks its options from an outside project; needs no database.
#include <txmq/pg/outbox.h>

#include <cstdio>

int main() {
  txmq::pg::OutboxOptions options;
  options.conninfo = "host=127.0.0.1 dbname=orders";
  options.producer.group = "app";
  options.lease = std::chrono::milliseconds(1);  // shorter than a send: refused
  txmq::pg::Outbox outbox(options);
  const txmq::Status s = outbox.Start();
  std::printf("%s\n", s.ToString().c_str());
  return s.code() == txmq::StatusCode::kInvalidArgument ? 0 : 1;
}
