// The hint table's library (issue 10; docs/HINTS.md; layout and rules in
// ghost_hints.h): HintWriter for the application that creates and fills a
// table, HintReader for an agent that maps it read-only.
//
// The table is a sealed memfd: its size cannot change once created, so a
// reader's mapping can never fault (a file an application could truncate
// would kill the agent with SIGBUS). An agent opens it by the path
// HintWriter::path() gives (/proc/PID/fd/FD), which the application passes on
// (a flag, a file, a socket).
#ifndef GHOST_SCX_USERSPACE_HINTS_HINT_TABLE_H_
#define GHOST_SCX_USERSPACE_HINTS_HINT_TABLE_H_

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "userspace/hints/ghost_hints.h"

namespace ghost {

// What is known about a thread's work (or a class of work); an unset field
// is unknown and a policy uses its own default.
struct Hint {
  std::optional<uint32_t> qos;                   // higher runs first
  std::optional<uint64_t> deadline_ns;           // a thread's: absolute, CLOCK_MONOTONIC
  std::optional<uint64_t> relative_deadline_ns;  // a class's: due this long after a start
  std::optional<uint64_t> runtime_ns;            // expected CPU time of one request
  std::optional<uint64_t> cookie;                // core-scheduling cookie
  bool idle = false;                             // a thread's: it has no work now
  std::optional<uint32_t> class_id;              // a thread's: the class filling in the rest
};

struct HintTableOptions {
  uint32_t entries = 1024;  // threads, 1..GHOST_HINT_MAX_ENTRIES
  uint32_t classes = 16;    // 0..GHOST_HINT_MAX_CLASSES
};

// The application's side. One writer per table (not thread-safe: callers
// serialize, e.g. one thread that owns the table).
class HintWriter {
 public:
  static absl::StatusOr<std::unique_ptr<HintWriter>> Create(const HintTableOptions& opts);
  ~HintWriter();
  HintWriter(const HintWriter&) = delete;
  HintWriter& operator=(const HintWriter&) = delete;

  // Where an agent opens the table: /proc/PID/fd/FD of this process.
  const std::string& path() const { return path_; }

  absl::Status SetClass(uint32_t id, const Hint& values);
  // Gives `tid` a free entry: its index. AlreadyExists if it has one,
  // ResourceExhausted if none is free.
  absl::StatusOr<uint32_t> Add(pid_t tid, const Hint& hint);
  absl::Status Update(pid_t tid, const Hint& hint);
  absl::Status Remove(pid_t tid);

  // For tests of readers: the raw table, writable.
  char* raw() { return base_; }
  size_t raw_bytes() const { return bytes_; }

 private:
  HintWriter(int fd, char* base, size_t bytes, uint32_t entries, uint32_t classes);
  char* Class(uint32_t id);
  ghost_hint_entry* Entry(uint32_t i);
  absl::Status CheckClassId(uint32_t id) const;
  absl::Status CheckThreadHint(const Hint& hint) const;
  void Write(ghost_hint_entry* e, pid_t tid, const Hint& hint);

  int fd_;
  char* base_;
  size_t bytes_;
  uint32_t entries_;
  uint32_t classes_;
  std::string path_;
  absl::flat_hash_map<pid_t, uint32_t> slot_of_;
  uint32_t next_free_ = 0;  // where Add starts looking
};

// Checks a table's header against the table's size: one clear message for
// the first problem (InvalidArgument).
absl::Status ValidateHintHeader(const ghost_hint_header& h, uint64_t table_bytes);

struct HintReaderStats {
  uint64_t lookups = 0;
  uint64_t found = 0;
  uint64_t torn = 0;            // an entry or class still inconsistent after kMaxTries
  uint64_t bad_class_ids = 0;   // an entry naming a class the table does not have
  uint64_t index_rebuilds = 0;
};

// An agent's side: a read-only mapping. Not thread-safe (one agent thread,
// or one reader per thread).
class HintReader {
 public:
  // Tries per read before giving up on an entry a writer keeps changing (or
  // left half-written when it died).
  static constexpr int kMaxTries = 64;

  // The table at `path` (HintWriter::path()): it must be a sealed memfd of a
  // valid layout; otherwise one clear message.
  static absl::StatusOr<std::unique_ptr<HintReader>> Open(const std::string& path);
  ~HintReader();
  HintReader(const HintReader&) = delete;
  HintReader& operator=(const HintReader&) = delete;

  // The thread's hints: its entry's fields, its class's filling in an unset
  // qos, runtime or cookie, and the class's relative deadline.
  // nullopt: the thread has no entry (or it could not be read consistently,
  // counted in stats().torn): the policy's defaults apply.
  std::optional<Hint> Find(pid_t tid);

  uint32_t entries() const { return header_.nr_entries; }
  uint32_t classes() const { return header_.nr_classes; }
  const HintReaderStats& stats() const { return stats_; }

 private:
  HintReader(int fd, const char* base, size_t bytes, const ghost_hint_header& header);
  bool ReadEntry(uint32_t i, ghost_hint_entry* out);
  bool ReadClass(uint32_t i, ghost_hint_class* out);
  void RebuildIndex();

  int fd_;
  const char* base_;
  size_t bytes_;
  ghost_hint_header header_;  // validated copy
  uint64_t indexed_generation_ = ~0ULL;
  absl::flat_hash_map<pid_t, uint32_t> index_;
  HintReaderStats stats_;
};

}  // namespace ghost

#endif  // GHOST_SCX_USERSPACE_HINTS_HINT_TABLE_H_
