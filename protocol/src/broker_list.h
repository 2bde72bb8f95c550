// A client's bootstrap list: `tcp://127.0.0.1:7800` or, for a replicated
// broker group, several URLs separated by commas
// (`tcp://10.0.0.1:7800,tcp://10.0.0.2:7800`). Every client (Producer,
// Consumer, TransactionProducer, txmqctl --broker) takes one; the
// connection starts at the first URL and follows the leader from there
// (broker_picker.h).
//
// Thread safety: pure functions.
#pragma once

#include <string>
#include <vector>

#include "txmq/status.h"

namespace txmq::net {

// The URLs of `text` in order, blanks around each removed, HOST:PORT taken
// as tcp://HOST:PORT. INVALID_ARGUMENT naming the entry (and, in a list of
// several, its position) when one is empty, is not tcp://HOST:PORT,
// ipc://PATH or inproc://NAME, or appears twice.
Result<std::vector<std::string>> ParseBrokerList(const std::string& text);

// `text` with "tcp://" in front when it is HOST:PORT alone; else `text`.
std::string WithTcpScheme(const std::string& text);

// Why `url` is not a ZeroMQ endpoint to connect to (with `bind`: to bind,
// where tcp://HOST:* picks a free port); "" when it is one. Reads as the
// end of a sentence naming `url`: "has no port 1-65535".
std::string EndpointProblem(const std::string& url, bool bind = false);

}  // namespace txmq::net
