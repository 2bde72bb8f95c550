// Start-up checks of a broker data directory beyond the log walk
// (log_scan.cc): the index's table files, and the REPAIRS file in which a
// repair records the stretches of log it gave up on.
//
// Thread safety: plain functions; the caller owns what they are given.
#pragma once

#include <leveldb/db.h>
#include <leveldb/env.h>

#include <string>
#include <vector>

#include "storage/src/commit_log.h"
#include "storage/src/file_system.h"
#include "txmq/status.h"

namespace txmq::storage {

// Reads every block of every table file of the index with its checksum
// verified. CORRUPTION names the damaged table file and the byte near
// which the damage starts.
Status VerifyIndexTables(leveldb::DB* db, const std::string& index_dir, leveldb::Env* env);

// <data-dir>/REPAIRS:
//   txmq-repairs 1
//   skip <from> <to> <resume_index> <resume_prev_crc> <repaired_at_ms>
//   ...
//   end <crc32c of the lines above, hex>
// A missing file is no skips; a damaged one is CORRUPTION.
Result<std::vector<LogSkip>> LoadSkips(FileSystem* fs, const std::string& path);
Status SaveSkips(FileSystem* fs, const std::string& path, const std::vector<LogSkip>& skips);

}  // namespace txmq::storage
