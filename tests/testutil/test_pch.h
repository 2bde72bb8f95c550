// Precompiled into every test executable (TXMQ_PRECOMPILED_HEADERS): the
// headers most test files include, parsed once per executable instead of
// once per file. About half of a test file's compile time was parsing
// these; a clean `make test` on two cores has a time budget. Test files
// still include what they use: a build with the option off must compile.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "protocol/src/codec.h"
#include "protocol/src/message_codec.h"
#include "protocol/src/util.h"
#include "tests/testutil/admin_client.h"
#include "tests/testutil/testutil.h"
#include "txmq/consumer.h"
#include "txmq/producer.h"
#include "txmq/transaction_producer.h"
